"""Container commands: run, create, start, ps, logs, stop, kill, rm, wait, exec, ...

Each command is a thin Engine API client; the one piece with real logic is turning
``run``/``create`` flags into the create body (:func:`create_body`), done the way the
docker CLI does it so the same flags give the same container on any engine.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any

from ..client import quote_name
from ..errors import HoistError, NotFound
from .command import (FORMAT_HELP, Command, CommandFailed, Context, Flag, filters_json)
from .output import human_size, human_size_precision, table

_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9,
                   "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration → nanoseconds (``1m30s``, ``500ms``, ``0``)."""
    s = text.strip()
    if s in ("0", ""):
        return 0
    neg = s.startswith("-")
    s = s.lstrip("+-")
    total = 0.0
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise ValueError(f'time: invalid duration "{text}"')
        num = float(s[i:j])
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: missing unit in duration "{text}"' if not unit
                             else f'time: unknown unit "{unit}" in duration "{text}"')
        total += num * _DURATION_UNITS[unit]
        i = k
    return -int(total) if neg else int(total)


_RAM_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """docker's units.RAMInBytes: ``512m``, ``1g``, ``1.5GiB``, binary multiples."""
    s = text.strip().lower()
    j = 0
    while j < len(s) and (s[j].isdigit() or s[j] == "."):
        j += 1
    unit = s[j:].strip()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif len(unit) == 2 and unit.endswith("b"):
        unit = unit[:-1]
    if j == 0 or unit not in _RAM_UNITS:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(s[:j]) * _RAM_UNITS[unit])


def _mem(text: str, name: str) -> int:
    if text == "":
        return 0
    if text == "-1" and name == "memory-swap":
        return -1
    try:
        return ram_in_bytes(text)
    except ValueError as e:
        raise CommandFailed(f'invalid argument "{text}" for "--{name}" flag: {e}', 125) from None


