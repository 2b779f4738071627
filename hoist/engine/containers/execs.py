"""Exec instances (``docker exec``): records in memory, processes via the OCI runtime.

Interim, like the shim: ``runc exec`` runs as the daemon's child with pipes (no tty yet);
the Supervisor's ExecProcess replaces this when branch ``monitor`` lands.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import threading
from typing import Any

from ...errors import Conflict, InvalidArgument, NotFound
from .service import RUNTIMES, DEFAULT_RUNTIME, ContainerService


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.c = containers
        self._execs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)

    def create(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        doc = self.c.get(ref)
        if not doc["State"]["Running"]:
            raise Conflict(f"Container {doc['Id']} is not running")
        if doc["State"]["Paused"]:
            raise Conflict(f"Container {doc['Id']} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        eid = secrets.token_hex(32)
        rec = {"ID": eid, "ContainerID": doc["Id"], "Running": False, "ExitCode": None,
               "Pid": 0, "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
               "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False, "DetachKeys": "",
               "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0], "arguments": cmd[1:],
                                 "privileged": bool(body.get("Privileged")), "user": body.get("User") or ""},
               "_body": body}
        with self._lock:
            self._execs[eid] = rec
        self.c.store.events.publish("container", f"exec_create: {' '.join(cmd)}", doc["Id"],
                                    image=doc["Config"]["Image"], name=doc["Name"][1:], execID=eid)
        return {"Id": eid}

    def get(self, eid: str) -> dict[str, Any]:
        with self._lock:
            rec = self._execs.get(eid)
        if rec is None:
            raise NotFound(f"No such exec instance: {eid}")
        return rec

    def inspect(self, eid: str) -> dict[str, Any]:
        return {k: v for k, v in self.get(eid).items() if not k.startswith("_")}

    def spawn(self, eid: str, stdin: bool) -> subprocess.Popen:
        from ...runtime.user import resolve_user
        rec = self.get(eid)
        if rec["Running"] or rec["ExitCode"] is not None:
            raise Conflict(f"Error: Exec command {eid} has already run")
        cid = rec["ContainerID"]
        doc = self.c.get(cid)
        body = rec["_body"]
        d = self.c.dir(cid)
        with open(os.path.join(d, "bundle", "config.json")) as f:
            proc = json.load(f)["process"]
        proc["args"] = list(body["Cmd"])
        proc["terminal"] = False
        env = {e.split("=", 1)[0]: e for e in proc.get("env", [])}
        for e in body.get("Env") or []:
            env[e.split("=", 1)[0]] = e
        proc["env"] = list(env.values())
        if body.get("WorkingDir"):
            proc["cwd"] = body["WorkingDir"]
        if body.get("User"):
            u = resolve_user(os.path.join(d, "bundle", "rootfs"), body["User"])
            proc["user"] = {"uid": u.uid, "gid": u.gid, **({"additionalGids": list(u.additional_gids)}
                                                            if u.additional_gids else {})}
        if body.get("Privileged"):
            from ...runtime.capabilities import tweak_caps
            caps = list(tweak_caps([], [], True))
            proc["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        fd, path = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=os.path.join(d, "state"))
        with os.fdopen(fd, "w") as f:
            json.dump(proc, f)
        rt = doc["HostConfig"].get("Runtime") or DEFAULT_RUNTIME
        p = subprocess.Popen([RUNTIMES[rt], "--root", os.path.join(self.c.runtime_root, rt), "exec",
                              "--process", path, cid],
                             stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        with self._lock:
            rec["Running"] = True
            rec["Pid"] = p.pid
        self.c.store.events.publish("container", f"exec_start: {' '.join(body['Cmd'])}", cid,
                                    image=doc["Config"]["Image"], name=doc["Name"][1:], execID=eid)
        rec["_path"] = path
        return p

    def finished(self, eid: str, code: int) -> None:
        rec = self.get(eid)
        try:
            os.unlink(rec.pop("_path", ""))
        except OSError:
            pass
        with self._lock:
            rec["Running"] = False
            rec["ExitCode"] = code if code >= 0 else 128 - code
            self._done.notify_all()
        doc = self.c.get(rec["ContainerID"])
        self.c.store.events.publish("container", "exec_die", rec["ContainerID"], image=doc["Config"]["Image"],
                                    name=doc["Name"][1:], execID=eid, exitCode=str(rec["ExitCode"]))
