"""The Runtime protocol: what a per-container monitor asks of an OCI runtime.

The monitor is single-threaded and a child subreaper, so a container's init is its
child (or reparents to it). The OCI runtime spec (a bundle's config.json) is the input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Stdio:
    stdin: int | None        # fds in the calling process, become 0,1,2 of the process
    stdout: int | None
    stderr: int | None
    terminal: bool = False   # if True the runtime allocates the pty (inside the
                             # container's devpts, as runc does) and returns the master


@dataclass(frozen=True)
class Created:
    pid: int                 # host pid of the container's init (or exec'd process)
    console: int | None      # pty master fd when Stdio.terminal, else None


class Runtime(Protocol):
    name: str

    def create(self, container_id: str, bundle: str, stdio: Stdio) -> Created:
        """Container fully set up, init blocked before execve until start()."""
        ...

    def start(self, container_id: str) -> None:
        """Exec failures surface as CannotExecute (126) / CommandNotFound (127)."""
        ...

    def exec(self, container_id: str, bundle: str, process: dict, stdio: Stdio) -> Created:
        """process: OCI "process" object; joins the container's namespaces/cgroup; running on return."""
        ...

    def kill(self, container_id: str, sig: int) -> None: ...

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def delete(self, container_id: str) -> None:
        """After init exit: cgroups, state."""
        ...
