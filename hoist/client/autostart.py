"""Embedded default: start ``hoistd`` when the CLI finds nobody listening.

The CLI calls :func:`ensure_daemon` only for a unix socket that refused the connection
and is either hoist's default socket or was paired with an explicit data root. A lock
file next to the socket makes concurrent CLIs agree on a single daemon; whoever holds
the lock re-checks the socket first, so the second CLI simply finds the first one's
daemon answering. Nothing here ever stops or kills a process.
"""
from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time

from ..errors import Unavailable

START_TIMEOUT = 15.0
DEFAULT_DATA_ROOT = "/var/lib/hoist"  # == hoist.config.DEFAULT_DATA_ROOT (not imported: slow)


def data_root_for(flag: str | None) -> str:
    return os.path.abspath(flag or os.environ.get("HOIST_DATA_ROOT") or DEFAULT_DATA_ROOT)


def probe(path: str, timeout: float = 2.0) -> bool:
    """True when something answers ``GET /_ping`` with 200 on the unix socket ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\n"
                  b"User-Agent: hoist-cli\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n" not in head and len(head) < 1024:
            data = s.recv(1024)
            if not data:
                break
            head += data
        parts = head.split(b" ", 2)
        return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1] == b"200"
    except OSError:
        return False
    finally:
        s.close()


def _lock(path: str, deadline: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise Unavailable(f"timed out waiting for {path} (another hoist CLI is starting "
                                  "the daemon)") from None
            time.sleep(0.05)


def _log_tail(log_path: str, lines: int = 8) -> str:
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("  " + ln for ln in tail)


def daemon_command(socket_path: str, data_root: str) -> list[str]:
    return [sys.executable, "-m", "hoist.daemon", "--host", "unix://" + socket_path,
            "--data-root", data_root]


def ensure_daemon(socket_path: str, data_root_flag: str | None = None, *,
                  display_host: str | None = None, timeout: float = START_TIMEOUT,
                  debug: bool = False) -> None:
    """Start ``hoistd`` on ``socket_path`` unless one answers; wait until it does."""
    display_host = display_host or "unix://" + socket_path
    data_root = data_root_for(data_root_flag)
    cannot = f"Cannot connect to the hoist daemon at {display_host}. Is the daemon running?"
    try:
        os.makedirs(os.path.dirname(socket_path) or ".", mode=0o755, exist_ok=True)
        lock_fd = _lock(socket_path + ".lock", time.monotonic() + timeout + 5)
    except PermissionError:
        raise Unavailable(f"{cannot} (not allowed to start it: permission denied on "
                          f"{os.path.dirname(socket_path)})") from None
    except OSError as e:
        raise Unavailable(f"{cannot} ({e})") from None
    try:
        if probe(socket_path):
            return  # another CLI started it while we waited for the lock
        try:
            os.makedirs(data_root, mode=0o711, exist_ok=True)
            log_path = os.path.join(data_root, "hoistd.log")
            log = open(log_path, "ab")
        except OSError as e:
            raise Unavailable(f"{cannot} (cannot start it: {e})") from None
        env = dict(os.environ)
        # The daemon runs from "/", so make sure it imports this very hoist package.
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
        if debug:
            print(f"starting hoist daemon on {display_host} (data root {data_root}, "
                  f"log {log_path})", file=sys.stderr)
        try:
            with log:
                proc = subprocess.Popen(daemon_command(socket_path, data_root), stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log, cwd="/", env=env,
                                        start_new_session=True, close_fds=True)
        except OSError as e:
            raise Unavailable(f"{cannot} (cannot start it: {e})") from None
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if probe(socket_path):
                return
            rc = proc.poll()
            if rc is not None:
                tail = _log_tail(log_path)
                raise Unavailable(f"{cannot} (the hoist daemon exited with status {rc} while "
                                  f"starting; see {log_path})" + ("\n" + tail if tail else ""))
            if time.monotonic() > deadline:
                raise Unavailable(f"{cannot} (started hoistd, pid {proc.pid}, but it did not "
                                  f"answer within {timeout:g}s; see {log_path})")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
    finally:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(lock_fd)
