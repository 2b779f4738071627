"""Container commands: run, create, start, ps, logs, stop, kill, restart, rm, wait, exec,
attach, top, stats, pause, unpause, rename, cp, diff, commit, export, update, prune.
Each is an Engine API client that prints and exits as the docker CLI does."""
from __future__ import annotations

import os
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..client import quote_name
from ..errors import HoistError, InvalidArgument, NotFound
from .command import FORMAT_HELP, Command, CommandFailed, Context, Flag, filters_json
from .output import (bytes_size, human_duration, human_size_precision, table,
                     truncate_id)

# ---------------------------------------------------------------------- helpers


def _path(ref: str) -> str:
    return "/containers/" + quote_name(ref)


def _daemon_message(e: HoistError) -> str:
    return getattr(e, "daemon_message", "") or e.message


def _run_error(cmd: str, e: HoistError) -> CommandFailed:
    """How `run`/`create`/`start` report an engine error: 125, or 126/127 when the
    command could not be executed, with docker's wording."""
    text = e.message
    if cmd == "create":
        return CommandFailed(text, 1)  # docker 28's create: the daemon's words, status 1
    msg = f"hoist: {text}\n\nRun 'hoist {cmd} --help' for more information"
    low = _daemon_message(e)
    code = 125
    if e.exit_code in (126, 127):
        code = e.exit_code
    elif "executable file not found" in low or "no such file or directory" in low:
        code = 127
    elif "permission denied" in low or "is a directory" in low:
        code = 126
    return CommandFailed(msg, code)


def _each(ctx: Context, args: list[str], fn: Any, echo: bool = True) -> int:
    """Apply ``fn`` to every argument; print it on success; report failures at the end
    and exit 1 if any, as docker's multi-container commands do."""
    errors = []
    for ref in args:
        try:
            out = fn(ref)
        except HoistError as e:
            errors.append(e.message)
            continue
        if echo:
            ctx.write((out if isinstance(out, str) else ref) + "\n")
    if errors:
        raise CommandFailed("\n".join(errors), 1)
    return 0


def _inspect(client: Any, ref: str) -> dict[str, Any]:
    return client.get_json(_path(ref) + "/json")


def _parse_time_arg(value: str, now: float | None = None) -> str:
    """docker's --since/--until: a Go duration relative to now, a unix timestamp, or an
    RFC 3339 date; the API takes seconds[.nanoseconds]."""
    if not value:
        return ""
    now = time.time() if now is None else now
    try:
        float(value)
        return value
    except ValueError:
        pass
    from .runopts import go_duration_ns

    try:
        ns = go_duration_ns(value)
        return "%.9f" % (now - ns / 1e9)
    except InvalidArgument:
        pass
    from .output import parse_rfc3339

    dt = parse_rfc3339(value)
    if dt is None:
        raise InvalidArgument(f'invalid value for "since/until": "{value}"')
    return "%.9f" % dt.timestamp()


# ---------------------------------------------------------------------- create / run


def _create(ctx: Context, opts: dict[str, Any], args: list[str], cmd_name: str) -> str:
    from .runopts import build_create_body

    image, cmd = args[0], args[1:]
    if opts.get("net") and not opts.get("network"):
        opts["network"] = opts["net"]
    try:
        body = build_create_body(opts, image, cmd)
    except InvalidArgument as e:
        raise CommandFailed(f"hoist: {e.message}\n\nRun 'hoist {cmd_name} --help' for more "
                            "information", 125) from None
    cidfile = opts.get("cidfile")
    if cidfile and os.path.exists(cidfile):
        raise _run_error(cmd_name, HoistError("container ID file found, make sure the other "
                                              f"container isn't running or delete {cidfile}"))
    params: dict[str, str] = {}
    if opts.get("name"):
        params["name"] = opts["name"]
    if opts.get("platform"):
        params["platform"] = opts["platform"]
    client = ctx.client()
    pull = opts.get("pull") or "missing"
    if pull not in ("missing", "always", "never"):
        raise CommandFailed(f'hoist: invalid pull option: \'{pull}\': must be one of "always", '
                            '"missing" or "never"', 125)
    if pull == "always":
        _pull(ctx, image, opts)
    try:
        resp = client.post_json("/containers/create", params, body)
    except NotFound as e:
        if pull != "missing" or "No such image" not in e.message:
            raise _run_error(cmd_name, e) from None
        ctx.error(f"Unable to find image '{_with_tag(image)}' locally")
        _pull(ctx, image, opts)
        try:
            resp = client.post_json("/containers/create", params, body)
        except HoistError as e2:
            raise _run_error(cmd_name, e2) from None
    except HoistError as e:
        raise _run_error(cmd_name, e) from None
    for w in resp.get("Warnings") or []:
        ctx.error(f"WARNING: {w}")
    cid = resp["Id"]
    if cidfile:
        with open(cidfile, "x") as f:
            f.write(cid)
    return cid


def _with_tag(image: str) -> str:
    if "@" in image:
        return image
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last else image + ":latest"


def _pull(ctx: Context, image: str, opts: dict[str, Any]) -> None:
    """Pull as `hoist pull` does (credentials from the config file), progress on stderr,
    as the docker CLI shows it for `run`."""
    from .command import Context as _Ctx
    from .distribution import run_pull

    pctx = _Ctx(host=ctx.host, data_root=ctx.data_root, stdout=ctx.err, stderr=ctx.err,
                client=ctx.client())
    try:
        run_pull(pctx, {"all_tags": False, "platform": opts.get("platform") or "",
                        "quiet": bool(opts.get("quiet"))}, [_with_tag(image)])
    except CommandFailed as e:
        raise CommandFailed(f"hoist: {e.message}\n\nRun 'hoist run --help' for more "
                            "information", 125) from None
    except HoistError as e:
        raise CommandFailed(f"hoist: {e.message}\n\nRun 'hoist run --help' for more "
                            "information", 125) from None


