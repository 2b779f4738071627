"""``hoistd``: serve the Docker Engine API on a unix socket (foreground)."""
from __future__ import annotations

import argparse
import grp
import os
import signal
import sys
import threading

from . import DOCKER_COMPAT_VERSION, __version__
from .config import API_VERSION, MIN_API_VERSION, data_root_from_env, socket_from_env
from .errors import HoistError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hoistd", description="hoist daemon (Docker Engine API)")
    p.add_argument("-H", "--host", default=None, help="unix://PATH to listen on")
    p.add_argument("--data-root", default=None, help="root of persistent state (default /var/lib/hoist)")
    p.add_argument("-G", "--group", default="hoist", help="group owning the socket (if it exists)")
    p.add_argument("--snapshotter", choices=["overlayfs", "native"], default=None)
    p.add_argument("--pidfile", default=None)
    p.add_argument("--max-layer-size", type=int, default=None,
                   help="largest uncompressed layer or archive accepted, in bytes (default 64 GiB)")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="registry (host[:port] or CIDR) reachable over plain HTTP or unverified TLS")
    p.add_argument("-v", "--version", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.version:
        print(f"hoistd {__version__} (Docker Engine API {API_VERSION})")
        return 0
    host = args.host or "unix://" + socket_from_env()
    if not host.startswith("unix://"):
        print("hoistd: only unix:// hosts are supported", file=sys.stderr)
        return 125
    path = host[len("unix://"):]
    data_root = data_root_from_env(args.data_root)
    from .api.http import APIServer, bind_unix
    from .api.routes import build_router
    from .engine.daemon_state import Engine
    try:
        _lock_data_root(data_root)  # held (fd kept open) for the life of the process
        engine = Engine.open(data_root, args.snapshotter, args.max_layer_size)
        engine.store.recover()
        from .distribution.registry import configure_insecure
        configure_insecure(args.insecure_registry)
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        bind_unix(path)
        old_umask = os.umask(0o117)
        try:
            server = APIServer(path, build_router(engine), api_version=API_VERSION,
                               min_version=MIN_API_VERSION,
                               headers={"Server": f"Docker/{DOCKER_COMPAT_VERSION} (linux)",
                                        "Docker-Experimental": "false", "Ostype": "linux",
                                        "Cache-Control": "no-cache, no-store, must-revalidate",
                                        "Pragma": "no-cache"})
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o660)
        try:
            os.chown(path, 0, grp.getgrnam(args.group).gr_gid)
        except KeyError:
            pass
    except HoistError as e:
        print(f"hoistd: {e}", file=sys.stderr)
        return 125
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"hoistd {__version__} listening on {host} (data root {data_root}, "
          f"snapshotter {engine.store.snapshots.name})", file=sys.stderr, flush=True)
    # The fork server's interpreter start-up and imports are paid now, not by the first run.
    threading.Thread(target=engine.containers.supervisor, daemon=True, name="supervisor").start()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        engine.containers.close()  # the fork server goes; monitors and containers stay
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return 0


def _lock_data_root(data_root: str) -> int:
    """One daemon per data root: start-up recovery deletes unfinished writes, which is
    only safe when nobody else is writing. The kernel drops the lock if we die."""
    import fcntl

    os.makedirs(data_root, mode=0o710, exist_ok=True)
    fd = os.open(os.path.join(data_root, "hoistd.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise HoistError(f"data root {data_root} is in use by another hoistd (pid {owner or '?'})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
