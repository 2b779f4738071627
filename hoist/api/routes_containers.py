"""Engine API routes for containers and exec instances: HTTP <-> ContainerService."""
from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from typing import Any, BinaryIO, Iterator

from ..engine.containers.execs import ExecService
from ..engine.containers.service import ContainerService, _NotModified, _parse_iso
from ..errors import InvalidArgument
from .http import EmptyResponse, HijackResponse, JSONResponse, Request, Router, StreamResponse

RAW = "application/vnd.docker.raw-stream"
MUX = "application/vnd.docker.multiplexed-stream"


def register(r: Router, engine: Any) -> None:
    api = _ContainerRoutes(engine.containers, engine.store.events)
    r.add("POST", "/containers/create", api.create)
    r.add("GET", "/containers/json", api.list)
    r.add("POST", "/containers/prune", api.prune)
    r.add("GET", "/containers/{id}/json", api.inspect)
    r.add("POST", "/containers/{id}/start", api.start)
    r.add("POST", "/containers/{id}/stop", api.stop)
    r.add("POST", "/containers/{id}/restart", api.restart)
    r.add("POST", "/containers/{id}/kill", api.kill)
    r.add("POST", "/containers/{id}/pause", api.pause)
    r.add("POST", "/containers/{id}/unpause", api.unpause)
    r.add("POST", "/containers/{id}/rename", api.rename)
    r.add("POST", "/containers/{id}/wait", api.wait)
    r.add("POST", "/containers/{id}/attach", api.attach)
    r.add("POST", "/containers/{id}/resize", api.resize)
    r.add("GET", "/containers/{id}/logs", api.logs)
    r.add("DELETE", "/containers/{id}", api.remove)
    r.add("POST", "/containers/{id}/exec", api.exec_create)
    r.add("POST", "/exec/{id}/start", api.exec_start)
    r.add("POST", "/exec/{id}/resize", api.exec_resize)
    r.add("GET", "/exec/{id}/json", api.exec_inspect)


def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


