"""Exec instances (``docker exec``): records in memory, processes in the container's
monitor (hoist.runtime.supervisor.ExecProcess), as dockerd keeps them: an exec
instance lives as long as its container does in this daemon."""
from __future__ import annotations

import secrets
import threading
from typing import Any

from ...errors import Conflict, HoistError, InvalidArgument, NotFound
from .schema import check_exec_body
from .service import ContainerService


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.c = containers
        self._execs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)

    def create(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidArgument("invalid exec config")
        check_exec_body(body)
        doc = self.c.get(ref)
        if not doc["State"]["Running"]:
            raise Conflict(f"Container {doc['Id']} is not running")
        if doc["State"]["Paused"]:
            raise Conflict(f"Container {doc['Id']} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidArgument("No exec command specified")
        eid = secrets.token_hex(32)
        rec = {"ID": eid, "ContainerID": doc["Id"], "Running": False, "ExitCode": None,
               "Pid": 0, "OpenStdin": bool(body.get("AttachStdin")),
               "OpenStdout": bool(body.get("AttachStdout")),
               "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False,
               "DetachKeys": body.get("DetachKeys") or "",
               "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0],
                                 "arguments": list(cmd[1:]),
                                 "privileged": bool(body.get("Privileged")),
                                 # omitted when empty, as dockerd's omitempty does
                                 **({"user": body["User"]} if body.get("User") else {})},
               "_body": dict(body, Cmd=list(cmd)), "_proc": None, "_started": False}
        with self._lock:
            self._execs[eid] = rec
        self.c.publish_event(doc, f"exec_create: {' '.join(cmd)}", execID=eid)
        return {"Id": eid}

    def get(self, eid: str) -> dict[str, Any]:
        with self._lock:
            rec = self._execs.get(eid)
        if rec is None:
            raise NotFound(f"No such exec instance: {eid}")
        return rec

    def inspect(self, eid: str) -> dict[str, Any]:
        rec = self.get(eid)
        with self._lock:
            return {k: v for k, v in rec.items() if not k.startswith("_")}

    def prepare(self, eid: str, stdin: bool) -> Any:
        """The exec's ExecProcess, ready to attach or start (once per instance)."""
        rec = self.get(eid)
        with self._lock:
            if rec["_started"]:
                raise Conflict(f"Error: Exec command {eid} has already run")
            rec["_started"] = True
        body = rec["_body"]
        try:
            p = self.c.exec_process(rec["ContainerID"], self.c.exec_spec(rec["ContainerID"], body), bool(body.get("Tty")),
                                    stdin)
        except BaseException:
            with self._lock:
                rec["_started"] = False
            raise
        rec["_proc"] = p
        return p

    def started(self, eid: str) -> None:
        """The process runs (attach or start returned): record it and watch for its exit."""
        rec = self.get(eid)
        p = rec["_proc"]
        with self._lock:
            rec["Running"] = True
            rec["Pid"] = p.pid
        doc = self.c.get(rec["ContainerID"])
        self.c.publish_event(doc, f"exec_start: {' '.join(rec['_body']['Cmd'])}", execID=eid)
        threading.Thread(target=self._watch, args=(eid,), daemon=True,
                         name=f"exec-{eid[:12]}").start()

    def _watch(self, eid: str) -> None:
        rec = self.get(eid)
        st = rec["_proc"].wait()
        self.finished(eid, st.code if st is not None else 255)

    def failed(self, eid: str, e: HoistError) -> None:
        """The process could not be started (126/127): dockerd records the exit code."""
        self.finished(eid, e.exit_code if e.exit_code in (126, 127) else 126)

    def finished(self, eid: str, code: int) -> None:
        rec = self.get(eid)
        with self._lock:
            if rec["ExitCode"] is not None:
                return
            rec["Running"] = False
            rec["ExitCode"] = code
            self._done.notify_all()
        try:
            doc = self.c.get(rec["ContainerID"])
        except NotFound:
            return
        self.c.publish_event(doc, "exec_die", execID=eid, exitCode=str(code))

    def wait(self, eid: str, timeout: float | None = None) -> int | None:
        rec = self.get(eid)
        with self._lock:
            self._done.wait_for(lambda: rec["ExitCode"] is not None, timeout)
            return rec["ExitCode"]
