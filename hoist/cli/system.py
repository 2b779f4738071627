"""System commands: df, info, version, events and hoist's own ``system check``."""
from __future__ import annotations

import os
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any

from ..errors import HoistError, NotFound
from .command import FORMAT_HELP, INSPECT_FORMAT_HELP, Command, CommandFailed, Context, Flag, filters_json
from .output import (bytes_size, parse_rfc3339, split_fraction, human_size, human_size_precision, rfc3339_nano_fixed,
                     since, table, tabwrite, truncate_id)

# ---------------------------------------------------------------------- df

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DEFAULT_DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
_ACTIVE_STATES = ("running", "paused", "restarting")


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _pct(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def df_rows(du: dict[str, Any]) -> list[dict[str, str]]:
    images = du.get("Images") or []
    containers = du.get("Containers") or []
    volumes = du.get("Volumes") or []
    cache = du.get("BuildCache") or []
    layers = _int(du.get("LayersSize"))

    used = 0
    for i in images:
        if _int(i.get("Containers")) != 0:
            size, shared = _int(i.get("Size")), _int(i.get("SharedSize"))
            if size == -1 or shared == -1:
                continue
            used += size - shared
    img_row = {"Type": "Images", "TotalCount": str(len(images)),
               "Active": str(sum(1 for i in images if _int(i.get("Containers")) > 0)),
               "Size": human_size(layers), "Reclaimable": _pct(layers - used, layers)}

    c_total = sum(_int(c.get("SizeRw")) for c in containers)
    c_recl = sum(_int(c.get("SizeRw")) for c in containers if c.get("State") not in _ACTIVE_STATES)
    c_row = {"Type": "Containers", "TotalCount": str(len(containers)),
             "Active": str(sum(1 for c in containers if c.get("State") in _ACTIVE_STATES)),
             "Size": human_size(c_total), "Reclaimable": _pct(c_recl, c_total)}

    v_total = v_recl = v_active = v_size = 0
    for v in volumes:
        usage = v.get("UsageData") or {}
        if _int(usage.get("RefCount")) > 0:
            v_active += 1
        s = _int(usage.get("Size")) if "Size" in usage else 0
        if s != -1:
            v_size += s
            v_total += s
            if _int(usage.get("RefCount")) == 0:
                v_recl += s
    v_row = {"Type": "Local Volumes", "TotalCount": str(len(volumes)), "Active": str(v_active),
             "Size": human_size(v_size), "Reclaimable": _pct(v_recl, v_total)}

    builder = sum(_int(b.get("Size")) for b in cache if not b.get("Shared"))
    in_use = sum(_int(b.get("Size")) for b in cache if b.get("InUse") and not b.get("Shared"))
    b_row = {"Type": "Build Cache", "TotalCount": str(len(cache)),
             "Active": str(sum(1 for b in cache if b.get("InUse"))),
             "Size": human_size(builder), "Reclaimable": human_size(builder - in_use)}
    return [img_row, c_row, v_row, b_row]


def _timestamp(text: Any) -> float | None:
    dt = parse_rfc3339(text)
    return dt.timestamp() if dt is not None else None


def df_verbose(du: dict[str, Any]) -> str:
    from .images import familiar_name, is_dangling, split_tag

    now = time.time()
    out = ["Images space usage:\n\n"]
    rows = []
    for i in du.get("Images") or []:
        repo = tag = "<none>"
        tags = i.get("RepoTags") or []
        if tags and not is_dangling(i):
            r, t = split_tag(tags[0])
            if t is not None and "<" not in tags[0]:
                repo, tag = familiar_name(r), t
        size, shared, ctr = _int(i.get("Size")), _int(i.get("SharedSize")), _int(i.get("Containers"))
        rows.append([repo, tag, truncate_id(str(i.get("Id") or "")), since(_int(i.get("Created")), now),
                     human_size_precision(size, 3), "N/A" if shared == -1 else human_size(shared),
                     "N/A" if size == -1 or shared == -1 else human_size(size - shared),
                     "N/A" if ctr == -1 else str(ctr)])
    out.append(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                      "UNIQUE SIZE", "CONTAINERS"], rows))

    import json

    out.append("\nContainers space usage:\n\n")
    rows = []
    for c in du.get("Containers") or []:
        from .output import ellipsis

        names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
        for n in names:
            if "/" not in n:
                names = [n]
                break
        image = c.get("Image") or "<no image>"
        if image != "<no image>" and truncate_id(str(c.get("ImageID") or "")) == truncate_id(image):
            image = truncate_id(image)
        rows.append([truncate_id(str(c.get("Id") or "")), image,
                     json.dumps(ellipsis(str(c.get("Command") or ""), 20), ensure_ascii=False),
                     str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
                     human_size_precision(_int(c.get("SizeRw")), 3),
                     since(_int(c.get("Created")), now), str(c.get("Status") or ""), ",".join(names)])
    out.append(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                      "STATUS", "NAMES"], rows))

    out.append("\nLocal Volumes space usage:\n\n")
    rows = []
    for v in du.get("Volumes") or []:
        usage = v.get("UsageData")
        rows.append([str(v.get("Name") or ""),
                     "N/A" if usage is None else str(_int(usage.get("RefCount"))),
                     "N/A" if usage is None else human_size(_int(usage.get("Size")))])
    out.append(table(["VOLUME NAME", "LINKS", "SIZE"], rows))

    cache = list(du.get("BuildCache") or [])
    builder = sum(_int(b.get("Size")) for b in cache if not b.get("Shared"))
    out.append(f"\nBuild cache usage: {human_size(builder)}\n\n")
    rows = []
    for b in cache:
        created = _timestamp(b.get("CreatedAt"))
        last = _timestamp(b.get("LastUsedAt"))
        bid = truncate_id(str(b.get("ID") or ""))
        rows.append([bid + ("*" if b.get("InUse") else ""), str(b.get("Type") or ""),
                     human_size_precision(_int(b.get("Size")), 3),
                     since(created, now) if created is not None else "",
                     since(last, now) if last is not None else "",
                     str(_int(b.get("UsageCount"))), "true" if b.get("Shared") else "false"])
    out.append(table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"],
                     rows))
    return "".join(out)


