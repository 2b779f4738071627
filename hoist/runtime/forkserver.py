"""The fork server: a small single-threaded process that forks one monitor per container.

The daemon is multi-threaded, and forking a threaded process is unsafe (locks held by
other threads stay locked in the child), so the daemon only ever spawns this server
(fork+exec) and sends it requests over a SOCK_SEQPACKET pair: one message is the JSON
monitor config plus, through SCM_RIGHTS, the daemon's end of a fresh socketpair on which
the monitor reports the outcome of create. The server preloads the monitor and runtime
code and freezes the GC before forking, so every monitor shares those pages
copy-on-write. Each monitor is forked once and setsid'd: it survives the daemon and
this server (SIGCHLD is ignored here, so none is ever left a zombie). The server exits on
EOF (daemon gone). Monitors are forked one ahead as spares (see serve()).
"""
from __future__ import annotations

import _signal
import gc
import json
import os
import signal
import socket
import sys
import time


def _preload() -> None:
    # Import now, in the parent, everything a monitor will run: shared, never re-imported.
    from . import logfile, monitor, ociruntime, runtimes  # noqa: F401
    try:
        from . import hoistrt  # noqa: F401
    except ImportError:
        pass
    # Results every container needs, computed once here and shared copy-on-write,
    # rather than recomputed (and so allocated privately) in each monitor.
    from . import cgroups, seccomp_filter
    try:
        cgroups.host_layout()
    except Exception:
        pass
    try:
        seccomp_filter._libseccomp()
    except Exception:
        pass
    try:
        _warm_create_checks()
    except Exception as e:  # only a missed speed-up
        print(f"hoist: create warm-up skipped: {e}", flush=True)
    # Not tempfile/shutil: tempfile brings random, whose at-fork reseed would then run
    # (and dirty pages) in every monitor.
    scratch = f"/tmp/hoist-warm-{os.getpid()}-{time.monotonic_ns()}"
    os.mkdir(scratch, 0o700)
    try:
        monitor.warm_up(scratch)
    finally:
        for name in os.listdir(scratch):
            os.unlink(os.path.join(scratch, name))
        os.rmdir(scratch)


# Objects that fill pymalloc's free blocks; never released (see _fill_free_blocks).
_FILLERS: list = []


def _fill_free_blocks() -> None:
    """Allocate every free block of pymalloc's partly used pools, for good.

    After the imports and the warm-up, the heap is full of small holes (freed objects).
    A monitor's first allocations would land in them, one shared page each, and copy
    that page: hundreds of pages per monitor. With the holes filled here, once, in
    shared memory, a monitor's objects go into fresh pools of its own, densely."""
    for _ in range(4):
        avail = _pymalloc_avail()
        if not avail or not any(avail.values()):
            return
        for size, n in avail.items():
            _FILLERS.extend(_filler(size) for _ in range(n))


def _filler(size: int) -> object:
    # An object whose allocation is exactly ``size`` bytes (a pymalloc size class).
    if size <= 16:
        return object()
    if size <= 32:
        return float(size) + 0.5
    return b"\0" * (size - 33)  # bytes: 33 bytes of header and NUL, then the data


def _pymalloc_avail() -> dict[int, int]:
    out_fd = os.memfd_create("hoist-mallocstats")
    saved = os.dup(2)
    try:
        os.dup2(out_fd, 2)
        sys._debugmallocstats()  # writes to C stderr: borrow fd 2 for a moment
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    os.lseek(out_fd, 0, os.SEEK_SET)
    out = b""
    while chunk := os.read(out_fd, 65536):
        out += chunk
    os.close(out_fd)
    avail: dict[int, int] = {}
    for line in out.decode(errors="replace").splitlines():
        # "class size num-pools blocks-in-use avail-blocks", one row per size class
        parts = line.split()
        if len(parts) == 5 and all(p.isdigit() for p in parts):
            avail[int(parts[1])] = int(parts[4])
    return avail


