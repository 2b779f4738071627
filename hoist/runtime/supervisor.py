"""The daemon's side of the process model: Supervisor (talks to the fork server) and
Monitor / ExecProcess (talk to one container's monitor over its control socket).

The daemon never forks a container: ``Supervisor`` starts the fork server once (fork+exec
of a fresh interpreter, so no daemon thread or lock is inherited) and asks it for one
monitor per container. Every Monitor call is a short request on a new connection to
``state_dir/monitor.sock`` — the daemon holds no long-lived fd that could keep a
container or monitor alive. ``attach`` returns the connection itself as the stream.
When the monitor is gone, ``state_dir/exit.json`` is the truth about how it ended.

Semantics the engine relies on:
* ``Supervisor.create`` returns once init is created (blocked before execve). A missing
  or non-executable command is reported by ``Monitor.start`` (CommandNotFound /
  CannotExecute, as Docker does at start), which also records exit code 127/126.
* ``attach`` before ``start`` sees all output. Non-tty streams use Docker's 8-byte
  multiplexed frames, tty streams are raw. With ``stdin=True`` the client's writes reach
  the container; its SHUT_WR closes the container's stdin when ``stdin_once`` (tty: ^D).
  The socket reaches EOF when the process's output is done (after its exit).
* ``wait`` blocks until exit (``None`` on timeout); after the monitor has exited it
  answers from exit.json. ``status()`` gives created|running|paused|exited.
* Errors come back as the hoist.errors class the monitor raised (Conflict when the
  container is not running, NotFound for an unknown exec, ...).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .. import errors
from .monitor import EXIT_FILE, INFO_FILE, encode, recv_msg, sock_address


@dataclass(frozen=True)
class MonitorSpec:
    container_id: str
    bundle: str              # dir with config.json (the spec) and the mounted rootfs
    state_dir: str           # per-container dir (monitor socket, exit file, pid files)
    runtime: str             # "hoist" | "runc" | "crun"
    tty: bool
    open_stdin: bool
    log_path: str            # json-file log (Docker's format: {"log","stream","time"})
    log_max_size: int = 10 * 1024 * 1024
    log_max_files: int = 3
    start_deadline: float = 60.0  # a process not started by then is ended (daemon died)


@dataclass(frozen=True)
class ExitStatus:
    code: int                # exit code, 128+N for a signal, as Docker reports
    oom_killed: bool
    finished_at: float       # unix time
    error: str = ""          # e.g. exec failure message (then code 126/127)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExitStatus":
        return cls(int(d["code"]), bool(d.get("oom_killed")), float(d.get("finished_at", 0)),
                   str(d.get("error", "")))


def _raise(reply: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        cls = getattr(errors, str(reply.get("kind", "")), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.HoistError)):
            cls = errors.HoistError
        raise cls(reply["error"])
    return reply


class _Conn:
    """Connection factory for one monitor's control socket."""

    def __init__(self, container_id: str, state_dir: str) -> None:
        self.container_id = container_id
        self.state_dir = state_dir

    def connect(self, timeout: float | None = 30) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        addr, dfd = sock_address(self.state_dir)
        try:
            s.settimeout(timeout)
            s.connect(addr)
        except OSError:
            s.close()
            raise
        finally:
            if dfd is not None:
                os.close(dfd)
        return s

    def exit_status(self) -> ExitStatus | None:
        try:
            with open(os.path.join(self.state_dir, EXIT_FILE)) as f:
                return ExitStatus.from_dict(json.load(f))
        except (OSError, ValueError, KeyError):
            return None

    def gone(self) -> errors.HoistError:
        return errors.Conflict(f"container {self.container_id} is not running")

    def call(self, req: dict[str, Any], timeout: float | None = 30) -> dict[str, Any]:
        try:
            s = self.connect(timeout)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            raise self.gone() from None
        with s:
            try:
                s.sendall(encode(req))
                return _raise(recv_msg(s))
            except (EOFError, ConnectionResetError, BrokenPipeError):
                raise self.gone() from None

    def wait(self, key: str | None, timeout: float | None) -> ExitStatus | None:
        req: dict[str, Any] = {"cmd": "wait"}
        if key:
            req["exec"] = key
        try:
            s = self.connect(30)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            return self._gone_status(key)
        with s:
            try:
                s.sendall(encode(req))
                s.settimeout(timeout)
                return ExitStatus.from_dict(_raise(recv_msg(s))["exit"])
            except TimeoutError:
                return None
            except (EOFError, ConnectionResetError, BrokenPipeError):
                return self._gone_status(key)

    def _gone_status(self, key: str | None) -> ExitStatus:
        st = None if key else self.exit_status()
        if st is None:
            # The monitor died without a record (killed?): report it like Docker does
            # for a lost shim, rather than blocking forever.
            return ExitStatus(255, False, time.time(), "monitor exited without a status")
        return st

    def attach(self, req: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
        try:
            s = self.connect(30)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            raise self.gone() from None
        try:
            s.sendall(encode(req))
            reply = _raise(recv_msg(s))
        except (EOFError, ConnectionResetError, BrokenPipeError):
            s.close()
            raise self.gone() from None
        except BaseException:
            s.close()
            raise
        s.settimeout(None)
        return s, reply


class ExecProcess:
    def __init__(self, conn: _Conn, key: str, tty: bool) -> None:
        self._c = conn
        self.key = key
        self.tty = tty
        self.pid = 0  # known once started

    def attach(self, stdin: bool, stdout: bool, stderr: bool, stdin_once: bool = True) -> socket.socket:
        """Starts the process (if not yet) and returns its stream (same framing as Monitor)."""
        s, reply = self._c.attach({"cmd": "attach", "exec": self.key, "stdin": stdin,
                                   "stdout": stdout, "stderr": stderr, "stdin_once": stdin_once})
        self.pid = int(reply.get("pid") or 0)
        return s

    def start(self) -> None:
        """Start detached: output is discarded."""
        self.pid = int(self._c.call({"cmd": "start", "exec": self.key}).get("pid") or 0)

    def resize(self, height: int, width: int) -> None:
        self._c.call({"cmd": "resize", "exec": self.key, "height": height, "width": width})

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        return self._c.wait(self.key, timeout)

    def status(self) -> dict[str, Any]:
        return self._c.call({"cmd": "status", "exec": self.key})


class Monitor:
    def __init__(self, container_id: str, state_dir: str, pid: int, tty: bool,
                 monitor_pid: int) -> None:
        self.container_id = container_id
        self.state_dir = state_dir
        self.pid = pid
        self.tty = tty
        self.monitor_pid = monitor_pid
        self.runtime_create_ms = 0.0  # time runtime.create took inside the monitor
        self._c = _Conn(container_id, state_dir)

    def start(self) -> None:
        self._c.call({"cmd": "start"})

    def kill(self, sig: int) -> None:
        self._c.call({"cmd": "kill", "sig": int(sig)})

    def pause(self) -> None:
        self._c.call({"cmd": "pause"})

    def resume(self) -> None:
        self._c.call({"cmd": "resume"})

    def status(self) -> dict[str, Any]:
        """{"pid", "tty", "state": created|running|paused|exited, "exit"}; exited when gone."""
        try:
            return self._c.call({"cmd": "status"})
        except errors.Conflict:
            st = self._c.exit_status()
            return {"pid": 0, "tty": self.tty, "state": "exited",
                    "exit": asdict(st) if st else None}

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        return self._c.wait(None, timeout)

    def attach(self, stdin: bool, stdout: bool, stderr: bool, logs: bool = False,
               stdin_once: bool = True) -> socket.socket:
        s, _ = self._c.attach({"cmd": "attach", "stdin": stdin, "stdout": stdout,
                               "stderr": stderr, "logs": logs, "stdin_once": stdin_once})
        return s

    def resize(self, height: int, width: int) -> None:
        self._c.call({"cmd": "resize", "height": height, "width": width})

    def exec(self, process: dict, tty: bool, stdin: bool) -> ExecProcess:
        reply = self._c.call({"cmd": "exec", "process": process, "tty": tty, "stdin": stdin})
        return ExecProcess(self._c, reply["exec"], tty)

    def close(self) -> None:
        """Nothing to drop: every call uses its own short connection."""


# A spare monitor answers a create request as soon as it has it; only a monitor killed
# in that instant leaves the daemon without an answer.
ACK_TIMEOUT = 60.0


class Supervisor:
    """One per daemon. Starts the fork server; creates and reconnects monitors."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        os.makedirs(run_dir, 0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hoist.runtime.forkserver", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, cwd="/")
        theirs.close()
        ours.settimeout(ACK_TIMEOUT)
        self._sock = ours

    def _respawn(self) -> None:
        """The fork server died: start a new one; monitors are unaffected."""
        print(f"hoist: fork server {self._proc.pid} gone (status {self._proc.poll()}); "
              f"restarting it", file=sys.stderr, flush=True)
        self._sock.close()  # its spare, if any, sees EOF and exits
        self._spawn()

    def create(self, spec: MonitorSpec) -> Monitor:
        """Monitor up, init created (not started). Exec failures surface at start()."""
        os.makedirs(spec.state_dir, 0o700, exist_ok=True)
        cfg = dict(asdict(spec), run_dir=self.run_dir)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                if self._sock is None:
                    raise errors.Unavailable("supervisor is closed")
                if self._proc.poll() is not None:
                    # Dead (killed?) but its idle spare monitor may still hold the socket
                    # and would serve this one request: start afresh instead.
                    self._respawn()
                try:
                    socket.send_fds(self._sock, [json.dumps(cfg).encode()], [theirs.fileno()])
                except (BrokenPipeError, ConnectionResetError):
                    # The fork server died (killed?): start a new one; monitors are unaffected.
                    self._respawn()
                    socket.send_fds(self._sock, [json.dumps(cfg).encode()], [theirs.fileno()])
                theirs.close()
                try:
                    ack = json.loads(self._sock.recv(1 << 16) or b'{"error":"fork server gone"}')
                except TimeoutError:
                    ack = {"error": "no answer (a monitor died as it was forked?)"}
            if "error" in ack:
                raise errors.Unavailable(f"fork server: {ack['error']}")
            try:
                info = _raise(recv_msg(mine))
            except (EOFError, ConnectionResetError, BrokenPipeError):
                raise errors.HoistError("monitor exited before reporting create") from None
        finally:
            mine.close()
            if theirs.fileno() >= 0:
                theirs.close()
        m = Monitor(spec.container_id, spec.state_dir, int(info["pid"]), bool(info["tty"]),
                    int(info["monitor_pid"]))
        m.runtime_create_ms = float(info.get("runtime_create_ms", 0.0))
        return m

    def reconnect(self, container_id: str, state_dir: str) -> Monitor | None:
        return self.reconnect_monitor(container_id, state_dir)

    @staticmethod
    def reconnect_monitor(container_id: str, state_dir: str) -> Monitor | None:
        """Live restore: a Monitor for a running monitor, or for one whose container exited
        (then wait() returns the recorded status at once); None if there is nothing."""
        try:
            with open(os.path.join(state_dir, INFO_FILE)) as f:
                info = json.load(f)
        except (OSError, ValueError):
            return None
        if info.get("container_id") != container_id:
            return None
        m = Monitor(container_id, state_dir, int(info.get("pid", 0)), bool(info.get("tty")),
                    int(info.get("monitor_pid", 0)))
        try:
            st = m._c.call({"cmd": "status"}, timeout=5)
            m.pid = int(st.get("pid", m.pid))
            return m
        except (errors.HoistError, OSError):
            pass
        return m if m._c.exit_status() is not None else None

    def close(self) -> None:
        """Daemon exit: stop the fork server; monitors keep running."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
