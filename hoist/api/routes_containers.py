"""Engine API routes for containers and exec instances: HTTP <-> ContainerService."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any, BinaryIO, Iterator

from ..detachkeys import DetachMatcher, parse_detach_keys
from ..engine.containers.execs import ExecService
from ..engine.containers.service import AttachRequest, ContainerService, _NotModified
from ..engine.containers.views import parse_iso
from ..errors import Conflict, HoistError, InvalidArgument
from ..runtime.logfile import read_logs
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


_EXEC_FIELDS = ("AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "DetachKeys",
                "Tty", "Env", "Cmd", "Privileged", "User", "WorkingDir")


def _go_fields(body: Any, fields: tuple[str, ...]) -> Any:
    """dockerd decodes bodies with Go's encoding/json, which matches field names
    case-insensitively: docker-py sends exec's ``detachKeys`` in that spelling."""
    if not isinstance(body, dict):
        return body
    canon = {f.lower(): f for f in fields}
    out = dict(body)
    for k, v in body.items():
        f = canon.get(k.lower()) if isinstance(k, str) else None
        if f is not None and f != k:
            del out[k]
            out.setdefault(f, v)  # an exact spelling wins over a folded one
    return out


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
        return self.svc.prune(req.filters())

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

    def _size(self, req: Request) -> tuple[int, int]:
        return req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0

    def resize(self, req: Request) -> Any:
        h, w = self._size(req)
        self.svc.resize(req.params["id"], h, w)
        return JSONResponse({}, 200)

    # ---------------------------------------------------------------- exec

    def exec_create(self, req: Request) -> Any:
        body = _go_fields(req.json_body() or {}, _EXEC_FIELDS)
        if body.get("DetachKeys"):
            parse_detach_keys(body["DetachKeys"])
        return JSONResponse(self.execs.create(req.params["id"], body), 201)

    def exec_inspect(self, req: Request) -> Any:
        return self.execs.inspect(req.params["id"])

    def exec_resize(self, req: Request) -> Any:
        rec = self.execs.get(req.params["id"])
        p = rec.get("_proc")
        if p is None or rec["ExitCode"] is not None:
            raise Conflict(f"Exec {rec['ID']} is not running")
        h, w = self._size(req)
        try:
            p.resize(h, w)
        except Conflict:
            pass  # no terminal: dockerd ignores it too
        return JSONResponse({}, 200)

    def exec_start(self, req: Request) -> Any:
        eid = req.params["id"]
        body = req.json_body() or {}
        rec = self.execs.get(eid)
        tty = bool(rec["ProcessConfig"]["tty"])
        detach = bool(body.get("Detach"))
        stdin = rec["OpenStdin"] and not detach
        proc = self.execs.prepare(eid, stdin)
        if detach:
            try:
                proc.start()
            except HoistError as e:
                self.execs.failed(eid, e)
                raise
            self.execs.started(eid)
            return EmptyResponse(200)
        keys = parse_detach_keys(rec["DetachKeys"]) if tty and stdin else None
        # dockerd frames the stream by the start request's Tty, not the exec's: a TTY
        # exec started with Tty false (docker-py's default) gets its output as stdout frames.
        reframe = tty and not body.get("Tty")
        mux = not tty or reframe

        def run(client: socket.socket, rfile: BinaryIO) -> None:
            try:
                # With a TTY the client's EOF is not passed on (dockerd neither): ^D is typed.
                stream = proc.attach(stdin, rec["OpenStdout"], rec["OpenStderr"], stdin_once=not tty)
            except HoistError as e:
                # As dockerd: the stream is already hijacked, so the error goes into it
                # and the exit code (126/127) is left for exec inspect.
                self.execs.failed(eid, e)
                msg = (str(e) + "\r\n").encode()
                _send_quietly(client, _frame(1, msg) if mux else msg)
                return
            self.execs.started(eid)
            detached = _splice(client, rfile, stream, stdin, keys, frame_stdout=reframe)
            if not detached:
                # The CLI asks exec inspect for the exit code once the stream ends:
                # end it only when the process is gone.
                self.execs.wait(eid)
            _end(client)

        return HijackResponse(run, MUX if mux else RAW)

    # ---------------------------------------------------------------- attach

    def attach(self, req: Request) -> Any:
        doc = self.svc.get(req.params["id"])
        cid = doc["Id"]
        tty = bool(doc["Config"].get("Tty"))
        want = AttachRequest(stdin=req.flag("stdin"), stdout=req.flag("stdout"),
                             stderr=req.flag("stderr"), logs=req.flag("logs"))
        live = req.arg("stream") in ("", "1", "true", "True")
        keys = parse_detach_keys(req.arg("detachKeys")) if tty and want.stdin else None
        path = doc["LogPath"]

        def run(client: socket.socket, rfile: BinaryIO) -> None:
            self.svc.publish_event(doc, "attach")
            if not live:
                # logs=1&stream=0: the log replay alone
                if want.logs:
                    streams = {s for s in ("stdout", "stderr") if getattr(want, s)}
                    for e in read_logs(path):
                        if e.stream in streams:
                            client.sendall(e.data if tty else _frame(1 if e.stream == "stdout" else 2, e.data))
                return
            ready = threading.Event()
            holder: list[socket.socket | None] = []

            def got(s: socket.socket | None) -> None:
                holder.append(s)
                ready.set()

            self.svc.attach(cid, want, got)
            ready.wait()
            stream = holder[0]
            if stream is None:
                return
            if _splice(client, rfile, stream, want.stdin, keys):
                self.svc.publish_event(doc, "detach")
            _end(client)

        return HijackResponse(run, RAW if tty else MUX)

    # ---------------------------------------------------------------- logs

    def logs(self, req: Request) -> Any:
        doc, path = self.svc.logs(req.params["id"])
        cid = doc["Id"]
        tty = bool(doc["Config"].get("Tty"))
        want = {s for s in ("stdout", "stderr") if req.flag(s)}
        if not want:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        follow = req.flag("follow")
        stamps = req.flag("timestamps")
        tail_arg = req.arg("tail") or "all"
        try:
            tail = None if tail_arg == "all" else int(tail_arg)
        except ValueError:
            tail = None  # dockerd reads a bad tail as "all"
        if tail is not None and tail < 0:
            tail = None
        since = _time_arg(req.arg("since"))
        until = _time_arg(req.arg("until"))

        def stop() -> bool:
            return not self.svc.is_running(cid) or bool(until and time.time() > until)

        def gen() -> Iterator[bytes]:
            entries = read_logs(path, tail=tail, since_ns=int(since * 1e9) if since else None,
                                until_ns=int(until * 1e9) if until else None,
                                follow=follow and self.svc.is_running(cid), stop=stop)
            for e in entries:
                if e.stream not in want:
                    continue
                data = e.timestamp.encode() + b" " + e.data if stamps else e.data
                yield data if tty else _frame(1 if e.stream == "stdout" else 2, data)

        return StreamResponse(gen(), RAW if tty else MUX)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _splice(client: socket.socket, rfile: BinaryIO, stream: socket.socket, stdin: bool,
            keys: bytes | None, frame_stdout: bool = False) -> bool:
    """Copy the monitor's stream to the client and (with stdin) the client's bytes to the
    monitor, until the stream ends. The client's EOF is passed on as SHUT_WR (stdin
    EOF). Returns True when the client typed the detach keys (only looked for with a TTY).
    frame_stdout wraps a raw (TTY) stream in stdout frames of the multiplexed format."""
    detached = threading.Event()

    def pump_in() -> None:
        matcher = DetachMatcher(keys) if keys else None
        try:
            while True:
                data = rfile.read1(65536)  # type: ignore[attr-defined]
                if not data:
                    break
                if matcher is not None:
                    data, hit = matcher.feed(data)
                    if data:
                        stream.sendall(data)
                    if hit:
                        detached.set()
                        # Unblocks the output loop below; the container keeps running.
                        stream.shutdown(socket.SHUT_RDWR)
                        return
                else:
                    stream.sendall(data)
        except OSError:
            return
        try:
            stream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    if stdin:
        threading.Thread(target=pump_in, daemon=True, name="attach-stdin").start()
    try:
        while True:
            try:
                data = stream.recv(65536)
            except OSError:
                break
            if not data:
                break
            try:
                client.sendall(_frame(1, data) if frame_stdout else data)
            except OSError:
                break
    finally:
        stream.close()
    return detached.is_set()


def _end(client: socket.socket) -> None:
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _time_arg(v: str) -> float:
    if not v:
        return 0.0
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return parse_iso(v if v.endswith("Z") else v + "Z")
    except ValueError:
        raise InvalidArgument(f"invalid time value: {v}") from None