def _kv_list(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items:
        k, _, v = it.partition("=")
        out[k] = v
    return out


def _read_env_file(path: str) -> list[str]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CommandFailed(f"open {path}: {e.strerror.lower() if e.strerror else e}", 125) from None
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            val = os.environ.get(line)
            if val is not None:
                out.append(f"{line}={val}")
            continue
        out.append(line)
    return out


def _env(items: list[str]) -> list[str]:
    out = []
    for e in items:
        if "=" not in e:
            if e in os.environ:
                out.append(f"{e}={os.environ[e]}")
            continue
        out.append(e)
    return out


def _ulimit(text: str) -> dict[str, Any]:
    name, eq, vals = text.partition("=")
    if not eq:
        raise CommandFailed(f'invalid argument "{text}" for "--ulimit" flag: invalid ulimit '
                            f'argument: {text}', 125)
    soft, _, hard = vals.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise CommandFailed(f'invalid argument "{text}" for "--ulimit" flag: invalid ulimit '
                            f'argument: {text}', 125) from None
    return {"Name": name, "Hard": h, "Soft": s}


def _mount(text: str) -> dict[str, Any]:
    m: dict[str, Any] = {"Type": "volume"}
    for field in text.split(","):
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        if k in ("type",):
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("target", "dst", "destination"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = (not eq) or v.lower() in ("1", "true")
        elif k == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = v
        elif k == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(v)
        elif k == "tmpfs-mode":
            m.setdefault("TmpfsOptions", {})["Mode"] = int(v, 8)
        else:
            raise CommandFailed(f'invalid argument "{text}" for "--mount" flag: unexpected '
                                f"key '{k}' in '{field}'", 125)
    if not m.get("Target"):
        raise CommandFailed(f'invalid argument "{text}" for "--mount" flag: target is required',
                            125)
    return m


def _restart(text: str) -> dict[str, Any]:
    if not text:
        return {}
    name, _, count = text.partition(":")
    pol: dict[str, Any] = {"Name": name}
    if count:
        pol["MaximumRetryCount"] = int(count)
    elif name in ("on-failure",):
        pol["MaximumRetryCount"] = 0
    return pol


def _security_opts(items: list[str]) -> list[str]:
    out = []
    for o in items:
        k, eq, v = o.partition("=")
        if not eq:
            k, eq, v = o.partition(":")
        if k == "seccomp" and v != "unconfined":
            # The docker CLI sends the profile itself: the daemon may not see the file.
            try:
                with open(v, encoding="utf-8") as f:
                    data = f.read()
            except OSError as e:
                raise CommandFailed(f"opening seccomp profile ({v}) failed: open {v}: "
                                    f"{(e.strerror or str(e)).lower()}", 125) from None
            import json

            o = "seccomp=" + json.dumps(json.loads(data), separators=(",", ":"))
        out.append(o)
    return out


def create_body(opts: dict[str, Any], image: str, cmd: list[str]) -> dict[str, Any]:
    """The POST /containers/create body for ``run``/``create`` flags."""
    if opts.get("publish"):
        raise CommandFailed("hoist: port publishing (-p/--publish) is not supported yet", 125)
    attach = [a.lower() for a in opts.get("attach", [])]
    detach = opts.get("detach", False)
    interactive = opts["interactive"]
    # docker's rules: -i implies stdin; no -a means stdout+stderr; -d attaches nothing.
    a_in = "stdin" in attach or interactive
    a_out, a_err = ("stdout" in attach, "stderr" in attach) if attach else (True, True)
    if detach:
        a_in = a_out = a_err = False
    env = []
    for path in opts["env_file"]:
        env += _read_env_file(path)
    env += _env(opts["env"])
    labels: dict[str, str] = {}
    for path in opts["label_file"]:
        for line in _read_env_file(path):
            k, _, v = line.partition("=")
            labels[k] = v
    labels.update(_kv_list(opts["label"]))
    config: dict[str, Any] = {
        "Hostname": opts["hostname"], "Domainname": opts.get("domainname", ""),
        "User": opts["user"],
        "AttachStdin": a_in, "AttachStdout": a_out, "AttachStderr": a_err,
        "Tty": opts["tty"], "OpenStdin": interactive, "StdinOnce": interactive and a_in,
        "Env": env or None, "Cmd": cmd or None, "Image": image,
        "Volumes": {}, "WorkingDir": opts["workdir"],
        "Entrypoint": None, "OnBuild": None, "Labels": labels,
    }
    if opts["entrypoint"] != "" or opts.get("_entrypoint_set"):
        config["Entrypoint"] = [opts["entrypoint"]] if opts["entrypoint"] else [""]
    if opts["stop_signal"]:
        config["StopSignal"] = opts["stop_signal"]
    if opts["stop_timeout"] is not None and opts["stop_timeout"] != "":
        config["StopTimeout"] = int(opts["stop_timeout"])
    health = _healthcheck(opts)
    if health is not None:
        config["Healthcheck"] = health
    binds = list(opts["volume"])
    anon = [v for v in binds if ":" not in v]
    if anon:
        config["Volumes"] = {v: {} for v in anon}  # anonymous volumes: no host path
        binds = [v for v in binds if ":" in v]
    tmpfs = {}
    for t in opts["tmpfs"]:
        dst, _, topts = t.partition(":")
        tmpfs[dst] = topts
    host: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts["cidfile"],
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": opts["network"] or "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": bool(opts["rm"]),
        "VolumeDriver": "", "VolumesFrom": None,
        "CapAdd": _caps(opts["cap_add"]), "CapDrop": _caps(opts["cap_drop"]),
        "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": None, "GroupAdd": opts["group_add"] or None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": opts["privileged"], "PublishAllPorts": False,
        "ReadonlyRootfs": opts["read_only"], "SecurityOpt": _security_opts(opts["security_opt"]) or None,
        "UTSMode": "", "UsernsMode": "", "ShmSize": _mem(opts["shm_size"], "shm-size"),
        "ConsoleSize": _console_size() if opts["tty"] else [0, 0],
        "CpuShares": opts["cpu_shares"],
        "Memory": _mem(opts["memory"], "memory"),
        "NanoCpus": _nano_cpus(opts["cpus"]),
        "CgroupParent": "", "BlkioWeight": 0, "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": opts["cpuset_cpus"], "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": opts["device_cgroup_rule"] or None,
        "MemoryReservation": 0, "MemorySwap": _mem(opts["memory_swap"], "memory-swap"),
        "MemorySwappiness": -1, "OomKillDisable": False,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "DeviceRequests": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "Isolation": "", "MaskedPaths": None, "ReadonlyPaths": None,
        "PidsLimit": opts["pids_limit"],
        "Ulimits": [_ulimit(u) for u in opts["ulimit"]],
    }
    if opts["mount"]:
        host["Mounts"] = [_mount(m) for m in opts["mount"]]
    if opts["restart"]:
        host["RestartPolicy"] = _restart(opts["restart"])
        host["RestartPolicy"].setdefault("MaximumRetryCount", 0)
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if opts["init"]:
        host["Init"] = True
    if opts["sysctl"]:
        host["Sysctls"] = _kv_list(opts["sysctl"])
    if opts["runtime"]:
        host["Runtime"] = opts["runtime"]
    if opts["rm"] and not detach:
        # The CLI removes the container itself after waiting, as docker 28 does.
        host["AutoRemove"] = True
    net = host["NetworkMode"]
    netcfg: dict[str, Any] = {"EndpointsConfig": {}}
    if not opts["network"]:
        # Without --network docker 28 sends the implicit "default" endpoint; with one
        # (and no endpoint options, which hoist does not take) it sends none.
        netcfg["EndpointsConfig"][net] = _endpoint()
    body = dict(config)
    body["HostConfig"] = host
    body["NetworkingConfig"] = netcfg
    return body


def _endpoint() -> dict[str, Any]:
    """An empty EndpointSettings as docker's CLI serialises it."""
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
            "DriverOpts": None, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def _caps(items: list[str]) -> list[str] | None:
    """docker 28 normalises capability names: upper case, ``CAP_`` prefix, ``ALL`` kept."""
    out = []
    for c in items:
        c = c.strip().upper()
        if c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c not in out:
            out.append(c)
    return out or None


def _nano_cpus(text: str) -> int:
    if not text:
        return 0
    try:
        return int(round(float(text) * 1e9))
    except ValueError:
        raise CommandFailed(f'invalid argument "{text}" for "--cpus" flag: failed to parse '
                            f"{text} as a rational number", 125) from None


def _healthcheck(opts: dict[str, Any]) -> dict[str, Any] | None:
    if opts["no_healthcheck"]:
        if opts["health_cmd"]:
            raise CommandFailed("--no-healthcheck conflicts with --health-* options", 125)
        return {"Test": ["NONE"]}
    keys = ("health_interval", "health_timeout", "health_start_period")
    if not opts["health_cmd"] and not opts["health_retries"] and not any(opts[k] for k in keys):
        return None
    h: dict[str, Any] = {}
    if opts["health_cmd"]:
        h["Test"] = ["CMD-SHELL", opts["health_cmd"]]
    for k, name in zip(keys, ("Interval", "Timeout", "StartPeriod")):
        if opts[k]:
            try:
                h[name] = parse_duration(opts[k])
            except ValueError as e:
                raise CommandFailed(f'invalid argument "{opts[k]}" for "--{k.replace("_", "-")}" '
                                    f"flag: {e}", 125) from None
    if opts["health_retries"]:
        h["Retries"] = opts["health_retries"]
    return h


# ---------------------------------------------------------------------- run / create


def _pull(ctx: Context, image: str) -> None:
    from .images import split_tag

    repo, tag = split_tag(image)
    if "@" not in image and tag is None:
        tag = "latest"
    ctx.error(f"Unable to find image '{repo}:{tag}' locally" if "@" not in image
              else f"Unable to find image '{image}' locally")
    params = {"fromImage": repo, "tag": tag or ""}
    from .images import _show_stream

    old_out = ctx.out
    ctx.out = ctx.err  # pull progress goes to stderr for run/create
    try:
        resp = ctx.client().raw("POST", "/images/create", params)
        try:
            _show_stream(ctx, resp)
        finally:
            resp.close()
    finally:
        ctx.out = old_out


def _create(ctx: Context, opts: dict[str, Any], args: list[str], verb: str) -> str:
    """Create the container (pulling a missing image first). ``run`` reports failures as
    ``hoist: <message>`` + a usage hint with 125; ``create`` prints the daemon's message
    and exits 1, as docker 28 does."""
    image, cmd = args[0], args[1:]
    body = create_body(opts, image, cmd)
    cidfile = opts["cidfile"]
    if cidfile and os.path.exists(cidfile):
        raise _failed(verb, "container ID file found, make sure the other container "
                      f"isn't running or delete {cidfile}")
    params: dict[str, str] = {}
    if opts["name"]:
        params["name"] = opts["name"]
    if opts["platform"]:
        params["platform"] = opts["platform"]
    client = ctx.client()
    try:
        try:
            res = client.post_json("/containers/create", params, body)
        except NotFound as e:
            if "No such image" not in e.message or opts.get("pull") == "never":
                raise
            try:
                _pull(ctx, image)
            except HoistError as pe:
                raise _failed(verb, pe.message) from None
            res = client.post_json("/containers/create", params, body)
    except HoistError as e:
        if isinstance(e, CommandFailed):
            raise
        raise _failed(verb, e.message) from None
    for w in (res or {}).get("Warnings") or []:
        ctx.error(f"WARNING: {w}")
    cid = res["Id"]
    if cidfile:
        with open(cidfile, "x") as f:
            f.write(cid)
    return cid


def _failed(verb: str, message: str) -> CommandFailed:
    if verb == "run":
        return CommandFailed(f"hoist: {message}\n\nRun 'hoist run --help' for more information", 125)
    return CommandFailed(message, 1)


def run_create(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    cid = _create(ctx, opts, args, "create")
    ctx.write(cid + "\n")
    return 0


def _start_error(e: HoistError) -> CommandFailed:
    msg = e.message
    code = 125
    low = msg.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        code = 127
    elif "permission denied" in low:
        code = 126
    return CommandFailed(f"hoist: {msg}\n\nRun 'hoist run --help' for more information", code)


def run_run(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    import threading

    from . import streams

    if opts["detach"] and opts["attach"]:
        raise CommandFailed("hoist: Conflicting options: -a and -d\n\nRun 'hoist run --help' "
                            "for more information", 125)
    try:
        detach_keys = streams.parse_detach_keys(opts["detach_keys"] or "ctrl-p,ctrl-q")
    except ValueError as e:
        raise CommandFailed(f"hoist: {e}", 125) from None
    if opts["tty"] and opts["interactive"] and not opts["detach"] and not _stdin_is_tty(ctx):
        raise CommandFailed("the input device is not a TTY", 1)
    cid = _create(ctx, opts, args, "run")
    client = ctx.client()
    if opts["detach"]:
        try:
            client.request("POST", f"/containers/{cid}/start")
        except HoistError as e:
            raise _start_error(e) from None
        ctx.write(cid + "\n")
        return 0
    ctx.out.flush()
    tty = opts["tty"]
    attach = [a.lower() for a in opts["attach"]] or (
        ["stdin", "stdout", "stderr"] if opts["interactive"] else ["stdout", "stderr"])
    use_stdin = "stdin" in attach and opts["interactive"]
    conn = streams.hijack(client, f"/containers/{cid}/attach",
                          {"stream": "1", "stdin": "1" if use_stdin else "0",
                           "stdout": "1" if "stdout" in attach else "0",
                           "stderr": "1" if "stderr" in attach else "0"})
    # The wait is registered before start so a short-lived container's exit is not missed.
    from ..client.http import Client

    waiter = Client(client.host, autostart=False, version=client.negotiate())
    wait_resp = waiter.raw("POST", f"/containers/{cid}/wait",
                           {"condition": "removed" if opts["rm"] else "next-exit"})
    restore = None
    in_fd = _fileno(ctx.inp)
    try:
        if tty and use_stdin and in_fd is not None and os.isatty(in_fd):
            restore = _raw_mode(in_fd)
        try:
            client.request("POST", f"/containers/{cid}/start")
        except HoistError as e:
            conn.close()
            raise _start_error(e) from None
        if tty:
            _resize(client, f"/containers/{cid}/resize")
            _on_winch(lambda: _resize(client, f"/containers/{cid}/resize"))
        elif opts["sig_proxy"]:
            _proxy_signals(client, cid)
        stop = threading.Event()
        detached = [False]
        if use_stdin and in_fd is not None:
            def pump() -> None:
                if streams.pump_stdin(conn, in_fd, detach_keys, stop):
                    detached[0] = True
                    conn.close_write()
                    try:
                        conn.sock.shutdown(2)
                    except OSError:
                        pass
            threading.Thread(target=pump, daemon=True).start()
        out_fd = _fileno(ctx.out) or 1
        err_fd = _fileno(ctx.err) or 2
        streams.copy_output(conn, tty, out_fd, err_fd)
        stop.set()
    finally:
        if restore is not None:
            restore()
    if detached[0]:
        wait_resp.close()
        return 0
    import json

    try:
        res = json.loads(wait_resp.read() or b"{}")
    finally:
        wait_resp.close()
    if (res.get("Error") or {}).get("Message"):
        ctx.error(res["Error"]["Message"])
    return int(res.get("StatusCode", 0))


def _console_size() -> list[int]:
    """[height, width] of the local terminal (stdout), as docker sends it so the
    container's tty has its size from the first instruction on."""
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return [0, 0]
    return [size.lines, size.columns]


def _stdin_is_tty(ctx: Context) -> bool:
    fd = _fileno(ctx.inp)
    return fd is not None and os.isatty(fd)


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def _raw_mode(fd: int) -> Any:
    import termios
    import tty

    old = termios.tcgetattr(fd)
    tty.setraw(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _resize(client: Any, path: str) -> None:
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return
    try:
        client.request("POST", path, {"h": size.lines, "w": size.columns})
    except HoistError:
        pass


def _on_winch(fn: Any) -> None:
    import signal

    signal.signal(signal.SIGWINCH, lambda *_: fn())


def _proxy_signals(client: Any, cid: str) -> None:
    import signal

    from ..client.http import Client

    def forward(sig: int, _frame: Any) -> None:
        try:
            Client(client.host, autostart=False).request(
                "POST", f"/containers/{cid}/kill", {"signal": str(sig)})
        except HoistError:
            pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2):
        signal.signal(s, forward)


# ---------------------------------------------------------------------- simple verbs


def _each(ctx: Context, args: list[str], fn: Any, *, echo: bool = True) -> int:
    errors = []
    for a in args:
        try:
            fn(a)
            if echo:
                ctx.write(a + "\n")
        except HoistError as e:
            errors.append(e.message)
    if errors:
        raise CommandFailed("\n".join(errors), 1)
    return 0


def run_start(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CommandfailedMulti()
        from . import streams

        cid = args[0]
        info = client.get_json(f"/containers/{quote_name(cid)}/json")
        tty = info["Config"]["Tty"]
        conn = streams.hijack(client, f"/containers/{info['Id']}/attach",
                              {"stream": "1", "stdin": "1" if opts["interactive"] else "0",
                               "stdout": "1", "stderr": "1"})
        client.request("POST", f"/containers/{info['Id']}/start")
        if opts["interactive"]:
            import threading

            stop = threading.Event()
            in_fd = _fileno(ctx.inp) or 0
            threading.Thread(target=streams.pump_stdin,
                             args=(conn, in_fd, b"\x10\x11", stop), daemon=True).start()
        streams.copy_output(conn, tty, _fileno(ctx.out) or 1, _fileno(ctx.err) or 2)
        res = client.post_json(f"/containers/{info['Id']}/wait")
        return int((res or {}).get("StatusCode", 0))
    errors = []
    for a in args:
        try:
            client.request("POST", f"/containers/{quote_name(a)}/start")
            ctx.write(a + "\n")
        except HoistError as e:
            ctx.error(e.message)
            errors.append(a)
    if errors:
        raise CommandFailed(f"Error: failed to start containers: {', '.join(errors)}", 1)
    return 0


class CommandfailedMulti(CommandFailed):
    def __init__(self) -> None:
        super().__init__("you cannot start and attach multiple containers at once", 1)


def run_stop(ctx: Context, opts: dict[str, Any], args: list[str], verb: str = "stop") -> int:
    client = ctx.client()
    params: dict[str, str] = {}
    if opts.get("time") is not None and opts["time"] != -1:
        params["t"] = str(opts["time"])
    if opts.get("signal"):
        params["signal"] = opts["signal"]
    return _each(ctx, args, lambda a: client.request("POST", f"/containers/{quote_name(a)}/{verb}",
                                                     params))


def run_restart(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    return run_stop(ctx, opts, args, "restart")


def run_kill(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params = {"signal": opts["signal"]} if opts["signal"] else None
    return _each(ctx, args, lambda a: client.request("POST", f"/containers/{quote_name(a)}/kill",
                                                     params))


def run_pause(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    return _each(ctx, args, lambda a: client.request("POST", f"/containers/{quote_name(a)}/pause"))


def run_unpause(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    return _each(ctx, args, lambda a: client.request("POST", f"/containers/{quote_name(a)}/unpause"))


def run_rm(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params = {"force": "1" if opts["force"] else None, "v": "1" if opts["volumes"] else None,
              "link": "1" if opts["link"] else None}
    return _each(ctx, args, lambda a: client.request("DELETE", f"/containers/{quote_name(a)}",
                                                     params))


def run_wait(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    errors = []
    for a in args:
        try:
            res = client.post_json(f"/containers/{quote_name(a)}/wait")
            ctx.write(f"{res.get('StatusCode', 0)}\n")
        except HoistError as e:
            errors.append(e.message)
    if errors:
        raise CommandFailed("\n".join(errors), 1)
    return 0


def run_rename(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    old, new = args
    if not new.strip():
        raise CommandFailed("Error: Neither old nor new names may be empty", 1)
    try:
        ctx.client().request("POST", f"/containers/{quote_name(old)}/rename", {"name": new})
    except HoistError as e:
        raise CommandFailed(f"{e.message}\nError: failed to rename container named {old}", 1) from None
    return 0


def run_logs(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from . import streams

    client = ctx.client()
    cid = args[0]
    info = client.get_json(f"/containers/{quote_name(cid)}/json")
    params = {"stdout": "1", "stderr": "1", "follow": "1" if opts["follow"] else None,
              "timestamps": "1" if opts["timestamps"] else None,
              "details": "1" if opts["details"] else None,
              "tail": opts["tail"] or "all", "since": opts["since"] or None,
              "until": opts["until"] or None}
    ctx.out.flush()
    resp = client.raw("GET", f"/containers/{info['Id']}/logs", params)
    try:
        streams.copy_output(resp, bool(info["Config"].get("Tty")), _fileno(ctx.out) or 1,
                            _fileno(ctx.err) or 2)
    finally:
        resp.close()
    return 0


# ---------------------------------------------------------------------- ps

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS",
              "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS",
              "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE",
              "LocalVolumes": "LOCAL VOLUMES"}
DEFAULT_PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
                    "{{.Ports}}\t{{.Names}}")


def _ps_row(c: dict[str, Any], trunc: bool) -> dict[str, Any]:
    import time

    from .output import ellipsis, since

    cid = c.get("Id", "")
    names = [n.lstrip("/") for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    cmd = c.get("Command", "")
    command = f'"{ellipsis(cmd, 20) if trunc else cmd}"'
    created = c.get("Created", 0)
    size = human_size_precision(c.get("SizeRw") or 0, 3)
    if True:
        if c.get("SizeRootFs"):
            size += f" (virtual {human_size_precision(c['SizeRootFs'], 3)})"
    labels = c.get("Labels") or {}
    nets = sorted((c.get("NetworkSettings") or {}).get("Networks") or {})
    tm = time.localtime(created)
    from .output import go_time_string

    return {"ID": cid[:12] if trunc else cid, "Image": c.get("Image", ""),
            "Command": command, "CreatedAt": go_time_string(created),
            "RunningFor": since(created) if created else "",
            "Status": c.get("Status", ""), "Ports": "", "Names": ",".join(names),
            "Size": size, "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []),
            "Networks": ",".join(nets), "State": c.get("State", ""), "LocalVolumes": "0",
            "Platform": None,
            "_tm": tm}


def run_ps(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    params: dict[str, Any] = {}
    if opts["all"]:
        params["all"] = "1"
    if opts["last"] and opts["last"] != -1:
        params["limit"] = str(opts["last"])
    if opts["latest"]:
        params["limit"] = "1"
    if opts["size"]:
        params["size"] = "1"
    filters = filters_json(opts["filter"])
    if filters:
        params["filters"] = filters
    fmt = opts["format"] or "table"
    if opts["quiet"] and fmt == "table":
        fmt = "{{.ID}}"
    if "{{.Size}}" in fmt:
        params["size"] = "1"
    conts = ctx.client().get_json("/containers/json", params) or []
    trunc = not opts["no_trunc"]
    rows = [_ps_row(c, trunc) for c in conts]
    for r in rows:
        del r["_tm"]
    if fmt == "table":
        cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        if opts["size"]:
            cols.append("Size")
        ctx.write(table([PS_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows)))
        return 0
    from .images import format_rows

    ctx.write(format_rows(fmt, rows, default_table=DEFAULT_PS_TABLE, headers=PS_HEADERS,
                          type_name="*formatter.ContainerContext"))
    return 0


# ---------------------------------------------------------------------- exec


def run_exec(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    import threading

    from . import streams

    cid, cmd = args[0], args[1:]
    client = ctx.client()
    env = []
    for path in opts["env_file"]:
        env += _read_env_file(path)
    env += _env(opts["env"])
    body: dict[str, Any] = {
        "User": opts["user"], "Privileged": opts["privileged"], "Tty": opts["tty"],
        "AttachStdin": opts["interactive"] and not opts["detach"],
        "AttachStdout": not opts["detach"], "AttachStderr": not opts["detach"],
        "DetachKeys": opts["detach_keys"], "Env": env or None, "WorkingDir": opts["workdir"],
        "Cmd": cmd,
    }
    if opts["tty"]:
        body["ConsoleSize"] = _console_size()
    res = client.post_json(f"/containers/{quote_name(cid)}/exec", None, body)
    eid = res["Id"]
    if opts["detach"]:
        client.post_json(f"/exec/{eid}/start", None, {"Detach": True, "Tty": opts["tty"]})
        return 0
    ctx.out.flush()
    in_fd = _fileno(ctx.inp)
    restore = None
    if opts["tty"] and opts["interactive"] and in_fd is not None and os.isatty(in_fd):
        restore = _raw_mode(in_fd)
    try:
        start: dict[str, Any] = {"Detach": False, "Tty": opts["tty"]}
        if opts["tty"]:
            start["ConsoleSize"] = body["ConsoleSize"]
        conn = streams.hijack(client, f"/exec/{eid}/start", None, start)
        if opts["tty"]:
            _resize(client, f"/exec/{eid}/resize")
        stop = threading.Event()
        if opts["interactive"] and in_fd is not None:
            keys = streams.parse_detach_keys(opts["detach_keys"] or "ctrl-p,ctrl-q")
            threading.Thread(target=streams.pump_stdin, args=(conn, in_fd, keys, stop),
                             daemon=True).start()
        streams.copy_output(conn, opts["tty"], _fileno(ctx.out) or 1, _fileno(ctx.err) or 2)
        stop.set()
    finally:
        if restore is not None:
            restore()
    info = client.get_json(f"/exec/{eid}/json")
    return int(info.get("ExitCode") or 0)


# ---------------------------------------------------------------------- top, diff, port, export, cp, commit


def run_top(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    res = ctx.client().get_json(f"/containers/{quote_name(args[0])}/top", params)
    ctx.write(table(res.get("Titles") or [], res.get("Processes") or [], minwidth=20, padding=1))
    return 0


def run_diff(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    res = ctx.client().get_json(f"/containers/{quote_name(args[0])}/changes") or []
    kinds = {0: "C", 1: "A", 2: "D"}
    ctx.write("".join(f"{kinds.get(c['Kind'], '?')} {c['Path']}\n" for c in res))
    return 0


def run_port(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    info = ctx.client().get_json(f"/containers/{quote_name(args[0])}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) > 1:
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
        binds = ports.get(want)
        if not binds:
            raise CommandFailed(f"Error: No public port '{args[1]}' published for {args[0]}", 1)
        ctx.write("".join(f"{b.get('HostIp', '')}:{b.get('HostPort', '')}\n" for b in binds))
        return 0
    for port, binds in sorted(ports.items()):
        for b in binds or []:
            ctx.write(f"{port} -> {b.get('HostIp', '')}:{b.get('HostPort', '')}\n")
    return 0


def run_export(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    out_path = opts["output"]
    if not out_path and ctx.out_is_terminal():
        raise CommandFailed("cowardly refusing to save to a terminal. Use the -o flag or "
                            "redirect", 1)
    client = ctx.client()
    if out_path:
        with open(out_path, "wb") as f:
            client.download(f"/containers/{quote_name(args[0])}/export", None, f)
    else:
        client.download(f"/containers/{quote_name(args[0])}/export", None, ctx.binary_out())
    return 0


def run_cp(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    src, dst = args

    def split(p: str) -> tuple[str, str] | None:
        if p.startswith("/") or p.startswith(".") or ":" not in p:
            return None
        c, _, path = p.partition(":")
        return c, path

    s, d = split(src), split(dst)
    if s and d:
        raise CommandFailed("copying between containers is not supported", 1)
    if not s and not d:
        raise CommandFailed("must specify at least one container source", 1)
    client = ctx.client()
    if s:
        cname, cpath = s
        resp = client.raw("GET", f"/containers/{quote_name(cname)}/archive", {"path": cpath})
        try:
            if dst == "-":
                resp.copy_to(ctx.binary_out())
                return 0
            import tarfile

            import io

            data = io.BytesIO(resp.read())
        finally:
            resp.close()
        _extract_to(data, cpath, dst)
        return 0
    cname, cpath = d
    if src == "-":
        body: Any = ctx.binary_in()
        client.request("PUT", f"/containers/{quote_name(cname)}/archive", {"path": cpath},
                       body, {"Content-Type": "application/x-tar"})
        return 0
    if not os.path.lexists(src):
        raise CommandFailed(f"stat {src}: no such file or directory", 1)
    # Decide the target the way docker does: an existing container dir receives the
    # source by its own name; otherwise the source is renamed to the target's base name.
    target_dir, name = cpath, os.path.basename(os.path.normpath(src))
    try:
        client.request("HEAD", f"/containers/{quote_name(cname)}/archive", {"path": cpath})
        is_dir = True
        stat_hdr = None
    except NotFound:
        is_dir = False
    except HoistError:
        is_dir = True
    if is_dir:
        resp_stat = client._request("HEAD", client._url(f"/containers/{quote_name(cname)}/archive",
                                                         {"path": cpath}))[0]
        stat_hdr = resp_stat.getheader("X-Docker-Container-Path-Stat")
        if stat_hdr:
            import base64
            import json

            st = json.loads(base64.b64decode(stat_hdr))
            is_dir = bool(st.get("mode", 0) & (1 << 31))
    if not is_dir:
        target_dir, name = os.path.dirname(cpath.rstrip("/")) or "/", os.path.basename(cpath.rstrip("/"))
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.add(src, arcname=name, recursive=True)
    client.request("PUT", f"/containers/{quote_name(cname)}/archive",
                   {"path": target_dir, "copyUIDGID": "1" if opts["archive"] else None},
                   buf.getvalue(), {"Content-Type": "application/x-tar"})
    return 0


def _extract_to(data: Any, cpath: str, dst: str) -> None:
    import tarfile

    with tarfile.open(fileobj=data, mode="r:") as tf:
        members = tf.getmembers()
        if not members:
            return
        root = members[0].name.split("/")[0]
        if os.path.isdir(dst):
            base = dst
            rename = None
        else:
            base = os.path.dirname(os.path.abspath(dst))
            rename = os.path.basename(dst)
        for m in members:
            if rename is not None:
                rest = m.name[len(root):]
                m.name = rename + rest
        if hasattr(tarfile, "tar_filter"):
            tf.extractall(base, members=members, filter="tar")
        else:  # pragma: no cover - Python before 3.11.4
            tf.extractall(base, members=members)


def run_commit(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    params: dict[str, Any] = {"container": args[0], "author": opts["author"] or None,
                              "comment": opts["message"] or None,
                              "pause": "1" if opts["pause"] else "0",
                              "changes": opts["change"] or None}
    if len(args) > 1:
        from .images import split_tag

        repo, tag = split_tag(args[1])
        params["repo"] = repo
        params["tag"] = tag or None
    res = ctx.client().post_json("/commit", params)
    ctx.write(res["Id"] + "\n")
    return 0


def run_prune(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .images import confirm
    from .output import human_size

    if not opts["force"] and not confirm(
            ctx, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"):
        return 0
    filters = filters_json(opts["filter"])
    res = ctx.client().post_json("/containers/prune", {"filters": filters} if filters else None)
    deleted = res.get("ContainersDeleted") or []
    if deleted:
        ctx.write("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    ctx.write(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed') or 0)}\n")
    return 0


def run_update(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    body: dict[str, Any] = {}
    if opts["memory"]:
        body["Memory"] = _mem(opts["memory"], "memory")
    if opts["memory_swap"]:
        body["MemorySwap"] = _mem(opts["memory_swap"], "memory-swap")
    if opts["cpus"]:
        body["NanoCpus"] = _nano_cpus(opts["cpus"])
    if opts["cpu_shares"]:
        body["CpuShares"] = opts["cpu_shares"]
    if opts["cpuset_cpus"]:
        body["CpusetCpus"] = opts["cpuset_cpus"]
    if opts["pids_limit"]:
        body["PidsLimit"] = opts["pids_limit"]
    if opts["restart"]:
        body["RestartPolicy"] = _restart(opts["restart"])
    client = ctx.client()
    return _each(ctx, args, lambda a: client.post_json(f"/containers/{quote_name(a)}/update",
                                                       None, body))


# ---------------------------------------------------------------------- stats


def _cpu_percent(s: dict[str, Any]) -> float:
    cur, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cur.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = (cur.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cur.get("online_cpus") or len((cur.get("cpu_usage") or {}).get("percpu_usage") or [])
    if sys_delta > 0 and cpu_delta > 0:
        return cpu_delta / sys_delta * online * 100.0
    return 0.0


def _mem_usage(m: dict[str, Any]) -> float:
    usage = m.get("usage", 0)
    st = m.get("stats") or {}
    if "total_inactive_file" in st and st["total_inactive_file"] < usage:
        return usage - st["total_inactive_file"]
    if "inactive_file" in st and st["inactive_file"] < usage:
        return usage - st["inactive_file"]
    return usage


def stats_row(s: dict[str, Any], name: str, cid: str) -> dict[str, str]:
    from .output import bytes_size

    mem = s.get("memory_stats") or {}
    usage = _mem_usage(mem)
    limit = mem.get("limit", 0)
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    rd = wr = 0
    for e in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (e.get("op") or "").lower()
        if op == "read":
            rd += e.get("value", 0)
        elif op == "write":
            wr += e.get("value", 0)
    pids = (s.get("pids_stats") or {}).get("current", 0)
    mem_pct = usage / limit * 100.0 if limit else 0.0
    return {"Container": cid, "ID": cid, "Name": name.lstrip("/"),
            "CPUPerc": f"{_cpu_percent(s):.2f}%",
            "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
            "MemPerc": f"{mem_pct:.2f}%",
            "NetIO": f"{human_size_precision(rx, 3)} / {human_size_precision(tx, 3)}",
            "BlockIO": f"{human_size_precision(rd, 3)} / {human_size_precision(wr, 3)}", "PIDs": str(pids)}


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
DEFAULT_STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                       "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def run_stats(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    if args:
        targets = args
    else:
        conts = client.get_json("/containers/json", {"all": "1"} if opts["all"] else None) or []
        targets = [c["Id"] for c in conts]
    fmt = opts["format"] or DEFAULT_STATS_TABLE
    from .images import format_rows

    infos = [client.get_json(f"/containers/{quote_name(t)}/json") for t in targets]
    while True:
        rows = []
        for info in infos:
            s = client.get_json(f"/containers/{info['Id']}/stats", {"stream": "0"})
            cid = info["Id"] if opts["no_trunc"] else info["Id"][:12]
            rows.append(stats_row(s or {}, info.get("Name", ""), cid))
        text = format_rows(fmt, rows, default_table=DEFAULT_STATS_TABLE, headers=STATS_HEADERS,
                           type_name="*formatter.statsContext")
        if opts["no_stream"]:
            ctx.write(text)
            return 0
        # Live view: redraw in place like docker's (clear screen, cursor home); each
        # one-shot sample already spans the daemon's sampling interval.
        ctx.write("\033[2J\033[H" + text)
        ctx.out.flush()
        if not infos:
            import time

            time.sleep(1)


def run_attach(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    import threading

    from . import streams

    client = ctx.client()
    info = client.get_json(f"/containers/{quote_name(args[0])}/json")
    if not (info.get("State") or {}).get("Running"):
        raise CommandFailed("You cannot attach to a stopped container, start it first", 1)
    tty = info["Config"].get("Tty", False)
    use_stdin = not opts["no_stdin"] and info["Config"].get("OpenStdin", False)
    conn = streams.hijack(client, f"/containers/{info['Id']}/attach",
                          {"stream": "1", "stdin": "1" if use_stdin else "0", "stdout": "1",
                           "stderr": "1", "detachKeys": opts["detach_keys"] or None})
    in_fd = _fileno(ctx.inp)
    restore = None
    if tty and use_stdin and in_fd is not None and os.isatty(in_fd):
        restore = _raw_mode(in_fd)
    try:
        if tty:
            _resize(client, f"/containers/{info['Id']}/resize")
        elif opts["sig_proxy"]:
            _proxy_signals(client, info["Id"])
        stop = threading.Event()
        if use_stdin and in_fd is not None:
            keys = streams.parse_detach_keys(opts["detach_keys"] or "ctrl-p,ctrl-q")
            threading.Thread(target=streams.pump_stdin, args=(conn, in_fd, keys, stop),
                             daemon=True).start()
        streams.copy_output(conn, tty, _fileno(ctx.out) or 1, _fileno(ctx.err) or 2)
        stop.set()
    finally:
        if restore is not None:
            restore()
    res = client.get_json(f"/containers/{info['Id']}/json")
    return int((res.get("State") or {}).get("ExitCode") or 0)


# ---------------------------------------------------------------------- command table


def _run_flags(run: bool) -> list[Flag]:
    f = [
        Flag("add-host", None, "list", help="Add a custom host-to-IP mapping (host:ip)"),
        Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
        Flag("cap-add", None, "list", help="Add Linux capabilities"),
        Flag("cap-drop", None, "list", help="Drop Linux capabilities"),
        Flag("cidfile", None, "string", help="Write the container ID to the file"),
        Flag("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
        Flag("cpus", None, "string", typename="decimal", help="Number of CPUs"),
        Flag("cpuset-cpus", None, "string", help="CPUs in which to allow execution (0-3, 0,1)"),
        Flag("device-cgroup-rule", None, "list",
             help="Add a rule to the cgroup allowed devices list"),
        Flag("domainname", None, "string", help="Container NIS domain name"),
        Flag("entrypoint", None, "string", help="Overwrite the default ENTRYPOINT of the image"),
        Flag("env", "e", "list", help="Set environment variables"),
        Flag("env-file", None, "list", help="Read in a file of environment variables"),
        Flag("group-add", None, "list", help="Add additional groups to join"),
        Flag("health-cmd", None, "string", help="Command to run to check health"),
        Flag("health-interval", None, "string", typename="duration",
             help="Time between running the check (ms|s|m|h) (default 0s)"),
        Flag("health-retries", None, "int",
             help="Consecutive failures needed to report unhealthy"),
        Flag("health-start-period", None, "string", typename="duration",
             help="Start period for the container to initialize before starting health-retries "
                  "countdown (ms|s|m|h) (default 0s)"),
        Flag("health-timeout", None, "string", typename="duration",
             help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        Flag("hostname", "h", "string", help="Container host name"),
        Flag("init", None, help="Run an init inside the container that forwards signals and "
                                "reaps processes"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("label", "l", "list", help="Set meta data on a container"),
        Flag("label-file", None, "list", help="Read in a line delimited file of labels"),
        Flag("memory", "m", "string", typename="bytes", help="Memory limit"),
        Flag("memory-swap", None, "string", typename="bytes",
             help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        Flag("mount", None, "list", typename="mount",
             help="Attach a filesystem mount to the container"),
        Flag("name", None, "string", help="Assign a name to the container"),
        Flag("network", None, "string", typename="network",
             help="Connect a container to a network"),
        Flag("net", None, "string", hidden=True),
        Flag("no-healthcheck", None, help="Disable any container-specified HEALTHCHECK"),
        Flag("pids-limit", None, "int", help="Tune container pids limit (set -1 for unlimited)"),
        Flag("platform", None, "string", help="Set platform if server is multi-platform capable"),
        Flag("privileged", None, help="Give extended privileges to this container"),
        Flag("publish", "p", "list", help="Publish a container's port(s) to the host"),
        Flag("pull", None, "string", default="missing",
             help='Pull image before creating ("always", "missing", "never")'),
        Flag("read-only", None, help="Mount the container's root filesystem as read only"),
        Flag("restart", None, "string", default="no",
             help="Restart policy to apply when a container exits"),
        Flag("rm", None, help="Automatically remove the container and its associated anonymous "
                              "volumes when it exits"),
        Flag("runtime", None, "string", help="Runtime to use for this container"),
        Flag("security-opt", None, "list", help="Security Options"),
        Flag("shm-size", None, "string", typename="bytes", help="Size of /dev/shm"),
        Flag("stop-signal", None, "string", help="Signal to stop the container"),
        Flag("stop-timeout", None, "string", typename="int",
             help="Timeout (in seconds) to stop a container"),
        Flag("sysctl", None, "list", typename="map", help="Sysctl options"),
        Flag("tmpfs", None, "list", help="Mount a tmpfs directory"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag("ulimit", None, "list", typename="ulimit", help="Ulimit options"),
        Flag("user", "u", "string",
             help="Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("volume", "v", "list", help="Bind mount a volume"),
        Flag("workdir", "w", "string", help="Working directory inside the container"),
    ]
    if run:
        f += [Flag("detach", "d", help="Run container in background and print container ID"),
              Flag("detach-keys", None, "string",
                   help="Override the key sequence for detaching a container"),
              Flag("sig-proxy", None, "bool", True, help="Proxy received signals to the process")]
    return f


def _norm(fn: Any) -> Any:
    def run(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
        if opts.get("net") and not opts.get("network"):
            opts["network"] = opts["net"]
        if opts.get("restart") == "no":
            opts["restart"] = ""
        return fn(ctx, opts, args)
    return run


def build() -> dict[str, Command]:
    fmt = Flag("format", None, "string", help=FORMAT_HELP)

    def run_cmd() -> Command:
        return Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
                       "Create and run a new container from an image", flags=_run_flags(True),
                       args=(1, None), run=_norm(run_run), interspersed=False,
                       aliases="hoist container run, hoist run")

    def create_cmd() -> Command:
        return Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
                       "Create a new container", flags=_run_flags(False), args=(1, None),
                       run=_norm(run_create), interspersed=False,
                       aliases="hoist container create, hoist create")

    def ps_cmd(name: str = "ps", alias_names: tuple[str, ...] = ()) -> Command:
        return Command(name, f"{name} [OPTIONS]", "List containers", flags=(
            Flag("all", "a", help="Show all containers (default shows just running)"),
            Flag("filter", "f", "filter", help="Filter output based on conditions provided"),
            fmt, Flag("last", "n", "int", -1, help="Show n last created containers (includes "
                                                    "all states)"),
            Flag("latest", "l", help="Show the latest created container (includes all states)"),
            Flag("no-trunc", None, help="Don't truncate output"),
            Flag("quiet", "q", help="Only display container IDs"),
            Flag("size", "s", help="Display total file sizes")),
            run=run_ps, alias_names=alias_names,
            aliases="hoist container ls, hoist container list, hoist container ps, hoist ps")

    def simple(name: str, use: str, short: str, run: Any, flags: tuple[Flag, ...] = (),
               args: tuple[int, int | None] = (1, None), interspersed: bool = True) -> Command:
        return Command(name, use, short, flags=flags, args=args, run=run,
                       aliases=f"hoist container {name}, hoist {name}", interspersed=interspersed)

    def cmds() -> dict[str, Command]:
        stop_flags = (Flag("signal", "s", "string", help="Signal to send to the container"),
                      Flag("time", "t", "int", -1,
                           help="Seconds to wait before killing the container"))
        return {
            "run": run_cmd(), "create": create_cmd(), "ps": ps_cmd(),
            "start": simple("start", "start [OPTIONS] CONTAINER [CONTAINER...]",
                            "Start one or more stopped containers", run_start, (
                                Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
                                Flag("detach-keys", None, "string",
                                     help="Override the key sequence for detaching a container"),
                                Flag("interactive", "i", help="Attach container's STDIN"))),
            "stop": simple("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]",
                           "Stop one or more running containers", run_stop, stop_flags),
            "restart": simple("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]",
                              "Restart one or more containers", run_restart, stop_flags),
            "kill": simple("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]",
                           "Kill one or more running containers", run_kill,
                           (Flag("signal", "s", "string",
                                 help="Signal to send to the container"),)),
            "rm": simple("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]",
                         "Remove one or more containers", run_rm, (
                             Flag("force", "f", help="Force the removal of a running container "
                                                     "(uses SIGKILL)"),
                             Flag("link", "l", help="Remove the specified link"),
                             Flag("volumes", "v", help="Remove anonymous volumes associated with "
                                                       "the container"))),
            "wait": simple("wait", "wait CONTAINER [CONTAINER...]",
                           "Block until one or more containers stop, then print their exit codes",
                           run_wait),
            "pause": simple("pause", "pause CONTAINER [CONTAINER...]",
                            "Pause all processes within one or more containers", run_pause),
            "unpause": simple("unpause", "unpause CONTAINER [CONTAINER...]",
                              "Unpause all processes within one or more containers", run_unpause),
            "rename": simple("rename", "rename CONTAINER NEW_NAME", "Rename a container",
                             run_rename, args=(2, 2)),
            "logs": simple("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container",
                           run_logs, (
                               Flag("details", None, help="Show extra details provided to logs"),
                               Flag("follow", "f", help="Follow log output"),
                               Flag("since", None, "string", help='Show logs since timestamp '
                                    '(e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for '
                                    '42 minutes)'),
                               Flag("tail", "n", "string", "all",
                                    help="Number of lines to show from the end of the logs"),
                               Flag("timestamps", "t", help="Show timestamps"),
                               Flag("until", None, "string", help='Show logs before a timestamp '
                                    '(e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for '
                                    '42 minutes)')), args=(1, 1)),
            "exec": simple("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
                           "Execute a command in a running container", run_exec, (
                               Flag("detach", "d", help="Detached mode: run command in the "
                                                        "background"),
                               Flag("detach-keys", None, "string",
                                    help="Override the key sequence for detaching a container"),
                               Flag("env", "e", "list", help="Set environment variables"),
                               Flag("env-file", None, "list",
                                    help="Read in a file of environment variables"),
                               Flag("interactive", "i",
                                    help="Keep STDIN open even if not attached"),
                               Flag("privileged", None,
                                    help="Give extended privileges to the command"),
                               Flag("tty", "t", help="Allocate a pseudo-TTY"),
                               Flag("user", "u", "string", help="Username or UID (format: "
                                    '"<name|uid>[:<group|gid>]")'),
                               Flag("workdir", "w", "string",
                                    help="Working directory inside the container")),
                           args=(2, None), interspersed=False),
            "attach": simple("attach", "attach [OPTIONS] CONTAINER",
                             "Attach local standard input, output, and error streams to a "
                             "running container", run_attach, (
                                 Flag("detach-keys", None, "string",
                                      help="Override the key sequence for detaching a container"),
                                 Flag("no-stdin", None, help="Do not attach STDIN"),
                                 Flag("sig-proxy", None, "bool", True,
                                      help="Proxy all received signals to the process")),
                             args=(1, 1)),
            "top": simple("top", "top CONTAINER [ps OPTIONS]",
                          "Display the running processes of a container", run_top,
                          interspersed=False),
            "diff": simple("diff", "diff CONTAINER",
                           "Inspect changes to files or directories on a container's filesystem",
                           run_diff, args=(1, 1)),
            "port": simple("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]",
                           "List port mappings or a specific mapping for the container",
                           run_port, args=(1, 2)),
            "export": simple("export", "export [OPTIONS] CONTAINER",
                             "Export a container's filesystem as a tar archive", run_export,
                             (Flag("output", "o", "string",
                                   help="Write to a file, instead of STDOUT"),), args=(1, 1)),
            "cp": simple("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-",
                         "Copy files/folders between a container and the local filesystem",
                         run_cp, (Flag("archive", "a", help="Archive mode (copy all uid/gid "
                                                            "information)"),
                                  Flag("follow-link", "L",
                                       help="Always follow symbol link in SRC_PATH"),
                                  Flag("quiet", "q", help="Suppress progress output during copy. "
                                       "Progress output is automatically suppressed if no "
                                       "terminal is attached")), args=(2, 2)),
            "commit": simple("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                             "Create a new image from a container's changes", run_commit, (
                                 Flag("author", "a", "string", help='Author (e.g., "John Hannibal '
                                      'Smith <hannibal@a-team.com>")'),
                                 Flag("change", "c", "list",
                                      help="Apply Dockerfile instruction to the created image"),
                                 Flag("message", "m", "string", help="Commit message"),
                                 Flag("pause", "p", "bool", True,
                                      help="Pause container during commit")), args=(1, 2)),
            "update": simple("update", "update [OPTIONS] CONTAINER [CONTAINER...]",
                             "Update configuration of one or more containers", _norm(run_update), (
                                 Flag("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
                                 Flag("cpus", None, "string", typename="decimal",
                                      help="Number of CPUs"),
                                 Flag("cpuset-cpus", None, "string",
                                      help="CPUs in which to allow execution (0-3, 0,1)"),
                                 Flag("memory", "m", "string", typename="bytes",
                                      help="Memory limit"),
                                 Flag("memory-swap", None, "string", typename="bytes",
                                      help="Swap limit equal to memory plus swap: -1 to enable "
                                           "unlimited swap"),
                                 Flag("pids-limit", None, "int",
                                      help="Tune container pids limit (set -1 for unlimited)"),
                                 Flag("restart", None, "string",
                                      help="Restart policy to apply when a container exits"))),
            "stats": simple("stats", "stats [OPTIONS] [CONTAINER...]",
                            "Display a live stream of container(s) resource usage statistics",
                            run_stats, (
                                Flag("all", "a", help="Show all containers (default shows just "
                                                      "running)"),
                                fmt, Flag("no-stream", None, help="Disable streaming stats and "
                                          "only pull the first result"),
                                Flag("no-trunc", None, help="Do not truncate output")),
                            args=(0, None)),
        }

    top = cmds()
    subs = list(cmds().values())
    subs = [s for s in subs if s.name != "ps"] + [ps_cmd("ls", ("list", "ps"))]
    subs.append(Command("prune", "prune [OPTIONS]", "Remove all stopped containers", flags=(
        Flag("filter", None, "filter", help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", help="Do not prompt for confirmation")), run=run_prune))
    subs.append(Command("inspect", "inspect [OPTIONS] CONTAINER [CONTAINER...]",
                        "Display detailed information on one or more containers", flags=(
                            Flag("format", "f", "string", help="Format output using a custom "
                                 "template"),
                            Flag("size", "s", help="Display total file sizes")),
                        args=(1, None), run=_inspect_containers))
    group = Command("container", "container COMMAND", "Manage containers", args=(0, 0),
                    subcommands=subs, category="management")
    top["container"] = group
    return top


def _inspect_containers(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .images import run_inspect

    opts = dict(opts)
    opts["type"] = "container"
    return run_inspect(ctx, opts, args)