class _ContainerRoutes:
    def __init__(self, svc: ContainerService, events: Any) -> None:
        self.svc = svc
        self.events = events
        self.execs = ExecService(svc)

    def create(self, req: Request) -> Any:
        body = req.json_body() or {}
        return JSONResponse(self.svc.create(body, req.arg("name")), 201)

    def list(self, req: Request) -> Any:
        return self.svc.list(all=req.flag("all"), filters=req.filters(),
                             limit=req.int_arg("limit", -1) or -1, size=req.flag("size"))

    def prune(self, req: Request) -> Any:
        return self.svc.prune()

    def inspect(self, req: Request) -> Any:
        return self.svc.inspect(req.params["id"])

    def start(self, req: Request) -> Any:
        try:
            self.svc.start(req.params["id"])
        except _NotModified:
            return EmptyResponse(304)
        return EmptyResponse(204)

    def _timeout(self, req: Request) -> int | None:
        t = req.arg("t") or req.arg("timeout")
        if t == "":
            return None
        try:
            return int(t)
        except ValueError:
            raise InvalidArgument(f"invalid value for t: {t}") from None

    def stop(self, req: Request) -> Any:
        try:
            self.svc.stop(req.params["id"], self._timeout(req), req.arg("signal") or None)
        except _NotModified:
            return EmptyResponse(304)
        return EmptyResponse(204)

    def restart(self, req: Request) -> Any:
        self.svc.restart(req.params["id"], self._timeout(req))
        return EmptyResponse(204)

    def kill(self, req: Request) -> Any:
        self.svc.kill(req.params["id"], req.arg("signal") or None)
        return EmptyResponse(204)

    def pause(self, req: Request) -> Any:
        self.svc.pause(req.params["id"], True)
        return EmptyResponse(204)

    def unpause(self, req: Request) -> Any:
        self.svc.pause(req.params["id"], False)
        return EmptyResponse(204)

    def rename(self, req: Request) -> Any:
        self.svc.rename(req.params["id"], req.arg("name"))
        return EmptyResponse(204)

    def wait(self, req: Request) -> Any:
        cid = self.svc.resolve(req.params["id"])
        cond = req.arg("condition")
        if cond not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {cond}")

        # Headers go out at once (as dockerd does): `docker run` starts the container
        # only after its wait request has been answered with them.
        def gen() -> Iterator[bytes]:
            yield json.dumps(self.svc.wait(cid, cond)).encode() + b"\n"

        return StreamResponse(gen())

    def remove(self, req: Request) -> Any:
        self.svc.remove(req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
        return EmptyResponse(204)

    def resize(self, req: Request) -> Any:
        self.svc.get(req.params["id"])
        return JSONResponse({}, 200)

    # ---------------------------------------------------------------- exec

    def exec_create(self, req: Request) -> Any:
        return JSONResponse(self.execs.create(req.params["id"], req.json_body() or {}), 201)

    def exec_inspect(self, req: Request) -> Any:
        return self.execs.inspect(req.params["id"])

    def exec_resize(self, req: Request) -> Any:
        self.execs.get(req.params["id"])
        return JSONResponse({}, 200)

    def exec_start(self, req: Request) -> Any:
        eid = req.params["id"]
        body = req.json_body() or {}
        rec = self.execs.get(eid)
        stdin = rec["OpenStdin"] and not body.get("Detach")
        p = self.execs.spawn(eid, stdin)

        def pump(src: Any, out: Any, stream: int, lock: threading.Lock) -> None:
            try:
                while True:
                    data = os.read(src.fileno(), 65536)
                    if not data:
                        break
                    if out is not None:
                        with lock:
                            out.sendall(_frame(stream, data))
            except OSError:
                pass

        if body.get("Detach"):
            def reap() -> None:
                lock = threading.Lock()
                t = threading.Thread(target=pump, args=(p.stderr, None, 2, lock), daemon=True)
                t.start()
                pump(p.stdout, None, 1, lock)
                t.join()
                self.execs.finished(eid, p.wait())
            threading.Thread(target=reap, daemon=True).start()
            return EmptyResponse(200)

        def run(client: socket.socket, rfile: BinaryIO) -> None:
            lock = threading.Lock()
            if stdin:
                def pump_in() -> None:
                    try:
                        while True:
                            data = rfile.read1(65536)  # type: ignore[attr-defined]
                            if not data:
                                break
                            p.stdin.write(data)
                            p.stdin.flush()
                    except (OSError, ValueError):
                        pass
                    try:
                        p.stdin.close()
                    except OSError:
                        pass
                threading.Thread(target=pump_in, daemon=True).start()
            t = threading.Thread(target=pump, args=(p.stderr, client, 2, lock), daemon=True)
            t.start()
            pump(p.stdout, client, 1, lock)
            t.join()
            self.execs.finished(eid, p.wait())
            try:
                client.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        return HijackResponse(run, MUX)

    # ---------------------------------------------------------------- attach

    def attach(self, req: Request) -> Any:
        doc = self.svc.get(req.params["id"])
        cid = doc["Id"]
        tty = bool(doc["Config"].get("Tty"))
        want_stdin = req.flag("stdin")
        ready = threading.Event()
        holder: list[socket.socket] = []

        def got(s: socket.socket) -> None:
            holder.append(s)
            ready.set()

        def run(client: socket.socket, rfile: BinaryIO) -> None:
            self.events.publish("container", "attach", cid, image=doc["Config"]["Image"],
                                name=doc["Name"][1:])
            self.svc.attach(cid, got)
            ready.wait()
            shim = holder[0]
            if shim is None:
                return
            if want_stdin:
                def pump_in() -> None:
                    try:
                        while True:
                            data = rfile.read1(65536)  # type: ignore[attr-defined]
                            if not data:
                                break
                            shim.sendall(data)
                    except OSError:
                        pass
                    try:
                        shim.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                threading.Thread(target=pump_in, daemon=True).start()
            try:
                while True:
                    data = shim.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            finally:
                shim.close()
                try:
                    client.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        return HijackResponse(run, RAW if tty else MUX)

    # ---------------------------------------------------------------- logs

    def logs(self, req: Request) -> Any:
        doc, path = self.svc.logs(req.params["id"])
        cid = doc["Id"]
        tty = bool(doc["Config"].get("Tty"))
        want = set()
        if req.flag("stdout"):
            want.add("stdout")
        if req.flag("stderr"):
            want.add("stderr")
        if not want:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        follow = req.flag("follow")
        stamps = req.flag("timestamps")
        tail = req.arg("tail") or "all"
        since = _time_arg(req.arg("since"))
        until = _time_arg(req.arg("until"))

        def render(rec: dict[str, Any]) -> bytes:
            if rec.get("stream") not in want:
                return b""
            t = rec.get("time", "")
            if since or until:
                ts = _parse_iso(t[:26] + "Z") if t else 0
                if since and ts < since or until and ts > until:
                    return b""
            data = rec.get("log", "").encode()
            if stamps:
                data = t.encode() + b" " + data
            return data if tty else _frame(1 if rec["stream"] == "stdout" else 2, data)

        def gen() -> Iterator[bytes]:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                return
            with f:
                lines = f.readlines()
                if tail != "all":
                    try:
                        n = int(tail)
                    except ValueError:
                        n = -1
                    if n >= 0:
                        lines = lines[len(lines) - n:] if n else []
                pos = f.tell()
                buf = b""
                for line in lines:
                    if line.endswith(b"\n"):
                        yield render(json.loads(line))
                    else:
                        pos -= len(line)
                if not follow:
                    return
                f.seek(pos)
                while True:
                    running = self.svc.is_running(cid)
                    chunk = f.read()
                    if chunk:
                        buf += chunk
                        *complete, buf = buf.split(b"\n")
                        for line in complete:
                            if line:
                                yield render(json.loads(line))
                    elif not running:
                        return
                    else:
                        if until and time.time() > until:
                            return
                        time.sleep(0.05)  # json-file follow: the file is the only channel

        return StreamResponse(gen(), RAW if tty else MUX)


def _time_arg(v: str) -> float:
    if not v:
        return 0.0
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return _parse_iso(v if v.endswith("Z") else v + "Z")
    except ValueError:
        raise InvalidArgument(f"invalid time value: {v}") from None
