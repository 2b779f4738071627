"""`run`/`create` flags → the Engine API create body, as the docker CLI builds it.

Pure functions of the parsed options, so they are unit-tested without a daemon. Units
follow docker's go-units (``512m`` = 512 MiB) and Go durations (``1m30s``).
"""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..errors import InvalidArgument
from .command import Flag

_RAM_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: ``512m``, ``1g``, ``1.5GiB``, ``1024``; binary multiples."""
    s = text.strip()
    low = s.lower()
    for suffix in ("ib", "b"):
        if low.endswith(suffix) and len(low) > len(suffix) and not low[-len(suffix) - 1].isdigit():
            low = low[:-len(suffix)]
            break
    else:
        if low.endswith("b"):
            low = low[:-1]
    unit = ""
    if low and low[-1] in "kmgtp":
        unit, low = low[-1], low[:-1]
    low = low.rstrip(" ")
    try:
        value = float(low)
        if not low or low.startswith(("-", "+")) or low.lower() in ("inf", "nan"):
            raise ValueError
    except ValueError:
        raise InvalidArgument(f"invalid size: '{text}'") from None
    return int(value * _RAM_UNITS[unit])


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    s = text.strip()
    if s in ("0", ""):
        if s == "":
            raise InvalidArgument(f'time: invalid duration "{text}"')
        return 0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    total = 0.0
    i = 0
    if not s:
        raise InvalidArgument(f'time: invalid duration "{text}"')
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise InvalidArgument(f'time: invalid duration "{text}"')
        num = s[i:j]
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in _DURATION_UNITS:
            if not unit:
                raise InvalidArgument(f'time: missing unit in duration "{text}"')
            raise InvalidArgument(f'time: unknown unit "{unit}" in duration "{text}"')
        try:
            total += float(num) * _DURATION_UNITS[unit]
        except ValueError:
            raise InvalidArgument(f'time: invalid duration "{text}"') from None
        i = k
    return sign * int(total)


def parse_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidArgument(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        out.append(_env_value(line))
    return out


def _env_value(item: str) -> str:
    """``KEY=VALUE`` as given; a bare ``KEY`` takes the CLI's environment, as docker does."""
    if "=" in item:
        if item.startswith("="):
            raise InvalidArgument(f"invalid environment variable: {item}")
        return item
    if item in os.environ:
        return f"{item}={os.environ[item]}"
    return item


def parse_labels(values: list[str], files: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    items: list[str] = []
    for path in files:
        items += parse_env_file(path)
    items += values
    for item in items:
        k, _, v = item.partition("=")
        labels[k] = v
    return labels


def parse_ulimit(text: str) -> dict[str, Any]:
    name, sep, values = text.partition("=")
    if not sep or not name:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from None
    if soft > hard:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: "
                              f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def parse_restart(text: str) -> dict[str, Any]:
    if not text:
        return {"Name": "", "MaximumRetryCount": 0}
    name, _, count = text.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy format: {text}")
    retries = 0
    if count:
        if name != "on-failure":
            raise InvalidArgument(f"maximum retry count cannot be used with restart policy "
                                  f"'{name}'")
        try:
            retries = int(count)
        except ValueError:
            raise InvalidArgument(f"invalid restart policy format: maximum retry count must "
                                  f"be an integer: {count}") from None
    return {"Name": name, "MaximumRetryCount": retries}


def parse_mount(text: str) -> dict[str, Any]:
    """``--mount type=bind,source=/a,target=/b,readonly`` → a HostConfig.Mounts entry."""
    m: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    for field in text.split(","):
        if not field:
            continue
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            if sep and value.lower() not in ("1", "true", "0", "false"):
                raise InvalidArgument(f"invalid value for {key}: {value}")
            m["ReadOnly"] = not sep or value.lower() in ("1", "true")
            continue
        if not sep:
            raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            m["Type"] = value
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "destination", "dst"):
            m["Target"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise InvalidArgument(f"invalid value for {key}: {value}") from None
        elif key == "consistency":
            m["Consistency"] = value
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{field}'")
    if "Target" not in m:
        raise InvalidArgument("target is required")
    if bind:
        m["BindOptions"] = bind
    if tmpfs:
        m["TmpfsOptions"] = tmpfs
    return m


def parse_volume(text: str) -> tuple[str | None, str]:
    """``-v`` → ``(bind_spec, "")`` or ``(None, container_path)`` for an anonymous volume."""
    parts = text.split(":")
    if len(parts) == 1:
        if not text.startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{text}'")
        return None, text
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{text}'")
    if not parts[1].startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{text}': invalid mount config "
                              f"for type \"bind\": invalid mount path: '{parts[1]}' mount path "
                              "must be absolute")
    return text, ""


