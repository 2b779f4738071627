"""A small HTTP/1.1 server for the Engine API on a unix socket.

Threads, not asyncio: most handlers do blocking file and SQLite work, hijacked
attach/exec connections want a plain socket, and a thread per connection (from a pool
of waiting workers) is what dockerd's clients expect to be cheap enough.
The server knows nothing about Docker: it parses requests, routes them and writes the
three kinds of response (JSON, chunked stream, sized file) and maps errors in one place.
"""
from __future__ import annotations

import json
import os
import queue
import re
import select
import socket
import socketserver
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO, Callable, Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import HoistError, InvalidArgument


class ChunkedReader:
    """Reads a ``Transfer-Encoding: chunked`` request body as a plain stream."""

    def __init__(self, rfile: BinaryIO) -> None:
        self._r = rfile
        self._left = 0
        self._done = False

    def _next_chunk(self) -> None:
        line = self._r.readline(1024)
        if not line:
            raise InvalidArgument("truncated chunked request body")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self._r.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self._done = True
        self._left = size

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self._done and (n < 0 or len(out) < n):
            if self._left == 0:
                self._next_chunk()
                if self._done:
                    break
            want = self._left if n < 0 else min(self._left, n - len(out))
            data = self._r.read(want)
            if not data:
                raise InvalidArgument("truncated chunked request body")
            out += data
            self._left -= len(data)
            if self._left == 0:
                self._r.readline(16)  # CRLF after the chunk
        return bytes(out)

    def readinto(self, b: Any) -> int:
        """Read into ``b`` straight from the socket buffer (no intermediate copies: big
        uploads like ``docker load`` go through here)."""
        view = memoryview(b).cast("B")
        if self._done or not len(view):
            return 0
        if self._left == 0:
            self._next_chunk()
            if self._done:
                return 0
        n = self._r.readinto(view[:min(self._left, len(view))])  # type: ignore[attr-defined]
        if not n:
            raise InvalidArgument("truncated chunked request body")
        self._left -= n
        if self._left == 0:
            self._r.readline(16)
        return n

    def readable(self) -> bool:
        return True


class LengthReader:
    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self._r = rfile
        self._left = length

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        data = self._r.read(n)
        self._left -= len(data)
        return data

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._left <= 0 or not len(view):
            return 0
        n = self._r.readinto(view[:min(self._left, len(view))])  # type: ignore[attr-defined]
        self._left -= n or 0
        return n or 0

    def readable(self) -> bool:
        return True


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: BinaryIO
    api_version: float
    params: dict[str, str] = field(default_factory=dict)
    connection: socket.socket | None = None

    def arg(self, name: str, default: str = "") -> str:
        v = self.query.get(name)
        return v[-1] if v else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolValue: absent → default; '', 0, no, false, none → False."""
        if name not in self.query:
            return default
        return self.arg(name).strip().lower() not in ("", "0", "no", "false", "none")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        v = self.arg(name)
        if v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {v!r}") from None

    def json_body(self) -> Any:
        data = self.body.read(16 * 1024 * 1024 + 1)
        if len(data) > 16 * 1024 * 1024:
            raise InvalidArgument("request body too large")
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON body: {e}") from None

    def filters(self) -> dict[str, list[str]]:
        """Docker's ``filters`` parameter: {"k":["v"]} or the older {"k":{"v":true}}."""
        raw = self.arg("filters")
        if not raw:
            return {}
        try:
            obj = json.loads(raw)
        except ValueError:
            raise InvalidArgument(f"invalid filters: {raw!r}") from None
        if not isinstance(obj, dict):
            raise InvalidArgument("invalid filters: not an object")
        out: dict[str, list[str]] = {}
        for k, v in obj.items():
            if isinstance(v, dict):
                out[k] = [x for x, on in v.items() if on]
            elif isinstance(v, list):
                out[k] = [str(x) for x in v]
            else:
                raise InvalidArgument(f"invalid filters: {k!r}")
        return out


@dataclass(frozen=True)
class JSONResponse:
    body: Any
    status: int = 200