def run_df(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    du = ctx.client().get_json("/system/df") or {}
    fmt = opts["format"] or "table"
    if opts["verbose"]:
        if fmt == "table":
            ctx.write(df_verbose(du))
            return 0
        from .images import compile_template

        data = {"Images": du.get("Images") or [], "Containers": du.get("Containers") or [],
                "Volumes": du.get("Volumes") or [], "BuildCache": du.get("BuildCache") or []}
        ctx.write(compile_template(fmt).render(data))
        return 0
    rows = df_rows(du)
    if fmt == "table":
        cols = ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
        ctx.write(table([DF_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows)))
        return 0
    from .images import format_rows

    ctx.write(format_rows(fmt, rows, default_table=DEFAULT_DF_TABLE, headers=DF_HEADERS,
                          type_name="*formatter.diskUsageContext"))
    return 0


# ---------------------------------------------------------------------- check (hoist)


def run_check(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .images import is_unsupported_route

    try:
        report = ctx.client().post_json("/hoist/system/check",
                                        {"repair": "1" if opts["repair"] else "0"}) or {}
    except NotFound as e:
        if is_unsupported_route(e):
            raise CommandFailed("this daemon does not support system check (is it hoistd?)",
                                125) from None
        raise
    ctx.write(format_check(report))
    return 0 if report.get("OK") else 1


def format_check(report: dict[str, Any]) -> str:
    checked = report.get("Checked") or {}
    problems = report.get("Problems") or []
    repaired = report.get("Repaired") or []
    parts = [f"{v} {k}" for k, v in checked.items()]
    lines = [f"Checked: {', '.join(parts) if parts else 'nothing'}\n"]
    if problems:
        lines.append(f"Problems ({len(problems)}):\n")
        lines.extend(f"  - {p}\n" for p in problems)
    if repaired:
        lines.append(f"Repaired ({len(repaired)}):\n")
        lines.extend(f"  - {r}\n" for r in repaired)
    if report.get("OK"):
        lines.append("OK\n" if not problems else "OK (all problems repaired)\n")
    else:
        hint = "" if repaired else " (run 'hoist system check --repair' to fix what can be fixed)"
        lines.append(f"FAILED: {len(problems)} problem(s) found{hint}\n")
    return "".join(lines)


# ---------------------------------------------------------------------- version


def _go_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


def client_version(api_version: str | None) -> dict[str, Any]:
    from .. import __version__
    from ..client import API_VERSION

    py = sys.version.split()[0]
    return {"Version": __version__, "ApiVersion": api_version or "",
            "DefaultAPIVersion": API_VERSION, "GitCommit": "", "GoVersion": "python" + py,
            "PythonVersion": py, "Os": sys.platform if sys.platform != "linux" else "linux",
            "Arch": _go_arch(), "BuildTime": "", "Context": "default"}


def format_version(client: dict[str, Any], server: dict[str, Any] | None) -> str:
    from .output import ansic

    lines = ["Client:"]
    lines.append(f" Version:\t{client['Version']}")
    api = client["ApiVersion"]
    if api and api != client["DefaultAPIVersion"]:
        api += f" (downgraded from {client['DefaultAPIVersion']})"
    lines.append(f" API version:\t{api}")
    lines.append(f" Python version:\t{client['PythonVersion']}")
    lines.append(f" OS/Arch:\t{client['Os']}/{client['Arch']}")
    lines.append(f" Context:\t{client['Context']}")
    if server is not None:
        name = ((server.get("Platform") or {}).get("Name") or "")
        lines.append("")
        lines.append("Server:" + (f" {name}" if name else ""))
        components = list(server.get("Components") or [])
        if not any(c.get("Name") == "Engine" for c in components):
            components.append({"Name": "Engine", "Version": server.get("Version", ""), "Details": {
                "ApiVersion": server.get("ApiVersion", ""),
                "MinAPIVersion": server.get("MinAPIVersion", ""),
                "GitCommit": server.get("GitCommit", ""), "GoVersion": server.get("GoVersion", ""),
                "Os": server.get("Os", ""), "Arch": server.get("Arch", ""),
                "BuildTime": server.get("BuildTime", ""),
                "Experimental": "true" if server.get("Experimental") else "false"}})
        for comp in components:
            details = {k: ("" if v is None else str(v)) for k, v in (comp.get("Details") or {}).items()}
            lines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines.append(f"  API version:\t{details.get('ApiVersion', '')} "
                             f"(minimum version {details.get('MinAPIVersion', '')})")
                lines.append(f"  Go version:\t{details.get('GoVersion', '')}")
                lines.append(f"  Git commit:\t{details.get('GitCommit', '')}")
                lines.append(f"  Built:\t{ansic(details.get('BuildTime', ''))}")
                lines.append(f"  OS/Arch:\t{details.get('Os', '')}/{details.get('Arch', '')}")
                lines.append(f"  Experimental:\t{details.get('Experimental', '')}")
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                for k in sorted(details):
                    lines.append(f"  {k}:\t{details[k]}")
    return tabwrite("\n".join(lines) + "\n", minwidth=20, tabwidth=1, padding=1)


def _template(fmt: str) -> tuple[Any, bool]:
    """A compiled ``--format`` (or None) and whether it asked for plain ``json``."""
    if not fmt:
        return None, False
    from .images import _is_json_format, compile_template

    raw_json = _is_json_format(fmt)
    return compile_template("{{json .}}" if raw_json else fmt), raw_json


def run_version(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    fmt = opts["format"]
    tmpl, raw_json = _template(fmt)
    client = ctx.client()
    server = None
    err: HoistError | None = None
    api = None
    try:
        api = client.api_version
        server = client.get_json("/version")
    except HoistError as e:
        err = e
    cv = client_version(api)
    if tmpl is not None:
        data: dict[str, Any] = {"Client": cv, "Server": server}
        if not raw_json:
            # Templates name Go fields: .Client.APIVersion, .Server.APIVersion.
            data = {"Client": dict(cv, APIVersion=cv["ApiVersion"]),
                    "Server": None if server is None else
                    dict(server, APIVersion=server.get("ApiVersion", ""))}
        ctx.write(tmpl.render(data) + "\n")
    else:
        ctx.write(format_version(cv, server))
    if err is not None:
        raise err
    return 0


# ---------------------------------------------------------------------- info


def _decode_security_options(opts: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    out = []
    for opt in opts:
        name = ""
        kvs: list[tuple[str, str]] = []
        if "=" not in opt:
            out.append((opt, kvs))
            continue
        for field in opt.split(","):
            k, sep, v = field.partition("=")
            if not sep or not k or not v:
                raise HoistError(f"invalid security option {field!r}")
            if k == "name":
                name = v
            else:
                kvs.append((k, v))
        out.append((name, kvs))
    return out


def format_info(info: dict[str, Any] | None, *, debug: bool = False,
                server_errors: list[str] | None = None) -> tuple[str, list[str]]:
    """docker info's pretty output: ``(stdout text, stderr lines)``."""
    from .. import __version__

    o: list[str] = []
    err: list[str] = []

    def p(*parts: Any) -> None:
        o.append(" ".join(_go_str(x) for x in parts) + "\n")

    def p_nonempty(label: str, value: Any) -> None:
        if value not in (None, ""):
            p(label, value)

    p("Client:")
    p(" Version:   ", __version__)
    p(" Context:   ", "default")
    p(" Debug Mode:", debug)
    p()
    p("Server:")
    if info is not None:
        p(" Containers:", _int(info.get("Containers")))
        p("  Running:", _int(info.get("ContainersRunning")))
        p("  Paused:", _int(info.get("ContainersPaused")))
        p("  Stopped:", _int(info.get("ContainersStopped")))
        p(" Images:", _int(info.get("Images")))
        p_nonempty(" Server Version:", info.get("ServerVersion"))
        p_nonempty(" Storage Driver:", info.get("Driver"))
        for pair in info.get("DriverStatus") or []:
            if len(pair) >= 2:
                o.append(f"  {pair[0]}: {pair[1]}\n")
        for pair in info.get("SystemStatus") or []:
            if len(pair) >= 2:
                o.append(f" {pair[0]}: {pair[1]}\n")
        p_nonempty(" Logging Driver:", info.get("LoggingDriver"))
        p_nonempty(" Cgroup Driver:", info.get("CgroupDriver"))
        p_nonempty(" Cgroup Version:", info.get("CgroupVersion"))
        plugins = info.get("Plugins") or {}
        p(" Plugins:")
        p("  Volume:", " ".join(plugins.get("Volume") or []))
        p("  Network:", " ".join(plugins.get("Network") or []))
        if plugins.get("Authorization"):
            p("  Authorization:", " ".join(plugins["Authorization"]))
        p("  Log:", " ".join(plugins.get("Log") or []))
        if info.get("CDISpecDirs"):
            p(" CDI spec directories:")
            for d in info["CDISpecDirs"]:
                o.append(f"  {d}\n")
        if info.get("DiscoveredDevices"):
            p(" Discovered Devices:")
            for dev in info["DiscoveredDevices"]:
                o.append(f"  {dev.get('Source', '')}: {dev.get('ID', '')}\n")
        swarm = info.get("Swarm") or {}
        state = swarm.get("LocalNodeState") or ""
        p(" Swarm:", state)
        if state not in ("", "inactive", "locked"):
            p("  NodeID:", swarm.get("NodeID", ""))
            if swarm.get("Error"):
                p("  Error:", swarm["Error"])
            p("  Is Manager:", bool(swarm.get("ControlAvailable")))
            p("  Node Address:", swarm.get("NodeAddr", ""))
        runtimes = info.get("Runtimes") or {}
        if runtimes:
            p(" Runtimes:", " ".join(sorted(runtimes)))
            p(" Default Runtime:", info.get("DefaultRuntime", ""))
        if info.get("OSType") == "linux":
            p(" Init Binary:", info.get("InitBinary", ""))
            p(" containerd version:", (info.get("ContainerdCommit") or {}).get("ID", ""))
            p(" runc version:", (info.get("RuncCommit") or {}).get("ID", ""))
            p(" init version:", (info.get("InitCommit") or {}).get("ID", ""))
            secopts = info.get("SecurityOptions") or []
            if secopts:
                try:
                    decoded = _decode_security_options(secopts)
                except HoistError as e:
                    (server_errors if server_errors is not None else err).append(e.message)
                else:
                    p(" Security Options:")
                    for name, kvs in decoded:
                        p("  " + name)
                        for k, v in kvs:
                            if k == "profile":
                                p("   Profile:", v)
        if info.get("OSType") == "windows":
            p(" Default Isolation:", info.get("Isolation", ""))
        p_nonempty(" Kernel Version:", info.get("KernelVersion"))
        p_nonempty(" Operating System:", info.get("OperatingSystem"))
        p_nonempty(" OSType:", info.get("OSType"))
        p_nonempty(" Architecture:", info.get("Architecture"))
        p(" CPUs:", _int(info.get("NCPU")))
        p(" Total Memory:", bytes_size(_int(info.get("MemTotal"))))
        p_nonempty(" Name:", info.get("Name"))
        p_nonempty(" ID:", info.get("ID"))
        p(" Docker Root Dir:", info.get("DockerRootDir", ""))
        p(" Debug Mode:", bool(info.get("Debug")))
        if info.get("Debug") or debug:
            p("  File Descriptors:", _int(info.get("NFd")))
            p("  Goroutines:", _int(info.get("NGoroutines")))
            p("  System Time:", info.get("SystemTime", ""))
            p("  EventsListeners:", _int(info.get("NEventsListener")))
        p_nonempty(" HTTP Proxy:", info.get("HttpProxy"))
        p_nonempty(" HTTPS Proxy:", info.get("HttpsProxy"))
        p_nonempty(" No Proxy:", info.get("NoProxy"))
        if info.get("Labels"):
            p(" Labels:")
            for lbl in info["Labels"]:
                p("  " + lbl)
        p(" Experimental:", bool(info.get("ExperimentalBuild")))
        reg = info.get("RegistryConfig") or None
        if reg and (reg.get("InsecureRegistryCIDRs") or reg.get("IndexConfigs")):
            p(" Insecure Registries:")
            index = reg.get("IndexConfigs") or {}
            for name in sorted(index):
                if not (index[name] or {}).get("Secure"):
                    p("  " + str((index[name] or {}).get("Name") or name))
            for cidr in reg.get("InsecureRegistryCIDRs") or []:
                o.append(f"  {cidr}\n")
        if reg and reg.get("Mirrors"):
            p(" Registry Mirrors:")
            for m in reg["Mirrors"]:
                p("  " + m)
        p(" Live Restore Enabled:", bool(info.get("LiveRestoreEnabled")))
        if info.get("ProductLicense"):
            p(" Product License:", info["ProductLicense"])
        if info.get("DefaultAddressPools"):
            p(" Default Address Pools:")
            for pool in info["DefaultAddressPools"]:
                o.append(f"   Base: {pool.get('Base', '')}, Size: {pool.get('Size', '')}\n")
        p()
        err.extend(str(w) for w in info.get("Warnings") or [])
    return "".join(o), err


def _go_str(x: Any) -> str:
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return ""
    return str(x)


def run_info(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    fmt = opts["format"]
    if fmt:
        from .. import __version__
        from .images import _is_json_format, compile_template

        raw_json = _is_json_format(fmt)
        tmpl = compile_template("{{json .}}" if raw_json else fmt)
        info = ctx.client().get_json("/info") or {}
        data = dict(info)
        if not raw_json:
            for go_name, key in (("HTTPProxy", "HttpProxy"), ("HTTPSProxy", "HttpsProxy")):
                data.setdefault(go_name, info.get(key, ""))
        data["ClientInfo"] = {"Debug": ctx.debug, "Version": __version__, "Context": "default",
                              "Plugins": [], "Warnings": None}
        ctx.write(tmpl.render(data) + "\n")
        return 0
    try:
        info = ctx.client().get_json("/info") or {}
    except HoistError:
        text, _ = format_info(None, debug=ctx.debug)
        ctx.write(text)
        raise
    text, warnings = format_info(info, debug=ctx.debug)
    ctx.write(text)
    for w in warnings:
        ctx.error(w)
    return 0


# ---------------------------------------------------------------------- events

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float | None:
    """Go's time.ParseDuration (``1h30m``, ``-5m``, ``1.5s``) in seconds, or None."""
    s = text
    if not s:
        return None
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    total = 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        if i == 0 or s[:i] == ".":
            return None
        try:
            num = float(s[:i])
        except ValueError:
            return None
        s = s[i:]
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit = s[:j]
        if unit not in _DURATION_UNITS:
            return None
        total += num * _DURATION_UNITS[unit]
        s = s[j:]
    return sign * total


def get_timestamp(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: a duration ("10m"), an RFC 3339-ish date or a unix
    timestamp → the ``seconds[.nanoseconds]`` string the API expects."""
    from datetime import datetime

    now = time.time() if now is None else now
    d = parse_go_duration(value)
    if value != "0" and d is not None:
        return str(int(now - d))
    in_local = not any(c in value for c in "zZ+") and value.count("-") != 3
    text = value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = None
    for candidate in (text, text.replace("T", " ")):
        try:
            head, digits, rest = split_fraction(candidate)
            nanos = int((digits + "000000000")[:9]) if digits is not None else 0
            candidate = head + rest
            if "T" in candidate and candidate.count(":") == 0 and in_local:
                candidate += ":00"
            dt = datetime.fromisoformat(candidate)
            break
        except ValueError:
            dt = None
    if dt is None:
        if "-" in value:
            raise CommandFailed(f'parsing time "{value}": cannot parse as RFC 3339')
        head, dot, frac = value.partition(".")
        if head.isdigit() and (not dot or frac.isdigit()):
            return value
        raise CommandFailed(f'failed to parse value as time or duration: "{value}"')
    if dt.tzinfo is None:
        secs = time.mktime(dt.timetuple())
    else:
        secs = dt.timestamp()
    return f"{int(secs)}.{nanos:09d}"


def format_event(ev: dict[str, Any]) -> str:
    parts = []
    if ev.get("timeNano"):
        parts.append(rfc3339_nano_fixed(int(ev["timeNano"])) + " ")
    elif ev.get("time"):
        parts.append(rfc3339_nano_fixed(int(ev["time"]) * 1_000_000_000) + " ")
    actor = ev.get("Actor") or {}
    action = ev.get("Action") or ev.get("status") or ""
    actor_id = actor.get("ID") if actor.get("ID") is not None else ev.get("id", "")
    parts.append(f"{ev.get('Type') or ''} {action} {actor_id}")
    attrs = actor.get("Attributes") or {}
    if attrs:
        parts.append(" (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")")
    return "".join(parts) + "\n"


def event_template_data(ev: dict[str, Any]) -> dict[str, Any]:
    """An event keyed by the Go field names templates use (``.Status``, ``.ID``,
    ``.From``, ``.Type``, ``.Action``, ``.Actor.ID``, ``.Scope``, ``.Time``, ``.TimeNano``)."""
    actor = ev.get("Actor") or {}
    return {"Status": ev.get("status", ""), "ID": ev.get("id", ""), "From": ev.get("from", ""),
            "Type": ev.get("Type", ""), "Action": ev.get("Action", ""),
            "Actor": {"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}},
            "Scope": ev.get("scope", ""), "Time": ev.get("time", 0),
            "TimeNano": ev.get("timeNano", 0)}


def run_events(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    fmt = opts["format"]
    tmpl, raw_json = _template(fmt)
    params: dict[str, Any] = {}
    now = time.time()
    if opts["since"]:
        params["since"] = get_timestamp(opts["since"], now)
    if opts["until"]:
        params["until"] = get_timestamp(opts["until"], now)
    filters = filters_json(opts["filter"])
    if filters:
        params["filters"] = filters
    out = ctx.out
    for ev in ctx.client().stream_json("GET", "/events", params):
        if not isinstance(ev, dict):
            continue
        if tmpl is not None:
            text = tmpl.render(ev if raw_json else event_template_data(ev)) + "\n"
        else:
            text = format_event(ev)
        out.write(text)
        try:
            out.flush()
        except (AttributeError, ValueError):
            pass
    return 0


# ---------------------------------------------------------------------- command table


def build() -> dict[str, Command]:
    def df() -> Command:
        return Command("df", "df [OPTIONS]", "Show hoist disk usage",
                       flags=(Flag("format", None, "string", help=FORMAT_HELP),
                              Flag("verbose", "v", help="Show detailed information on space usage")),
                       args=(0, 0), run=run_df)

    def info(name: str = "info") -> Command:
        return Command(name, "info [OPTIONS]", "Display system-wide information",
                       flags=(Flag("format", "f", "string", help=INSPECT_FORMAT_HELP),),
                       args=(0, 0), run=run_info, aliases="hoist system info, hoist info")

    def events() -> Command:
        return Command("events", "events [OPTIONS]", "Get real time events from the server",
                       flags=(Flag("filter", "f", "filter",
                                   help="Filter output based on conditions provided"),
                              Flag("format", None, "string", help=INSPECT_FORMAT_HELP),
                              Flag("since", None, "string",
                                   help="Show all events created since timestamp"),
                              Flag("until", None, "string",
                                   help="Stream events until this timestamp")),
                       args=(0, 0), run=run_events, aliases="hoist system events, hoist events")

    check = Command("check", "check [OPTIONS]",
                    "Verify the image store (blobs, images, layers) and optionally repair it",
                    flags=(Flag("repair", None,
                                help="Remove what cannot be trusted and re-unpack damaged layers"),),
                    args=(0, 0), run=run_check)
    group = Command("system", "system COMMAND", "Manage hoist", args=(0, 0),
                    subcommands=[df(), check, events(), info()], category="management")
    version = Command("version", "version [OPTIONS]", "Show the hoist version information",
                      flags=(Flag("format", "f", "string", help=INSPECT_FORMAT_HELP),),
                      args=(0, 0), run=run_version)
    return {"system": group, "info": info(), "events": events(), "version": version}