def nano_cpus(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: failed to parse '
                              f'{text} as a rational number') from None
    return int(round(value * 1e9))


def seccomp_opt(opt: str) -> str:
    """``seccomp=FILE`` carries the file's JSON itself, as docker sends it."""
    key, sep, value = opt.partition("=")
    if not sep:
        key, sep, value = opt.partition(":")
    if key == "seccomp" and value and value != "unconfined":
        try:
            with open(value, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InvalidArgument(f"opening seccomp profile ({value}) failed: {e}") from None
        import json

        try:
            return "seccomp=" + json.dumps(json.loads(data), separators=(",", ":"))
        except ValueError as e:
            raise InvalidArgument(f"compacting json for seccomp profile ({value}) failed: "
                                  f"{e}") from None
    return opt


def build_create_body(opts: dict[str, Any], image: str, cmd: list[str]) -> dict[str, Any]:
    """The POST /containers/create body for ``run``/``create`` options."""
    if opts.get("publish") or opts.get("publish_all"):
        raise InvalidArgument("publishing ports (-p/-P) is not supported by hoist yet: "
                              "container networking arrives with the network issue")
    if opts.get("rm") and opts.get("restart") not in ("", "no"):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    detach = bool(opts.get("detach"))
    attach = [a.lower() for a in opts.get("attach") or []]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise InvalidArgument(f"invalid argument \"{a}\" for \"-a, --attach\" flag: valid "
                                  "streams are STDIN, STDOUT and STDERR")
    if detach and attach:
        raise InvalidArgument("Conflicting options: -a and -d")
    interactive = bool(opts.get("interactive"))
    # docker's rules: -i implies stdin; no -a means stdout+stderr; -d attaches nothing.
    a_in = "stdin" in attach or interactive
    a_out, a_err = ("stdout" in attach, "stderr" in attach) if attach else (True, True)
    if detach:
        a_in = a_out = a_err = False

    env: list[str] = []
    for path in opts.get("env_file") or []:
        env += parse_env_file(path)
    env += [_env_value(e) for e in opts.get("env") or []]

    # Every field below is sent as docker 28's CLI serialises it (a side-by-side capture
    # test compares the two bodies byte for byte as JSON values).
    config: dict[str, Any] = {
        "Hostname": opts.get("hostname") or "",
        "Domainname": opts.get("domainname") or "",
        "User": opts.get("user") or "",
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "Tty": bool(opts.get("tty")),
        "OpenStdin": interactive,
        "StdinOnce": interactive and a_in,
        "Env": env or None,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": {},
        "WorkingDir": opts.get("workdir") or "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": parse_labels(opts.get("label") or [], opts.get("label_file") or []),
    }
    if opts.get("entrypoint"):
        config["Entrypoint"] = [opts["entrypoint"]]
    if opts.get("stop_signal"):
        config["StopSignal"] = opts["stop_signal"]
    if opts.get("stop_timeout"):
        config["StopTimeout"] = opts["stop_timeout"]
    health = _healthcheck(opts)
    if health is not None:
        config["Healthcheck"] = health

    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for v in opts.get("volume") or []:
        bind, anon = parse_volume(v)
        if bind is not None:
            binds.append(bind)
        else:
            volumes[anon] = {}
    config["Volumes"] = volumes
    tmpfs: dict[str, str] = {}
    for t in opts.get("tmpfs") or []:
        path, _, topts = t.partition(":")
        tmpfs[path] = topts
    swap = opts.get("memory_swap") or ""
    host: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts.get("cidfile") or "",
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": opts.get("network") or "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": bool(opts.get("rm")),
        "VolumeDriver": "", "VolumesFrom": None,
        "ConsoleSize": console_size() if opts.get("tty") else [0, 0],
        "CapAdd": _caps(opts.get("cap_add") or []),
        "CapDrop": _caps(opts.get("cap_drop") or []),
        "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
        "GroupAdd": opts.get("group_add") or None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": bool(opts.get("privileged")),
        "PublishAllPorts": False,
        "ReadonlyRootfs": bool(opts.get("read_only")),
        "SecurityOpt": [seccomp_opt(o) for o in opts.get("security_opt") or []] or None,
        "UTSMode": "", "UsernsMode": "",
        "ShmSize": ram_in_bytes(opts["shm_size"]) if opts.get("shm_size") else 0,
        "Isolation": "",
        "CpuShares": opts.get("cpu_shares") or 0,
        "Memory": ram_in_bytes(opts["memory"]) if opts.get("memory") else 0,
        "NanoCpus": nano_cpus(opts["cpus"]) if opts.get("cpus") else 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": opts.get("cpuset_cpus") or "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": opts.get("device_cgroup_rule") or None,
        "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": (-1 if swap == "-1" else ram_in_bytes(swap)) if swap else 0,
        "MemorySwappiness": -1, "OomKillDisable": False,
        "PidsLimit": opts.get("pids_limit") or 0,
        "Ulimits": [parse_ulimit(u) for u in opts.get("ulimit") or []],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }
    if opts.get("restart"):
        host["RestartPolicy"] = parse_restart(opts["restart"])
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if opts.get("mount"):
        host["Mounts"] = [parse_mount(m) for m in opts["mount"]]
    if opts.get("init"):
        host["Init"] = True
    if opts.get("runtime"):
        host["Runtime"] = opts["runtime"]
    sysctls = {}
    for s in opts.get("sysctl") or []:
        k, sep, v = s.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid argument \"{s}\" for \"--sysctl\" flag: sysctl "
                                  f"'{s}' is not allowed")
        sysctls[k] = v
    if sysctls:
        host["Sysctls"] = sysctls
    endpoints: dict[str, Any] = {}
    if not opts.get("network"):
        # Without --network docker 28 sends the implicit "default" endpoint; with one (and
        # no endpoint options, which hoist does not take) it sends none.
        endpoints["default"] = _EMPTY_ENDPOINT
    return {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}


