"""Engine API routes for container file systems: archive (cp), export, changes (diff)."""
from __future__ import annotations

import queue
import threading
from typing import Any, BinaryIO, Callable, Iterator

from ..engine.containers.fsops import ContainerFS
from ..engine.containers.pathstat import encode_stat
from .http import EmptyResponse, JSONResponse, Request, Router, StreamResponse

TAR = "application/x-tar"
STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(r: Router, engine: Any) -> None:
    api = _FSRoutes(ContainerFS(engine.containers))
    # HEAD is routed to the GET handler (http.Router), which tells them apart.
    r.add("GET", "/containers/{id}/archive", api.archive_get)
    r.add("PUT", "/containers/{id}/archive", api.archive_put)
    r.add("GET", "/containers/{id}/export", api.export)
    r.add("GET", "/containers/{id}/changes", api.changes)


class _Closed(Exception):
    """The client went away; the producer stops writing."""


class _QueueSink:
    """A write-only file whose writes become response chunks (bounded, so a slow client
    slows the tar writer instead of filling memory)."""

    def __init__(self, q: "queue.Queue[Any]", stop: threading.Event) -> None:
        self._q = q
        self._stop = stop
        self._buf = bytearray()

    def write(self, data: Any) -> int:
        if self._stop.is_set():
            raise _Closed()
        self._buf += data
        if len(self._buf) >= 1 << 16:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            chunk, self._buf = bytes(self._buf), bytearray()
            while True:
                if self._stop.is_set():
                    raise _Closed()
                try:
                    self._q.put(chunk, timeout=0.5)
                    return
                except queue.Full:
                    continue

    def writable(self) -> bool:
        return True


class _Produced:
    """Iterate the bytes ``produce(sink)`` writes, produced in a thread; ``close`` stops
    the producer (client gone) and always runs ``cleanup`` once it has finished."""

    def __init__(self, produce: Callable[[BinaryIO], None], cleanup: Callable[[], None]) -> None:
        self._q: "queue.Queue[Any]" = queue.Queue(maxsize=32)
        self._stop = threading.Event()
        self._cleanup = cleanup
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), daemon=True)
        self._started = False

    def _run(self, produce: Callable[[BinaryIO], None]) -> None:
        sink = _QueueSink(self._q, self._stop)
        end: Any = None
        try:
            produce(sink)  # type: ignore[arg-type]
            sink.flush()
        except _Closed:
            pass
        except Exception as exc:  # after the headers went out: end the stream early
            end = exc
        finally:
            try:
                self._cleanup()
            finally:
                self._done.set()
                while not self._stop.is_set():
                    try:
                        self._q.put(end if end is not None else StopIteration, timeout=0.5)
                        break
                    except queue.Full:
                        continue

    def __iter__(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._q.get()
            if item is StopIteration:
                return
            if isinstance(item, Exception):
                # A truncated tar must not look complete: break the connection.
                raise ConnectionResetError(f"archive stream failed: {item}")
            yield item

    def close(self) -> None:
        self._stop.set()
        if not self._started:
            self._cleanup()
            return
        self._done.wait(30)


class _FSRoutes:
    def __init__(self, fs: ContainerFS) -> None:
        self.fs = fs

    def archive_get(self, req: Request) -> Any:
        ref, path = req.params["id"], req.arg("path")
        if req.method == "HEAD":
            st = self.fs.stat_path(ref, path)
            return EmptyResponse(200, {STAT_HEADER: encode_stat(st)})
        arc = self.fs.archive_path(ref, path)
        return StreamResponse(_Produced(arc.write, arc.close), TAR,
                              headers={STAT_HEADER: encode_stat(arc.stat)})

    def archive_put(self, req: Request) -> Any:
        self.fs.extract_to_dir(req.params["id"], req.arg("path"), req.body,
                               no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"),
                               copy_uid_gid=req.flag("copyUIDGID"))
        return EmptyResponse(200)

    def export(self, req: Request) -> Any:
        cm = self.fs.export(req.params["id"])
        write = cm.__enter__()
        # dockerd labels an export application/octet-stream (an archive GET x-tar).
        return StreamResponse(_Produced(write, lambda: cm.__exit__(None, None, None)),
                              "application/octet-stream")

    def changes(self, req: Request) -> Any:
        return JSONResponse([c.to_api() for c in self.fs.changes(req.params["id"])])
