"""runc/crun adapter: the Runtime protocol implemented by calling the binaries.

Runs inside the per-container monitor (a child subreaper), so the container's init and
``exec -d`` processes reparent to the monitor when the runtime binary exits. The binary
is started with ``os.posix_spawn`` (vfork-fast, no subprocess module): the monitor stays
small and the binary receives exactly the container's stdio as its own 0, 1, 2, which
is how ``runc create`` passes stdio through to the container when there is no terminal.
"""
from __future__ import annotations

import json
import os
import socket
import time

from ..errors import CannotExecute, CommandNotFound, Conflict, HoistError, NotFound
from .base import Created, Stdio


def _error_from(msg: str) -> HoistError:
    low = msg.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return CommandNotFound(msg)
    if "permission denied" in low or "exec format error" in low or "is a directory" in low:
        return CannotExecute(msg)
    if "does not exist" in low or "not found" in low:
        return NotFound(msg)
    if "not running" in low or "already exists" in low or "is paused" in low or "is not paused" in low:
        return Conflict(msg)
    return HoistError(msg)


def _new_file(directory: str, prefix: str, suffix: str = "") -> tuple[int, str]:
    """A new 0600 file of our own (O_EXCL). Not tempfile: it imports random, whose
    at-fork reseed would run, and dirty memory, in every monitor the fork server makes."""
    n = time.monotonic_ns()
    while True:
        path = os.path.join(directory, f"{prefix}{os.getpid()}-{n}{suffix}")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            n += 1


class OCIRuntimeBinary:
    def __init__(self, name: str, path: str, root: str) -> None:
        self.name = name
        self.path = path
        self.root = root

    # -- plumbing ------------------------------------------------------------------------
    def _run(self, args: list[str], stdio: Stdio | None = None) -> None:
        os.makedirs(self.root, 0o700, exist_ok=True)
        fd, log = _new_file(self.root, ".log-")
        os.close(fd)
        argv = [self.path, "--root", self.root, "--log", log, "--log-format", "json",
                *args]
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        actions = []
        fds = (stdio.stdin, stdio.stdout, stdio.stderr) if stdio else (None, None, None)
        for target, src in enumerate(fds):
            actions.append((os.POSIX_SPAWN_DUP2, null if src is None else src, target))
        try:
            pid = os.posix_spawn(self.path, argv, os.environ, file_actions=actions)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(null)
        code = os.waitstatus_to_exitcode(status)
        try:
            if code != 0:
                raise _error_from(self._last_error(log) or f"{self.name} {args[0]} failed ({code})")
        finally:
            try:
                os.unlink(log)
            except OSError:
                pass

    @staticmethod
    def _last_error(log: str) -> str:
        msg = ""
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        msg = line.strip() or msg
                        continue
                    if rec.get("level") in ("error", "fatal"):
                        msg = rec.get("msg", "") or msg
        except OSError:
            pass
        return msg

    def _with_console(self, args: list[str], stdio: Stdio, pid_file: str) -> int | None:
        """Run ``args`` (with --console-socket when a terminal is wanted); return the master."""
        if not stdio.terminal:
            self._run(args, stdio)
            return None
        sock_path = pid_file + ".console"
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                os.unlink(sock_path)
            except FileNotFoundError:
                pass
            srv.bind(sock_path)
            srv.listen(1)
            # The runtime connects and sends the master during create; the backlog and
            # the socket buffer hold it until we accept after the binary has exited.
            self._run([args[0], "--console-socket", sock_path, *args[1:]], None)
            srv.settimeout(5)
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
            if not fds:
                raise HoistError(f"{self.name} sent no terminal")
            for extra in fds[1:]:
                os.close(extra)
            return fds[0]
        finally:
            srv.close()
            try:
                os.unlink(sock_path)
            except OSError:
                pass

    @staticmethod
    def _read_pid(pid_file: str) -> int:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.unlink(pid_file)
        return pid

    # -- Runtime protocol ----------------------------------------------------------------
    def create(self, container_id: str, bundle: str, stdio: Stdio) -> Created:
        pid_file = os.path.join(self.root, f".{container_id}.pid")
        console = self._with_console(["create", "--bundle", bundle, "--pid-file", pid_file,
                                      container_id], stdio, pid_file)
        return Created(pid=self._read_pid(pid_file), console=console)

    def start(self, container_id: str) -> None:
        self._run(["start", container_id])

    def exec(self, container_id: str, bundle: str, process: dict, stdio: Stdio) -> Created:
        fd, proc_file = _new_file(self.root, ".process-", ".json")
        with os.fdopen(fd, "w") as f:
            json.dump(dict(process, terminal=bool(stdio.terminal)), f)
        pid_file = proc_file + ".pid"
        try:
            console = self._with_console(["exec", "--process", proc_file, "--pid-file", pid_file,
                                          "-d", container_id], stdio, pid_file)
        finally:
            os.unlink(proc_file)
        return Created(pid=self._read_pid(pid_file), console=console)

    def kill(self, container_id: str, sig: int) -> None:
        self._run(["kill", container_id, str(int(sig))])

    def pause(self, container_id: str) -> None:
        self._run(["pause", container_id])

    def resume(self, container_id: str) -> None:
        self._run(["resume", container_id])

    def delete(self, container_id: str) -> None:
        self._run(["delete", "-f", container_id])