def _warm_create_checks() -> None:
    """Every create parses and validates a spec, in a child forked afresh from a monitor:
    code first run there is slow (3.11 specialises it, fills caches, copies each page
    it writes). Run that code here a few times, on a spec like the daemon's."""
    from .spec import SpecInput, generate
    from .validate import validate
    spec = generate(SpecInput(
        container_id="0" * 64, config={"Cmd": ["true"], "Env": ["PATH=/bin"], "Tty": False},
        host_config={}, rootfs="/nonexistent", hostname_path="/etc/hostname",
        hosts_path="/etc/hosts", resolv_conf_path="/etc/resolv.conf",
        cgroups_path="/hoist/warm-up"), resolve=False)
    text = json.dumps(spec)
    for _ in range(3):
        validate(json.loads(text))


def serve(sock: socket.socket) -> None:
    _preload()
    gc.collect()
    _fill_free_blocks()
    gc.freeze()
    # glibc merges its free small chunks (scattered over the heap) on the first large
    # malloc; let that happen here, once, rather than in every monitor.
    from .. import linux
    linux.malloc_trim()
    # A spare monitor is forked before it is needed: it, not this server, receives the
    # next request. So the fork (about a millisecond at this size) is off the start's
    # path, and this loop runs almost no Python between forks (a page the server
    # writes after a fork stays private to the monitor forked before). The spare
    # reports "taken" on its own pipe; EOF there without "taken" means the spare died
    # idle, so another is forked.
    while True:
        try:
            taken_r, taken_w = os.pipe()
        except OSError:
            time.sleep(0.1)
            continue
        try:
            pid = os.fork()
        except OSError as e:
            os.close(taken_r)
            os.close(taken_w)
            if not _refuse_one(sock, e):
                return
            continue
        if pid == 0:
            os.close(taken_r)
            _spare(sock, taken_w)
        os.close(taken_w)
        try:
            said = os.read(taken_r, 1)
        finally:
            os.close(taken_r)
        if said == b"q":  # the daemon is gone
            return


def _refuse_one(sock: socket.socket, e: OSError) -> bool:
    """No spare could be forked: answer the next request with the error (False on EOF)."""
    time.sleep(0.05)
    msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
    for fd in fds:
        os.close(fd)
    if not msg:
        return False
    sock.send(json.dumps({"error": f"cannot fork a monitor: {e}"}).encode())
    return True


def _spare(sock: socket.socket, taken_w: int) -> None:
    code = 1
    try:
        # If the server dies (killed), the spare still serves the one request it gets:
        # it holds the socket, so the daemon cannot tell yet. Its report is then lost.
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        # Its runtime's creator is forked now too, while there is nothing to do.
        creator = _fork_creator(sock.fileno(), taken_w)
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
        _tell(taken_w, b"f" if msg else b"q")
        if not msg:
            os._exit(0)
        sock.send(b"{}")
        from .. import fastjson
        _child(sock, fastjson.loads(msg), fds[0] if fds else -1, creator)
    finally:
        os._exit(code)


def _fork_creator(*close: int) -> object:
    try:
        from .hoistrt import Creator
        return Creator.fork(close)
    except (ImportError, OSError):
        return None  # create_isolated forks one itself


def _tell(taken_w: int, what: bytes) -> None:
    try:
        os.write(taken_w, what)
    except OSError:  # the server is gone
        pass
    os.close(taken_w)


def _child(server_sock: socket.socket, cfg: dict, conn_fd: int, creator: object = None) -> None:
    code = 1
    try:
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        server_sock.close()
        if conn_fd < 0:
            return
        # One fork, not the classic two: with SIGCHLD ignored here the kernel reaps the
        # monitor whenever it exits, and if this server dies first it is reparented to
        # init. (A second fork would make every page the middle process wrote the
        # monitor's private memory, ~0.4 MiB per container.)
        os.setsid()
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        log = os.open(os.path.join(cfg["state_dir"], "monitor.log"),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) \
            if os.path.isdir(cfg["state_dir"]) else null
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Nothing of the daemon's or the server's may stay open in a long-lived monitor.
        keep = sorted({conn_fd} | ({creator.sock.fileno()} if creator is not None else set()))
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 1 << 16)
        from . import monitor
        if creator is not None:
            from . import hoistrt
            hoistrt.keep_creator(creator)
        conn = socket.socket(fileno=conn_fd)
        code = monitor.run(cfg, conn)
    except BaseException as e:  # pragma: no cover - reported in monitor.log
        try:
            print(f"monitor: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        except Exception:
            pass
    finally:
        os._exit(code)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies, no waitpid on the hot path
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(sock)


if __name__ == "__main__":
    main()