_EMPTY_ENDPOINT = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
                   "DriverOpts": None, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
                   "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                   "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def _caps(items: list[str]) -> list[str] | None:
    """docker 28 normalises capability names: upper case, ``CAP_`` prefix, ``ALL`` kept."""
    out: list[str] = []
    for c in items:
        c = c.strip().upper()
        if c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c not in out:
            out.append(c)
    return out or None


def console_size() -> list[int]:
    """[height, width] of the local terminal (stdout), sent so the container's tty has its
    size from its first instruction on."""
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return [0, 0]
    return [size.lines, size.columns]


def _healthcheck(opts: dict[str, Any]) -> dict[str, Any] | None:
    if opts.get("no_healthcheck"):
        if opts.get("health_cmd"):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    hc: dict[str, Any] = {}
    if opts.get("health_cmd"):
        hc["Test"] = ["CMD-SHELL", opts["health_cmd"]]
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod")):
        if opts.get(flag):
            ns = go_duration_ns(opts[flag])
            if ns < 0:
                raise InvalidArgument(f"--{flag.replace('_', '-')} cannot be negative")
            hc[key] = ns
    if opts.get("health_retries"):
        if opts["health_retries"] < 0:
            raise InvalidArgument("--health-retries cannot be negative")
        hc["Retries"] = opts["health_retries"]
    return hc or None