def run_create(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    ctx.write(_create(ctx, opts, args, "create") + "\n")
    return 0


def run_run(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    tty = bool(opts.get("tty"))
    if tty and not opts.get("detach") and opts.get("interactive") and not ctx.in_is_terminal():
        raise CommandFailed("the input device is not a TTY", 1)
    cid = _create(ctx, opts, args, "run")
    client = ctx.client()
    if opts.get("detach"):
        try:
            client.request("POST", _path(cid) + "/start")
        except HoistError as e:
            raise _run_error("run", e) from None
        ctx.write(cid + "\n")
        return 0
    attach = [a.lower() for a in opts.get("attach") or []]
    a_in = "stdin" in attach if attach else bool(opts.get("interactive"))
    a_out = "stdout" in attach if attach else True
    a_err = "stderr" in attach if attach else True
    from . import streams
    from ..client.http import Client

    sock = None
    leftover = b""
    multiplexed = not tty
    if a_in or a_out or a_err:
        params = {"stream": "1", "stdin": "1" if a_in else "0",
                  "stdout": "1" if a_out else "0", "stderr": "1" if a_err else "0"}
        try:
            sock, leftover, multiplexed = streams.hijack(client, _path(cid) + "/attach", params,
                                                         tty=tty)
        except HoistError as e:
            raise _run_error("run", e) from None
    # The wait goes on its own connection before start, so a fast exit is not missed.
    waiter = Client(ctx.host, data_root=ctx.data_root, version=client.api_version)
    condition = "removed" if opts.get("rm") else "next-exit"
    wait_url = waiter._url(_path(cid) + "/wait", {"condition": condition})
    wconn = waiter._connect()
    wconn.send_request("POST", wait_url, {"User-Agent": "hoist-cli"}, b"")
    try:
        client.request("POST", _path(cid) + "/start")
    except HoistError as e:
        if sock is not None:
            sock.close()
        if opts.get("rm"):
            try:
                wconn.read_response("POST").read()
            except OSError:
                pass
        raise _run_error("run", e) from None
    if tty:
        _resize(client, _path(cid) + "/resize")
    proxy = None
    if not tty and opts.get("sig_proxy", True):
        proxy = _SignalProxy(ctx, cid)
    try:
        if sock is not None and _copy_streams(ctx, sock, leftover, multiplexed, tty=tty,
                                              a_in=a_in, detach_keys=opts.get("detach_keys") or ""):
            return 0
    finally:
        if proxy is not None:
            proxy.restore()
    resp = wconn.read_response("POST")
    data = resp.read()
    wconn.close()
    if resp.status >= 400:
        from ..client.http import error_from_response

        raise _run_error("run", error_from_response(resp.status, resp.reason,
                                                     resp.getheader("content-type") or "",
                                                     data, wait_url))
    from .. import fastjson

    doc = fastjson.loads(data or b"{}")
    err = (doc.get("Error") or {}).get("Message") if isinstance(doc.get("Error"), dict) else None
    if err:
        ctx.error(f"hoist: {err}")
    return int(doc.get("StatusCode", 0))


def _resize(client: Any, path: str) -> None:
    """Tell the daemon our terminal's size; a daemon that cannot resize is not fatal."""
    from .streams import terminal_size

    size = terminal_size(1)
    if size:
        try:
            client.request("POST", path, {"h": size[0], "w": size[1]})
        except HoistError:
            pass


def _copy_streams(ctx: Context, sock: Any, leftover: bytes, multiplexed: bool, *, tty: bool,
                  a_in: bool, detach_keys: str) -> bool:
    """Copy a hijacked stream to our stdout/stderr (and stdin to it) until it ends;
    with a TTY on both sides, in raw mode with detach keys. Closes ``sock``; returns
    True when the user detached."""
    from . import streams

    stdin_fd = sys.stdin.fileno() if a_in else None
    try:
        if tty and a_in and ctx.in_is_terminal():
            with streams.RawTerminal(stdin_fd):
                streams.pump(sock, leftover, multiplexed, stdin_fd=stdin_fd,
                             detach_keys=streams.parse_detach_keys(detach_keys))
        else:
            ctx.out.flush()
            streams.pump(sock, leftover, multiplexed, stdin_fd=stdin_fd,
                         out_fd=_fd(ctx.out, 1), err_fd=_fd(ctx.err, 2))
    except streams.Detached:
        return True
    finally:
        sock.close()
    return False


def _fd(stream: Any, default: int) -> int:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return default


class _SignalProxy:
    """Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container (sig-proxy)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")

    def __init__(self, ctx: Context, cid: str) -> None:
        # _signal, not signal: the latter imports enum, ~3 ms of every `hoist run`.
        import _signal

        self.saved: dict[int, Any] = {}
        self.ctx, self.cid = ctx, cid
        for name in self.SIGNALS:
            num = getattr(_signal, name)
            self.saved[num] = _signal.signal(num, self._forward)

    def _forward(self, num: int, frame: Any) -> None:
        from ..client.http import Client

        try:
            Client(self.ctx.host, data_root=self.ctx.data_root).request(
                "POST", _path(self.cid) + "/kill", {"signal": str(num)})
        except HoistError:
            pass

    def restore(self) -> None:
        import _signal

        for num, handler in self.saved.items():
            _signal.signal(num, handler)


# ---------------------------------------------------------------------- start / attach


def run_start(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    if not (opts["attach"] or opts["interactive"]):
        failed = []
        for ref in args:
            try:
                client.request("POST", _path(ref) + "/start")
                ctx.write(ref + "\n")
            except HoistError as e:
                ctx.error(e.message)
                failed.append(ref)
        if failed:  # docker 28 closes with a summary line
            raise CommandFailed(f"Error: failed to start containers: {', '.join(failed)}", 1)
        return 0
    if len(args) > 1:
        raise CommandFailed("you cannot start and attach multiple containers at once", 1)
    ref = args[0]
    info = _inspect(client, ref)
    tty = bool(info["Config"].get("Tty"))
    a_in = bool(opts["interactive"] and info["Config"].get("OpenStdin"))
    from . import streams

    params = {"stream": "1", "stdin": "1" if a_in else "0", "stdout": "1", "stderr": "1"}
    sock, leftover, multiplexed = streams.hijack(client, _path(ref) + "/attach", params, tty=tty)
    from ..client.http import Client

    waiter = Client(ctx.host, data_root=ctx.data_root, version=client.api_version)
    wconn = waiter._connect()
    wconn.send_request("POST", waiter._url(_path(ref) + "/wait", {"condition": "next-exit"}),
                       {"User-Agent": "hoist-cli"}, b"")
    try:
        client.request("POST", _path(ref) + "/start")
    except HoistError as e:
        sock.close()
        raise _run_error("start", e) from None
    if _copy_streams(ctx, sock, leftover, multiplexed, tty=tty, a_in=a_in,
                     detach_keys=opts.get("detach_keys") or ""):
        return 0
    import json

    doc = json.loads(wconn.read_response("POST").read() or b"{}")
    return int(doc.get("StatusCode", 0))


def run_attach(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    ref = args[0]
    info = _inspect(client, ref)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CommandFailed("You cannot attach to a stopped container, start it first", 1)
    if state.get("Paused"):
        raise CommandFailed("You cannot attach to a paused container, unpause it first", 1)
    tty = bool(info["Config"].get("Tty"))
    a_in = not opts["no_stdin"] and bool(info["Config"].get("OpenStdin"))
    from . import streams

    params = {"stream": "1", "stdin": "1" if a_in else "0", "stdout": "1", "stderr": "1"}
    if opts.get("detach_keys"):
        params["detachKeys"] = opts["detach_keys"]
    sock, leftover, multiplexed = streams.hijack(client, _path(ref) + "/attach", params, tty=tty)
    if tty and a_in and ctx.in_is_terminal():
        _resize(client, _path(ref) + "/resize")
    if _copy_streams(ctx, sock, leftover, multiplexed, tty=tty, a_in=a_in,
                     detach_keys=opts.get("detach_keys") or ""):
        return 0
    try:
        info = _inspect(client, ref)
    except HoistError:
        return 0
    return int((info.get("State") or {}).get("ExitCode") or 0)


# ---------------------------------------------------------------------- exec


def run_exec(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .runopts import _env_value, parse_env_file

    client = ctx.client()
    ref, cmd = args[0], args[1:]
    tty = bool(opts["tty"])
    if tty and opts["interactive"] and not opts["detach"] and not ctx.in_is_terminal():
        raise CommandFailed("the input device is not a TTY", 1)
    env: list[str] = []
    for path in opts["env_file"]:
        env += parse_env_file(path)
    env += [_env_value(e) for e in opts["env"]]
    detach = bool(opts["detach"])
    body = {"User": opts["user"], "Privileged": bool(opts["privileged"]), "Tty": tty,
            "AttachStdin": bool(opts["interactive"]) and not detach,
            "AttachStdout": not detach, "AttachStderr": not detach,
            "DetachKeys": opts["detach_keys"], "Env": env or None, "WorkingDir": opts["workdir"],
            "Cmd": cmd}
    exec_id = client.post_json(_path(ref) + "/exec", None, body)["Id"]
    if detach:
        client.request("POST", f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": tty})
        return 0
    from . import streams

    sock, leftover, multiplexed = streams.hijack(client, f"/exec/{exec_id}/start", None,
                                                 {"Detach": False, "Tty": tty}, tty=tty)
    a_in = bool(opts["interactive"])
    if tty:
        _resize(client, f"/exec/{exec_id}/resize")
    if _copy_streams(ctx, sock, leftover, multiplexed, tty=tty, a_in=a_in,
                     detach_keys=opts["detach_keys"]):
        return 0
    info = client.get_json(f"/exec/{exec_id}/json")
    return int(info.get("ExitCode") or 0)


# ---------------------------------------------------------------------- ps

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM"}
_PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def _ellipsis(s: str, n: int) -> str:
    from .output import ellipsis

    return ellipsis(s, n)


def format_ports(ports: list[dict[str, Any]]) -> str:
    out = []
    for p in ports or []:
        proto = p.get("Type", "tcp")
        if p.get("PublicPort"):
            out.append(f"{p.get('IP', '0.0.0.0')}:{p['PublicPort']}->{p.get('PrivatePort')}/{proto}")
        else:
            out.append(f"{p.get('PrivatePort')}/{proto}")
    return ", ".join(out)


def ps_row(c: dict[str, Any], *, trunc: bool = True, now: float | None = None) -> dict[str, str]:
    now = time.time() if now is None else now
    cid = c.get("Id", "")
    image = c.get("Image", "")
    if trunc and image.startswith("sha256:"):
        image = truncate_id(image)
    command = c.get("Command", "")
    if trunc:
        command = _ellipsis(command, 20)
    names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    created = int(c.get("Created") or 0)
    # docker's Size() formats SizeRw even when it was not asked for ("0B")
    size = human_size_precision(c.get("SizeRw") or 0, 3)
    if True:
        if c.get("SizeRootFs"):
            size += f" (virtual {human_size_precision(c['SizeRootFs'], 3)})"
    labels = ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items())
    from .output import go_time_string

    return {
        "ID": truncate_id(cid) if trunc else cid,
        "Image": image,
        "Command": f'"{command}"',
        "CreatedAt": go_time_string(created),
        "RunningFor": human_duration(max(0.0, now - created)) + " ago",
        "Ports": format_ports(c.get("Ports") or []),
        "State": c.get("State", ""),
        "Status": c.get("Status", ""),
        "Size": size,
        "Names": ",".join(names),
        "Labels": labels,
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []),
        "Networks": ",".join(sorted((c.get("NetworkSettings") or {}).get("Networks") or {})),
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        "Platform": None,  # docker 28: the image platform when the daemon reports it, else null
    }


def run_ps(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params: dict[str, str] = {}
    limit = opts["last"]
    if opts["latest"]:
        limit = 1
    if opts["all"] or limit > 0:
        params["all"] = "1"
    if limit > 0:
        params["limit"] = str(limit)
    fmt = opts["format"] or ""
    want_size = opts["size"] or "{{.Size}}" in fmt
    if want_size and not opts["quiet"]:
        params["size"] = "1"
    if opts["filter"]:
        import json

        params["filters"] = json.dumps(filters_json(opts["filter"]))
    items = client.get_json("/containers/json", params)
    trunc = not opts["no_trunc"]
    if opts["quiet"] and (not fmt or fmt == "table"):
        ctx.write("".join((truncate_id(c["Id"]) if trunc else c["Id"]) + "\n" for c in items))
        return 0
    now = time.time()
    rows = [ps_row(c, trunc=trunc, now=now) for c in items]
    if not fmt or fmt == "table":
        cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        if opts["size"]:
            cols.append("Size")
        ctx.write(table([PS_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows)))
        return 0
    from .images import format_rows

    ctx.write(format_rows(fmt, rows, default_table=_PS_TABLE, headers=PS_HEADERS,
                          type_name="*formatter.ContainerContext"))
    return 0


# ---------------------------------------------------------------------- logs


def run_logs(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    ref = args[0]
    info = _inspect(client, ref)
    params = {"stdout": "1", "stderr": "1"}
    if opts["follow"]:
        params["follow"] = "1"
    if opts["timestamps"]:
        params["timestamps"] = "1"
    if opts["details"]:
        params["details"] = "1"
    if opts["tail"] and opts["tail"] != "all":
        params["tail"] = opts["tail"]
    if opts["since"]:
        params["since"] = _parse_time_arg(opts["since"])
    if opts["until"]:
        params["until"] = _parse_time_arg(opts["until"])
    resp = client.raw("GET", _path(ref) + "/logs", params)
    from .streams import Demux, _write_all

    ctx.out.flush()
    out_fd, err_fd = _fd(ctx.out, 1), _fd(ctx.err, 2)
    demux = None if info["Config"].get("Tty") else Demux(out_fd, err_fd)
    try:
        while True:
            data = resp.read1(65536)
            if not data:
                break
            if demux is not None:
                demux.feed(data)
            else:
                _write_all(out_fd, data)
    finally:
        resp.close()
    return 0


# ---------------------------------------------------------------------- simple verbs


def run_stop(ctx: Context, opts: dict[str, Any], args: list[str], verb: str = "stop") -> int:
    client = ctx.client()
    params: dict[str, str] = {}
    if opts.get("time"):
        try:
            params["t"] = str(int(opts["time"]))
        except ValueError:
            raise CommandFailed(f'invalid argument "{opts["time"]}" for "-t, --time" flag: '
                                'strconv.ParseInt: parsing "{0}": invalid syntax'.format(
                                    opts["time"]), 125) from None
    if opts.get("signal"):
        params["signal"] = opts["signal"]
    return _each(ctx, args, lambda ref: client.request("POST", _path(ref) + "/" + verb,
                                                       params or None))


def run_restart(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    return run_stop(ctx, opts, args, "restart")


def run_kill(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params = {"signal": opts["signal"]} if opts["signal"] else None
    return _each(ctx, args, lambda ref: client.request("POST", _path(ref) + "/kill", params))


def run_rm(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params = {}
    if opts["force"]:
        params["force"] = "1"
    if opts["volumes"]:
        params["v"] = "1"
    if opts["link"]:
        params["link"] = "1"
    return _each(ctx, args, lambda ref: client.request("DELETE", _path(ref), params or None))


def run_pause(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    return _each(ctx, args, lambda ref: client.request("POST", _path(ref) + "/pause"))


def run_unpause(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    return _each(ctx, args, lambda ref: client.request("POST", _path(ref) + "/unpause"))


def run_wait(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()

    def wait(ref: str) -> str:
        doc = client.post_json(_path(ref) + "/wait")
        return str(doc.get("StatusCode", 0))

    return _each(ctx, args, wait)


def run_rename(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    old, new = args
    if not new.strip():
        raise CommandFailed("Error: neither old nor new names may be empty", 1)
    try:
        ctx.client().request("POST", _path(old) + "/rename", {"name": new})
    except HoistError as e:  # docker 28 adds its own line after the daemon's
        raise CommandFailed(f"{e.message}\nError: failed to rename container named {old}",
                            1) from None
    return 0


def run_top(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    doc = ctx.client().get_json(_path(args[0]) + "/top", params)
    from .output import tabwrite

    lines = ["\t".join(doc.get("Titles") or [])]
    lines += ["\t".join(p) for p in doc.get("Processes") or []]
    ctx.write(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))  # docker's top writer
    return 0


def run_diff(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    changes = ctx.client().get_json(_path(args[0]) + "/changes") or []
    kinds = {0: "C", 1: "A", 2: "D"}
    ctx.write("".join(f"{kinds.get(c.get('Kind'), '?')} {c.get('Path')}\n" for c in changes))
    return 0


def run_commit(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    params: dict[str, Any] = {"container": args[0], "pause": "1" if opts["pause"] else "0"}
    if len(args) > 1:
        from .images import split_tag

        repo, tag = split_tag(args[1])
        params["repo"] = repo
        if tag:
            params["tag"] = tag
    if opts["message"]:
        params["comment"] = opts["message"]
    if opts["author"]:
        params["author"] = opts["author"]
    if opts["change"]:
        params["changes"] = opts["change"]
    doc = ctx.client().post_json("/commit", params, {})
    ctx.write(doc.get("Id", "") + "\n")
    return 0


def run_export(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    if opts["output"]:
        with open(opts["output"], "wb") as f:
            client.download(_path(args[0]) + "/export", None, f)
        return 0
    if ctx.out_is_terminal():
        raise CommandFailed("cowardly refusing to save to a terminal. Use the -o flag or "
                            "redirect", 1)
    client.download(_path(args[0]) + "/export", None, ctx.binary_out())
    return 0


def run_update(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .runopts import nano_cpus, parse_restart, ram_in_bytes

    body: dict[str, Any] = {}
    if opts["memory"]:
        body["Memory"] = ram_in_bytes(opts["memory"])
    if opts["memory_swap"]:
        body["MemorySwap"] = -1 if opts["memory_swap"] == "-1" else ram_in_bytes(opts["memory_swap"])
    if opts["cpus"]:
        body["NanoCpus"] = nano_cpus(opts["cpus"])
    if opts["cpu_shares"]:
        body["CpuShares"] = opts["cpu_shares"]
    if opts["cpuset_cpus"]:
        body["CpusetCpus"] = opts["cpuset_cpus"]
    if opts["pids_limit"]:
        body["PidsLimit"] = opts["pids_limit"]
    if opts["memory_reservation"]:
        body["MemoryReservation"] = ram_in_bytes(opts["memory_reservation"])
    if opts["cpuset_mems"]:
        body["CpusetMems"] = opts["cpuset_mems"]
    for key, api in (("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                     ("cpu_rt_period", "CpuRealtimePeriod"), ("cpu_rt_runtime", "CpuRealtimeRuntime")):
        if opts[key]:
            body[api] = opts[key]
    if opts["blkio_weight"]:
        w = opts["blkio_weight"]
        if not 0 <= w <= 65535:
            raise CommandFailed(f'invalid argument "{w}" for "--blkio-weight" flag: '
                                f'strconv.ParseUint: parsing "{w}": invalid syntax', 125)
        body["BlkioWeight"] = w
    if opts["restart"]:
        body["RestartPolicy"] = parse_restart(opts["restart"])
    if not body:
        raise CommandFailed("you must provide one or more flags when using this command", 1)
    client = ctx.client()

    def update(ref: str) -> None:
        doc = client.post_json(_path(ref) + "/update", None, body)
        for w in (doc or {}).get("Warnings") or []:
            ctx.error(w)

    return _each(ctx, args, update)


def run_prune(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    if not opts["force"]:
        ctx.write("WARNING! This will remove all stopped containers.\n"
                  "Are you sure you want to continue? [y/N] ")
        ctx.out.flush()
        answer = ctx.inp.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    params = None
    if opts["filter"]:
        import json

        params = {"filters": json.dumps(filters_json(opts["filter"]))}
    doc = ctx.client().post_json("/containers/prune", params)
    deleted = doc.get("ContainersDeleted") or []
    out = ""
    if deleted:
        out += "Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n"
    out += f"Total reclaimed space: {human_size_precision(doc.get('SpaceReclaimed') or 0, 3)}\n"
    ctx.write(out)
    return 0


def run_port(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    info = _inspect(ctx.client(), args[0])
    ports = ((info.get("NetworkSettings") or {}).get("Ports")) or {}
    lines = []
    for private, bindings in sorted(ports.items()):
        if len(args) > 1 and args[1] not in (private, private.split("/")[0]):
            continue
        for b in bindings or []:
            prefix = "" if len(args) > 1 else f"{private} -> "
            lines.append(f"{prefix}{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}")
    if len(args) > 1 and not lines:
        raise CommandFailed(f"Error: No public port '{args[1]}' published for {args[0]}", 1)
    ctx.write("".join(line + "\n" for line in lines))
    return 0


# ---------------------------------------------------------------------- stats


def stats_row(name: str, cid: str, s: dict[str, Any], *, trunc: bool = True) -> dict[str, str]:
    """docker's stats arithmetic, from one stats JSON document."""
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - \
        ((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage = mem.get("usage") or 0
    mstats = mem.get("stats") or {}
    if "total_inactive_file" in mstats and mstats["total_inactive_file"] < usage:
        usage -= mstats["total_inactive_file"]
    elif "inactive_file" in mstats and mstats["inactive_file"] < usage:
        usage -= mstats["inactive_file"]
    limit = mem.get("limit") or 0
    mem_pct = usage / limit * 100.0 if limit else 0.0
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes") or 0
        tx += n.get("tx_bytes") or 0
    blk_r = blk_w = 0
    for e in ((s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []):
        op = (e.get("op") or "").lower()
        if op == "read":
            blk_r += e.get("value") or 0
        elif op == "write":
            blk_w += e.get("value") or 0
    pids = (s.get("pids_stats") or {}).get("current") or 0
    return {
        "Container": truncate_id(cid) if trunc else cid,
        "ID": truncate_id(cid) if trunc else cid,
        "Name": name.lstrip("/"),
        "CPUPerc": "%.2f%%" % cpu_pct,
        "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
        "MemPerc": "%.2f%%" % mem_pct,
        "NetIO": f"{human_size_precision(rx, 3)} / {human_size_precision(tx, 3)}",
        "BlockIO": f"{human_size_precision(blk_r, 3)} / {human_size_precision(blk_w, 3)}",
        "PIDs": str(pids),
    }


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
_STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def run_stats(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    if args:
        targets = []
        for ref in args:
            info = _inspect(client, ref)
            targets.append((info["Id"], info.get("Name", "")))
    else:
        params = {"all": "1"} if opts["all"] else None
        targets = [(c["Id"], (c.get("Names") or [""])[0]) for c in client.get_json("/containers/json", params)]
    trunc = not opts["no_trunc"]
    import threading

    client.negotiate()  # once, before threads share the client
    latest: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def follow(cid: str, stream: bool) -> None:
        """One connection per container, as docker's CLI does: the daemon sends a frame
        a second (stream) or one frame with precpu from a second earlier (no-stream)."""
        try:
            for s in client.stream_json("GET", _path(cid) + "/stats",
                                        {"stream": "1" if stream else "0"}):
                if isinstance(s, dict):
                    with lock:
                        latest[cid] = s
        except HoistError:
            pass  # removed meanwhile: the row goes away
        with lock:
            if stream:
                latest.pop(cid, None)

    def render() -> str:
        rows = []
        with lock:
            got = [(cid, name, latest[cid]) for cid, name in targets if cid in latest]
        for cid, name, s in got:
            rows.append(stats_row(name or s.get("name", ""), cid, s, trunc=trunc))
        fmt = opts["format"] or ""
        if not fmt or fmt == "table":
            cols = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
            return table([STATS_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows))
        from .images import format_rows

        return format_rows(fmt, rows, default_table=_STATS_TABLE, headers=STATS_HEADERS,
                           type_name="*formatter.statsContext")

    stream = not opts["no_stream"]
    threads = [threading.Thread(target=follow, args=(cid, stream), daemon=True)
               for cid, _ in targets]
    for t in threads:
        t.start()
    if not stream:
        for t in threads:
            t.join()
        ctx.write(render())
        return 0
    while True:
        time.sleep(0.5)  # docker's CLI redraws twice a second
        text = render()
        if ctx.out_is_terminal():
            ctx.write("\x1b[2J\x1b[H" + text)
        else:
            ctx.write(text)
        ctx.out.flush()


# ---------------------------------------------------------------------- cp


def _split_cp_arg(arg: str) -> tuple[str | None, str]:
    if arg.startswith("/") or arg.startswith(".") or arg == "-":
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep or "/" in name:
        return None, arg
    return name, path


def _stat_path(client: Any, ref: str, path: str) -> dict[str, Any] | None:
    import base64
    import json

    try:
        resp = client.raw("HEAD", _path(ref) + "/archive", {"path": path})
    except NotFound:
        return None
    header = resp.getheader("X-Docker-Container-Path-Stat") or ""
    resp.close()
    if not header:
        return None
    return json.loads(base64.b64decode(header))


def run_cp(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    src_c, src = _split_cp_arg(args[0])
    dst_c, dst = _split_cp_arg(args[1])
    if src_c and dst_c:
        raise CommandFailed("copying between containers is not supported", 1)
    if not src_c and not dst_c:
        raise CommandFailed("must specify at least one container source", 1)
    if not (src_c and src) and not (dst_c and dst):
        raise CommandFailed("hoist: filesystem path cannot be empty", 1)
    client = ctx.client()
    if src_c:
        return _copy_from(ctx, client, src_c, src, dst, follow=opts["follow_link"])
    return _copy_to(ctx, client, src, dst_c, dst, follow=opts["follow_link"])


def _copy_from(ctx: Context, client: Any, ref: str, src: str, dst: str,
               follow: bool = False) -> int:
    top_name = ""
    if follow:
        # -L: copy what a symlink points to (resolved by the daemon inside the
        # container), under the link's own name, as docker cp does.
        st = _stat_path(client, ref, src)
        if st and int(st.get("mode", 0)) & (1 << 27) and st.get("linkTarget"):
            top_name = os.path.basename(src.rstrip("/"))
            src = st["linkTarget"]
    resp = client.raw("GET", _path(ref) + "/archive", {"path": src})
    if dst == "-":
        resp.copy_to(ctx.binary_out())
        return 0
    import shutil
    import tempfile

    from ..archive.extract import extract_layer

    dst = os.path.abspath(dst)
    parent = os.path.dirname(dst.rstrip("/")) or "/"
    if not os.path.isdir(parent):
        raise CommandFailed(f"destination directory {parent} does not exist", 1)
    # Extract into a private directory beside the destination, then move the one top
    # entry into place: the archive never writes outside that directory.
    tmp = tempfile.mkdtemp(prefix=".hoist-cp-", dir=parent)
    contents = []

    def rebase(entry: Any) -> None:
        # A directory's contents ("dir/.") come as "./x" and the root as "/", "/x":
        # gather them under one top directory, whose contents then go to dst.
        for attr in ("name", "linkname") if entry.type == "1" else ("name",):
            name = getattr(entry, attr)
            if top_name and not name.startswith(("/", "./")) and name != ".":
                _, sep, rest = name.partition("/")
                setattr(entry, attr, top_name + sep + rest)
            elif name.startswith("/") or name == "." or name.startswith("./"):
                setattr(entry, attr, _CP_TOP + "/" + name.lstrip("/"))
                if attr == "name":
                    contents.append(True)

    try:
        extract_layer(resp, tmp, whiteouts="apply", allow_devices=False, on_member=rebase)
        entries = os.listdir(tmp)
        if len(entries) != 1:
            raise CommandFailed("unexpected archive from the daemon", 1)
        top = os.path.join(tmp, entries[0])
        if os.path.isdir(dst) and not os.path.islink(dst):
            if os.path.isdir(top) and (src.endswith("/.") or contents):
                for name in os.listdir(top):
                    _replace(os.path.join(top, name), os.path.join(dst, name))
            else:
                _replace(top, os.path.join(dst, entries[0]))
        else:
            if dst.endswith("/") and not os.path.isdir(top):
                raise CommandFailed(f"destination directory {dst} does not exist", 1)
            _replace(top, dst)
    finally:
        resp.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


_CP_TOP = ".hoist-cp-top"


def _replace(src: str, dst: str) -> None:
    import shutil

    if os.path.isdir(dst) and not os.path.islink(dst) and os.path.isdir(src):
        for name in os.listdir(src):
            _replace(os.path.join(src, name), os.path.join(dst, name))
        return
    if os.path.lexists(dst) and not os.path.isdir(dst):
        os.unlink(dst)
    elif os.path.isdir(dst) and not os.path.isdir(src):
        shutil.rmtree(dst)
    os.rename(src, dst)


def _copy_to(ctx: Context, client: Any, src: str, ref: str, dst: str, *, follow: bool) -> int:
    import io
    import tarfile

    if src == "-":
        client.request("PUT", _path(ref) + "/archive", {"path": dst, "noOverwriteDirNonDir": "true"},
                       ctx.binary_in())
        return 0
    if not os.path.lexists(src):
        raise CommandFailed(f"lstat {os.path.abspath(src)}: no such file or directory", 1)
    st = _stat_path(client, ref, dst)
    dst_is_dir = st is not None and (int(st.get("mode", 0)) & (1 << 31)) != 0
    contents_only = src.endswith("/.")
    src_path = src[:-2] if contents_only else src.rstrip("/") or "/"
    if st is None:
        if dst.endswith("/"):
            raise CommandFailed(f"Error response from daemon: Could not find the file {dst} in "
                                f"container {ref}", 1)
        target_dir, name = os.path.dirname(dst.rstrip("/")) or "/", os.path.basename(dst.rstrip("/"))
    elif dst_is_dir:
        target_dir, name = dst, os.path.basename(src_path)
    else:
        if os.path.isdir(src_path):
            raise CommandFailed("cannot copy directory to a file", 1)
        target_dir, name = os.path.dirname(dst.rstrip("/")) or "/", os.path.basename(dst)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        real = os.path.realpath(src_path) if follow else src_path
        if contents_only and os.path.isdir(real) and st is not None:
            for child in sorted(os.listdir(real)):
                tar.add(os.path.join(real, child), arcname=child)
        else:
            tar.add(real, arcname=name)
    client.request("PUT", _path(ref) + "/archive",
                   {"path": target_dir, "noOverwriteDirNonDir": "true"}, buf.getvalue())
    return 0


# ---------------------------------------------------------------------- command table


def build() -> dict[str, Command]:
    from .runopts import run_flags

    def run_cmd() -> Command:
        flags = run_flags() + [
            Flag("detach", "d", help="Run container in background and print container ID"),
            Flag("detach-keys", None, "string", help="Override the key sequence for detaching a container"),
            Flag("sig-proxy", None, "bool", True, help="Proxy received signals to the process"),
        ]
        flags.sort(key=lambda f: f.name)
        return Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
                       "Create and run a new container from an image", flags=flags,
                       args=(1, None), run=run_run, interspersed=False,
                       aliases="hoist container run, hoist run")

    def create_cmd() -> Command:
        return Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
                       "Create a new container", flags=run_flags(), args=(1, None),
                       run=run_create, interspersed=False,
                       aliases="hoist container create, hoist create")

    def ps_cmd(name: str = "ps", alias_names: tuple[str, ...] = ()) -> Command:
        return Command(name, f"{name} [OPTIONS]", "List containers", flags=(
            Flag("all", "a", help="Show all containers (default shows just running)"),
            Flag("filter", "f", "filter", help="Filter output based on conditions provided"),
            Flag("format", None, "string", help=FORMAT_HELP),
            Flag("last", "n", "int", -1, help="Show n last created containers (includes all states)"),
            Flag("latest", "l", help="Show the latest created container (includes all states)"),
            Flag("no-trunc", None, help="Don't truncate output"),
            Flag("quiet", "q", help="Only display container IDs"),
            Flag("size", "s", help="Display total file sizes"),
        ), args=(0, 0), run=run_ps, alias_names=alias_names,
            aliases="hoist container ls, hoist container list, hoist container ps, hoist ps")

    def simple(name: str, use: str, short: str, run: Any, flags: tuple = (),
               args: tuple[int, int | None] = (1, None), interspersed: bool = True) -> Command:
        return Command(name, use, short, flags=flags, args=args, run=run,
                       aliases=f"hoist container {name}, hoist {name}",
                       interspersed=interspersed)

    stop_flags = (Flag("signal", "s", "string", help="Signal to send to the container"),
                  Flag("time", "t", "string", help="Seconds to wait before killing the container",
                       typename="int"))

    def make_all() -> dict[str, Command]:
        return {
            "run": run_cmd(),
            "create": create_cmd(),
            "start": simple("start", "start [OPTIONS] CONTAINER [CONTAINER...]",
                            "Start one or more stopped containers", run_start, (
                                Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
                                Flag("detach-keys", None, "string", help="Override the key sequence for detaching a container"),
                                Flag("interactive", "i", help="Attach container's STDIN"))),
            "ps": ps_cmd(),
            "logs": simple("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container",
                           run_logs, (
                               Flag("details", None, help="Show extra details provided to logs"),
                               Flag("follow", "f", help="Follow log output"),
                               Flag("since", None, "string", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
                               Flag("tail", "n", "string", "all", help="Number of lines to show from the end of the logs"),
                               Flag("timestamps", "t", help="Show timestamps"),
                               Flag("until", None, "string", help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')),
                           (1, 1)),
            "stop": simple("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]",
                           "Stop one or more running containers", _stop_entry, stop_flags),
            "restart": simple("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]",
                              "Restart one or more containers", _restart_entry, stop_flags),
            "kill": simple("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]",
                           "Kill one or more running containers", run_kill,
                           (Flag("signal", "s", "string", help="Signal to send to the container"),)),
            "rm": simple("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]",
                         "Remove one or more containers", run_rm, (
                             Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
                             Flag("link", "l", help="Remove the specified link"),
                             Flag("volumes", "v", help="Remove anonymous volumes associated with the container"))),
            "wait": simple("wait", "wait CONTAINER [CONTAINER...]",
                           "Block until one or more containers stop, then print their exit codes",
                           run_wait),
            "pause": simple("pause", "pause CONTAINER [CONTAINER...]",
                            "Pause all processes within one or more containers", run_pause),
            "unpause": simple("unpause", "unpause CONTAINER [CONTAINER...]",
                              "Unpause all processes within one or more containers", run_unpause),
            "rename": simple("rename", "rename CONTAINER NEW_NAME", "Rename a container",
                             run_rename, (), (2, 2)),
            "top": simple("top", "top CONTAINER [ps OPTIONS]",
                          "Display the running processes of a container", run_top, (), (1, None),
                          interspersed=False),  # ps options after CONTAINER are ps's
            "exec": Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
                            "Execute a command in a running container", flags=(
                                Flag("detach", "d", help="Detached mode: run command in the background"),
                                Flag("detach-keys", None, "string", help="Override the key sequence for detaching a container"),
                                Flag("env", "e", "list", help="Set environment variables"),
                                Flag("env-file", None, "list", help="Read in a file of environment variables"),
                                Flag("interactive", "i", help="Keep STDIN open even if not attached"),
                                Flag("privileged", None, help="Give extended privileges to the command"),
                                Flag("tty", "t", help="Allocate a pseudo-TTY"),
                                Flag("user", "u", "string", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
                                Flag("workdir", "w", "string", help="Working directory inside the container")),
                            args=(2, None), run=run_exec, interspersed=False,
                            aliases="hoist container exec, hoist exec"),
            "attach": simple("attach", "attach [OPTIONS] CONTAINER",
                             "Attach local standard input, output, and error streams to a running container",
                             run_attach, (
                                 Flag("detach-keys", None, "string", help="Override the key sequence for detaching a container"),
                                 Flag("no-stdin", None, help="Do not attach STDIN"),
                                 Flag("sig-proxy", None, "bool", True, help="Proxy all received signals to the process")),
                             (1, 1)),
            "stats": simple("stats", "stats [OPTIONS] [CONTAINER...]",
                            "Display a live stream of container(s) resource usage statistics",
                            run_stats, (
                                Flag("all", "a", help="Show all containers (default shows just running)"),
                                Flag("format", None, "string", help=FORMAT_HELP),
                                Flag("no-stream", None, help="Disable streaming stats and only pull the first result"),
                                Flag("no-trunc", None, help="Do not truncate output")),
                            (0, None)),
            "cp": simple("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\thoist cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
                         "Copy files/folders between a container and the local filesystem",
                         run_cp, (
                             Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
                             Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
                             Flag("quiet", "q", help="Suppress progress output during copy")),
                         (2, 2)),
            "diff": simple("diff", "diff CONTAINER",
                           "Inspect changes to files or directories on a container's filesystem",
                           run_diff, (), (1, 1)),
            "commit": simple("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                             "Create a new image from a container's changes", run_commit, (
                                 Flag("author", "a", "string", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
                                 Flag("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
                                 Flag("message", "m", "string", help="Commit message"),
                                 Flag("pause", "p", "bool", True, help="Pause container during commit")),
                             (1, 2)),
            "export": simple("export", "export [OPTIONS] CONTAINER",
                             "Export a container's filesystem as a tar archive", run_export,
                             (Flag("output", "o", "string", help="Write to a file, instead of STDOUT"),),
                             (1, 1)),
            "update": simple("update", "update [OPTIONS] CONTAINER [CONTAINER...]",
                             "Update configuration of one or more containers", run_update, (
                                 Flag("blkio-weight", None, "int", help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)", typename="uint16"),
                                 Flag("cpu-period", None, "int", help="Limit CPU CFS (Completely Fair Scheduler) period"),
                                 Flag("cpu-quota", None, "int", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
                                 Flag("cpu-rt-period", None, "int", help="Limit the CPU real-time period in microseconds"),
                                 Flag("cpu-rt-runtime", None, "int", help="Limit the CPU real-time runtime in microseconds"),
                                 Flag("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
                                 Flag("cpus", None, "string", help="Number of CPUs", typename="decimal"),
                                 Flag("cpuset-cpus", None, "string", help="CPUs in which to allow execution (0-3, 0,1)"),
                                 Flag("cpuset-mems", None, "string", help="MEMs in which to allow execution (0-3, 0,1)"),
                                 Flag("memory", "m", "string", help="Memory limit", typename="bytes"),
                                 Flag("memory-reservation", None, "string", help="Memory soft limit", typename="bytes"),
                                 Flag("memory-swap", None, "string", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap", typename="bytes"),
                                 Flag("pids-limit", None, "int", help="Tune container pids limit (set -1 for unlimited)"),
                                 Flag("restart", None, "string", help="Restart policy to apply when a container exits"))),
            "port": simple("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]",
                           "List port mappings or a specific mapping for the container",
                           run_port, (), (1, 2)),
        }

    top = make_all()
    subs = make_all()
    subs.pop("ps")
    group_subs = list(subs.values()) + [
        ps_cmd("ls", ("list", "ps")),
        Command("inspect", "inspect [OPTIONS] CONTAINER [CONTAINER...]",
                "Display detailed information on one or more containers",
                flags=(Flag("format", "f", "string", help="Format output using a custom template"),
                       Flag("size", "s", help="Display total file sizes")),
                args=(1, None), run=_inspect_containers),
        Command("prune", "prune [OPTIONS]", "Remove all stopped containers", flags=(
            Flag("filter", None, "filter", help='Provide filter values (e.g. "until=<timestamp>")'),
            Flag("force", "f", help="Do not prompt for confirmation")), args=(0, 0), run=run_prune),
    ]
    for sub in group_subs:
        if sub.name == "rm":
            sub.alias_names = ("remove",)
    top["container"] = Command("container", "container COMMAND", "Manage containers",
                               args=(0, 0), subcommands=group_subs, category="management")
    return top


def _stop_entry(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    return run_stop(ctx, opts, args, "stop")


def _restart_entry(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    return run_stop(ctx, opts, args, "restart")


def _inspect_containers(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from .images import run_inspect

    return run_inspect(ctx, {"format": opts["format"], "size": opts["size"], "type": "container"},
                       args)