@dataclass(frozen=True)
class TextResponse:
    body: str
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class StreamResponse:
    """Chunked response; each item is written and flushed as soon as it is produced."""

    chunks: Iterable[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class SizedResponse:
    """A body of known size written by ``writer`` (lets blobs go out via sendfile)."""

    size: int
    writer: Callable[[BinaryIO], None]
    content_type: str = "application/x-tar"


@dataclass(frozen=True)
class HijackResponse:
    """Takes the connection over after the headers (attach, exec start), as dockerd does:
    ``101 UPGRADED`` when the client asked for an Upgrade, else 200 and the raw stream.
    ``run(sock, rfile)`` owns the socket until it returns; the connection then closes."""

    run: Callable[[Any, BinaryIO], None]
    content_type: str = "application/vnd.docker.raw-stream"


@dataclass(frozen=True)
class EmptyResponse:
    status: int = 204
    headers: dict[str, str] | None = None


Handler = Callable[[Request], Any]
_VERSION_RE = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)",
                                     pattern.replace("{name:.+}", "(?P<name>.+)")) + "$")
        self._routes.append((method, rx, handler))

    def route(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None | bool:
        found_path = False
        for m, rx, h in self._routes:
            mt = rx.match(path)
            if mt:
                found_path = True
                if m == method or (method == "HEAD" and m == "GET"):
                    return h, {k: unquote(v) for k, v in mt.groupdict().items()}
        return found_path


class WorkerPool:
    """Threads that wait for connections to serve.

    Starting a thread per accepted connection cost ~0.5 ms of every connection, and a
    `docker run` opens three. Workers are made before they are needed: whenever fewer
    than ``spare`` are idle, another is started; one idle for ``idle_timeout`` seconds
    ends, as long as more than ``keep`` are idle. Long-lived connections (attach, logs
    -f, events) simply hold their worker."""

    def __init__(self, serve: Callable[..., None], spare: int = 2, keep: int = 4,
                 idle_timeout: float = 60.0) -> None:
        self._serve = serve
        self._spare, self._keep, self._idle_timeout = spare, keep, idle_timeout
        self._jobs: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = keep  # workers waiting, less the jobs queued for them
        for _ in range(keep):
            self._start_worker()

    def submit(self, *job: Any) -> None:
        with self._lock:
            self._idle -= 1
            short = max(0, self._spare - self._idle)
            self._idle += short
        self._jobs.put(job)
        for _ in range(short):
            self._start_worker()

    def _start_worker(self) -> None:
        threading.Thread(target=self._work, daemon=True, name="api-worker").start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > self._keep:
                        self._idle -= 1
                        return
                continue
            try:
                self._serve(*job)
            finally:
                with self._lock:
                    self._idle += 1


class APIServer(socketserver.UnixStreamServer):
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, path: str, router: Router, *, api_version: str, min_version: str,
                 headers: dict[str, str]) -> None:
        self.router = router
        self.api_version = api_version
        self.max_api = float(api_version)
        self.min_version = min_version
        self.extra_headers = headers
        self.workers = WorkerPool(self._serve_connection)
        super().__init__(path, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.workers.submit(request, client_address)

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: APIServer
    wbufsize = 0

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _send_headers(self, status: int, ctype: str | None, length: int | None,
                      extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in self.server.extra_headers.items():
            self.send_header(k, v)
        self.send_header("Api-Version", self.server.api_version)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self._send_headers(status, "application/json", len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, {"message": message})

    def _body(self) -> BinaryIO:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return ChunkedReader(self.rfile)  # type: ignore[return-value]
        return LengthReader(self.rfile, int(self.headers.get("Content-Length") or 0))  # type: ignore[return-value]

    def _drain(self, body: Any, limit: int = 1 << 30) -> None:
        """Read what the client is still sending so it sees our error, not a reset."""
        try:
            n = 0
            while n < limit:
                chunk = body.read(1 << 20)
                if not chunk:
                    return
                n += len(chunk)
        except Exception:
            pass
        self.close_connection = True

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        api = self.server.max_api
        m = _VERSION_RE.match(path)
        body = self._body()
        if m:
            # Compare as (major, minor): 1.9 < 1.24 < 1.47 only holds for integers.
            asked = (int(m.group(1)), int(m.group(2)))
            path = m.group(3)
            # Handlers compare decimal floats (api < 1.44); every supported minor has two
            # digits, so that order is right within the accepted range.
            api = float(f"{asked[0]}.{asked[1]:02d}")
            if asked > _version_tuple(self.server.api_version):
                self._drain(body)
                return self._send_error(400, f"client version {m.group(1)}.{m.group(2)} is too new. "
                                             f"Maximum supported API version is {self.server.api_version}")
            if asked < _version_tuple(self.server.min_version):
                self._drain(body)
                return self._send_error(400, f"client version {m.group(1)}.{m.group(2)} is too old. "
                                             f"Minimum supported API version is {self.server.min_version}, please upgrade "
                                             f"your client to a newer version")
        else:
            api = float(self.server.api_version)
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        found = self.server.router.route(self.command, path)
        if not isinstance(found, tuple):
            self._drain(body)
            if found:
                return self._send_error(405, f"method {self.command} not allowed for {path}")
            return self._send_error(404, "page not found")
        handler, params = found
        req = Request(self.command, path, parse_qs(parts.query, keep_blank_values=True), self.headers,
                      body, api, params, self.connection)
        try:
            resp = handler(req)
        except HoistError as e:
            self._drain(body)
            return self._send_error(e.status, e.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except Exception as e:  # a bug: report it rather than drop the connection
            traceback.print_exc()
            self._drain(body)
            return self._send_error(500, f"internal error: {e}")
        self._write(resp)

    def _write(self, resp: Any) -> None:
        if resp is None or isinstance(resp, EmptyResponse):
            status = resp.status if resp else 204
            self.send_response(status)
            for k, v in self.server.extra_headers.items():
                self.send_header(k, v)
            self.send_header("Api-Version", self.server.api_version)
            for k, v in ((resp.headers if resp else None) or {}).items():
                self.send_header(k, v)
            if status != 204:
                self.send_header("Content-Length", "0")
            self.end_headers()
        elif isinstance(resp, JSONResponse):
            self._send_json(resp.status, resp.body)
        elif isinstance(resp, TextResponse):
            data = resp.body.encode()
            self._send_headers(resp.status, resp.content_type, len(data))
            if self.command != "HEAD":
                self.wfile.write(data)
        elif isinstance(resp, SizedResponse):
            self._send_headers(200, resp.content_type, resp.size)
            resp.writer(self.wfile)
        elif isinstance(resp, StreamResponse):
            try:  # close() even if the client is gone before the headers went out
                self._send_headers(resp.status, resp.content_type, None, resp.headers)
                for chunk in resp.chunks:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            finally:
                close = getattr(resp.chunks, "close", None)
                if close:
                    close()
        elif isinstance(resp, HijackResponse):
            self._hijack(resp)
        else:
            self._send_json(200, resp)

    def _hijack(self, resp: HijackResponse) -> None:
        upgrade = "upgrade" in (self.headers.get("Connection") or "").lower()
        lines = [("HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK"),
                 f"Content-Type: {resp.content_type}", f"Api-Version: {self.server.api_version}"]
        if upgrade:
            lines += ["Connection: Upgrade", "Upgrade: tcp"]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.wfile.flush()
        self.close_connection = True
        try:
            resp.run(self.connection, self.rfile)
        except OSError:
            pass


def client_gone(sock: socket.socket | None) -> bool:
    """True when the peer has closed its end (used by long-lived streams like /events)."""
    if sock is None:
        return False
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def json_lines(items: Iterator[Any]) -> Iterator[bytes]:
    for obj in items:
        yield json.dumps(obj).encode() + b"\r\n"


def bind_unix(path: str) -> None:
    """Remove a stale socket file (nobody answering) before binding."""
    if os.path.exists(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise HoistError(f"another daemon is already listening on {path}")
        finally:
            s.close()
