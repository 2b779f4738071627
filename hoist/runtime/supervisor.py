"""The daemon's side of the process model: Supervisor (fork server client) and Monitor.

(first version: classes and signatures; filled in next)
"""
from __future__ import annotations

import socket
from dataclasses import dataclass


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


@dataclass(frozen=True)
class ExitStatus:
    code: int                # exit code, 128+N for a signal, as Docker reports
    oom_killed: bool
    finished_at: float       # unix time
    error: str = ""          # e.g. exec failure message (then code 126/127)


class ExecProcess:
    pid: int

    def attach(self, stdin: bool, stdout: bool, stderr: bool, stdin_once: bool = True) -> socket.socket:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def resize(self, height: int, width: int) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        raise NotImplementedError


class Monitor:
    pid: int

    def start(self) -> None:
        raise NotImplementedError

    def kill(self, sig: int) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        raise NotImplementedError

    def attach(self, stdin: bool, stdout: bool, stderr: bool, logs: bool = False,
               stdin_once: bool = True) -> socket.socket:
        raise NotImplementedError

    def resize(self, height: int, width: int) -> None:
        raise NotImplementedError

    def exec(self, process: dict, tty: bool, stdin: bool) -> ExecProcess:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Supervisor:
    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def create(self, spec: MonitorSpec) -> Monitor:
        raise NotImplementedError

    def reconnect(self, container_id: str, state_dir: str) -> Monitor | None:
        raise NotImplementedError

    def close(self) -> None:
        pass