def run_flags() -> list[Flag]:
    """The flags `run` and `create` share, as docker 28 lists them."""
    return [
        Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
        Flag("cap-add", None, "list", help="Add Linux capabilities"),
        Flag("cap-drop", None, "list", help="Drop Linux capabilities"),
        Flag("cidfile", None, "string", help="Write the container ID to the file"),
        Flag("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
        Flag("cpus", None, "string", help="Number of CPUs", typename="decimal"),
        Flag("cpuset-cpus", None, "string", help="CPUs in which to allow execution (0-3, 0,1)"),
        Flag("device-cgroup-rule", None, "list", help="Add a rule to the cgroup allowed devices list"),
        Flag("domainname", None, "string", help="Container NIS domain name"),
        Flag("entrypoint", None, "string", help="Overwrite the default ENTRYPOINT of the image"),
        Flag("env", "e", "list", help="Set environment variables"),
        Flag("env-file", None, "list", help="Read in a file of environment variables"),
        Flag("group-add", None, "list", help="Add additional groups to join"),
        Flag("health-cmd", None, "string", help="Command to run to check health"),
        Flag("health-interval", None, "string", help="Time between running the check (ms|s|m|h) (default 0s)", typename="duration"),
        Flag("health-retries", None, "int", help="Consecutive failures needed to report unhealthy"),
        Flag("health-start-period", None, "string", help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)", typename="duration"),
        Flag("health-timeout", None, "string", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)", typename="duration"),
        Flag("hostname", "h", "string", help="Container host name"),
        Flag("init", None, help="Run an init inside the container that forwards signals and reaps processes"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("label", "l", "list", help="Set meta data on a container"),
        Flag("label-file", None, "list", help="Read in a line delimited file of labels"),
        Flag("memory", "m", "string", help="Memory limit", typename="bytes"),
        Flag("memory-swap", None, "string", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap", typename="bytes"),
        Flag("mount", None, "list", help="Attach a filesystem mount to the container", typename="mount"),
        Flag("name", None, "string", help="Assign a name to the container"),
        Flag("network", None, "string", help="Connect a container to a network"),
        Flag("net", None, "string", hidden=True),
        Flag("no-healthcheck", None, help="Disable any container-specified HEALTHCHECK"),
        Flag("pids-limit", None, "int", help="Tune container pids limit (set -1 for unlimited)"),
        Flag("platform", None, "string", help="Set platform if server is multi-platform capable",
             default=os.environ.get("DOCKER_DEFAULT_PLATFORM", "")),
        Flag("privileged", None, help="Give extended privileges to this container"),
        Flag("publish", "p", "list", help="Publish a container's port(s) to the host"),
        Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
        Flag("pull", None, "string", default="missing", help='Pull image before creating ("always", "|missing", "never")'),
        Flag("quiet", "q", help="Suppress the pull output"),
        Flag("read-only", None, help="Mount the container's root filesystem as read only"),
        Flag("restart", None, "string", default="no", help="Restart policy to apply when a container exits"),
        Flag("rm", None, help="Automatically remove the container and its associated anonymous volumes when it exits"),
        Flag("runtime", None, "string", help="Runtime to use for this container"),
        Flag("security-opt", None, "list", help="Security Options"),
        Flag("shm-size", None, "string", help="Size of /dev/shm", typename="bytes"),
        Flag("stop-signal", None, "string", help="Signal to stop the container"),
        Flag("stop-timeout", None, "int", help="Timeout (in seconds) to stop a container"),
        Flag("sysctl", None, "list", help="Sysctl options", typename="map"),
        Flag("tmpfs", None, "list", help="Mount a tmpfs directory"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag("ulimit", None, "list", help="Ulimit options", typename="ulimit"),
        Flag("user", "u", "string", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("volume", "v", "list", help="Bind mount a volume"),
        Flag("workdir", "w", "string", help="Working directory inside the container"),
    ]
