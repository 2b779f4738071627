"""The fork server: a small single-threaded process that forks one monitor per container.

The daemon is multi-threaded, and forking a threaded process is unsafe (locks held by
other threads stay locked in the child), so the daemon only ever spawns this server
(fork+exec) and sends it requests over a SOCK_SEQPACKET pair: one message is the JSON
monitor config plus, through SCM_RIGHTS, the daemon's end of a fresh socketpair on which
the monitor reports the outcome of create. The server preloads the monitor and runtime
code and freezes the GC before forking, so every monitor shares those pages
copy-on-write. Each monitor is forked once and setsid'd: it survives the daemon and
this server (SIGCHLD is ignored here, so none is ever left a zombie). The server exits on EOF (daemon gone).
"""
from __future__ import annotations

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


def serve(sock: socket.socket) -> None:
    _preload()
    gc.collect()
    gc.freeze()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
        except InterruptedError:
            continue
        if not msg:
            return
        cfg = json.loads(msg)
        conn_fd = fds[0] if fds else -1
        try:
            pid = os.fork()
        except OSError as e:
            if conn_fd >= 0:
                os.close(conn_fd)
            sock.send(json.dumps({"error": str(e)}).encode())
            continue
        if pid == 0:
            _child(sock, cfg, conn_fd)
        os.close(conn_fd)
        sock.send(b"{}")  # the monitor is reaped by the kernel (SIGCHLD ignored)


def _child(server_sock: socket.socket, cfg: dict, conn_fd: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server_sock.close()
        # One fork, not the classic two: with SIGCHLD ignored here the kernel reaps the
        # monitor whenever it exits, and if this server dies first it is reparented to
        # init. (A second fork would make every page the middle process wrote the
        # monitor's private memory, ~0.4 MiB per container.)
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        log = os.open(os.path.join(cfg["state_dir"], "monitor.log"),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) \
            if os.path.isdir(cfg["state_dir"]) else null
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Nothing of the daemon's or the server's may stay open in a long-lived monitor.
        os.closerange(3, conn_fd)
        os.closerange(conn_fd + 1, 1 << 16)
        from . import monitor
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
