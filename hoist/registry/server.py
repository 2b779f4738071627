"""A small threaded HTTP/1.1 server over TCP (optionally TLS) for the registry.

Why its own server: the registry's hot paths are blob GETs (served with sendfile) and
small manifest GETs on keep-alive connections, so request parsing is kept to a few
string splits, and request bodies are streamed (Content-Length or chunked) straight
into the content store rather than buffered.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.parse
from typing import BinaryIO, Callable, Iterator

from ..errors import HoistError
from .errors import APIError

MAX_LINE = 65536
MAX_HEADERS = 200
IDLE_TIMEOUT = 300.0
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
           307: "Temporary Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 416: "Range Not Satisfiable", 500: "Internal Server Error"}


class BadRequest(Exception):
    pass


class Request:
    __slots__ = ("method", "target", "path", "query", "headers", "version", "_rfile", "_remaining",
                 "_chunked", "_done", "peer", "conn", "user")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 rfile: BinaryIO, peer: str, conn: "Connection") -> None:
        self.method = method
        self.target = target
        path, _, qs = target.partition("?")
        self.path = urllib.parse.unquote(path)
        self.query = urllib.parse.parse_qs(qs, keep_blank_values=True) if qs else {}
        self.headers = headers
        self.version = version
        self._rfile = rfile
        self.peer = peer
        self.conn = conn
        self.user = ""  # set once authenticated, for the access log
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        if self._chunked:
            self._remaining = 0
        else:
            cl = headers.get("content-length", "0").strip() or "0"
            if not cl.isdigit():
                raise BadRequest("invalid Content-Length")
            self._remaining = int(cl)
        self._done = not self._chunked and self._remaining == 0

    def q(self, key: str) -> str | None:
        v = self.query.get(key)
        return v[0] if v else None

    @property
    def has_body(self) -> bool:
        return self._chunked or self._remaining > 0 or not self._done

    def _continue(self) -> None:
        if self.headers.get("expect", "").lower() == "100-continue":
            self.headers.pop("expect")
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The request body, streamed."""
        if self._done:
            return
        self._continue()
        rfile = self._rfile
        if not self._chunked:
            while self._remaining > 0:
                data = rfile.read(min(size, self._remaining))
                if not data:
                    raise BadRequest("request body ended early")
                self._remaining -= len(data)
                yield data
            self._done = True
            return
        while True:
            line = rfile.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunk header")
            try:
                n = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if n == 0:
                while True:  # trailers
                    t = rfile.readline(MAX_LINE)
                    if t in (b"\r\n", b"\n", b""):
                        break
                self._done = True
                return
            while n > 0:
                data = rfile.read(min(size, n))
                if not data:
                    raise BadRequest("request body ended early")
                n -= len(data)
                yield data
            rfile.readline(MAX_LINE)

    def body(self, limit: int) -> bytes:
        """The whole body, refusing more than ``limit`` bytes (413 SIZE_INVALID)."""
        if not self._chunked and self._remaining > limit:
            raise APIError(413, "SIZE_INVALID", f"request body larger than {limit} bytes")
        out = bytearray()
        for c in self.chunks():
            out += c
            if len(out) > limit:
                raise APIError(413, "SIZE_INVALID", f"request body larger than {limit} bytes")
        return bytes(out)

    def drain(self, limit: int) -> bool:
        """Read and drop what is left of the body (so the client sees our answer rather
        than a reset) when it is at most ``limit`` bytes; False if it was not drained."""
        if self._chunked or self._remaining > limit or "expect" in self.headers:
            # (a client still waiting for "100 Continue" has not sent the body at all)
            return False
        try:
            for _ in self.chunks():
                pass
        except (BadRequest, OSError):
            return False
        return True

    @property
    def body_consumed(self) -> bool:
        return self._done


class Response:
    __slots__ = ("status", "headers", "body", "file", "offset", "count", "opened")

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
                 file: str | None = None, offset: int = 0, count: int = 0) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.file = file
        self.offset = offset
        self.count = count
        self.opened: BinaryIO | None = None


Handler = Callable[[Request], Response]


class AccessLog:
    def __init__(self, path: str) -> None:
        self._f = open(path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def log(self, peer: str, req: Request | None, status: int, size: int, user: str = "") -> None:
        line = (f'{peer} - {user or "-"} [{time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())}] '
                f'"{req.method if req else "-"} {req.target if req else "-"} {req.version if req else "-"}" '
                f'{status} {size} "{req.headers.get("user-agent", "-") if req else "-"}"\n')
        with self._lock:
            self._f.write(line)

    def close(self) -> None:
        self._f.close()


class Connection:
    def __init__(self, sock: socket.socket, peer: str, handler: Handler, log: AccessLog | None) -> None:
        self.sock = sock
        self.peer = peer
        self.handler = handler
        self.log = log
        self.rfile = sock.makefile("rb", buffering=65536)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def serve(self) -> None:
        try:
            while self._one():
                pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass

    def _read_head(self) -> tuple[str, str, str, dict[str, str]] | None:
        line = self.rfile.readline(MAX_LINE)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(MAX_LINE)
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("malformed request line")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            h = self.rfile.readline(MAX_LINE)
            if h in (b"\r\n", b"\n"):
                return parts[0], parts[1], parts[2], headers
            if not h.endswith(b"\n"):
                raise BadRequest("header line too long or truncated")
            k, sep, v = h.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest("malformed header")
            k = k.strip().lower()
            v = v.strip()
            headers[k] = f"{headers[k]}, {v}" if k in headers and k != "content-length" else v
        raise BadRequest("too many headers")

    def _one(self) -> bool:
        try:
            head = self._read_head()
        except BadRequest as e:
            self._send(None, Response(400, {"Content-Type": "text/plain"}, str(e).encode()), close=True)
            return False
        if head is None:
            return False
        method, target, version, headers = head
        conn_hdr = headers.get("connection", "").lower()
        keep = ("close" not in conn_hdr) if version == "HTTP/1.1" else ("keep-alive" in conn_hdr)
        try:
            req = Request(method, target, version, headers, self.rfile, self.peer, self)
        except BadRequest as e:
            self._send(None, Response(400, {"Content-Type": "text/plain"}, str(e).encode()), close=True)
            return False
        try:
            resp = self.handler(req)
        except APIError as e:
            resp = Response(e.status, {"Content-Type": "application/json", **e.headers}, e.body())
        except BadRequest as e:
            resp = Response(400, {"Content-Type": "text/plain"}, str(e).encode())
            keep = False
        except HoistError as e:
            resp = Response(e.status, {"Content-Type": "application/json"},
                            APIError(e.status, "UNKNOWN", e.message).body())
        except (OSError, ssl.SSLError):
            raise
        except Exception as e:  # a bug must not kill the connection thread silently
            import traceback

            traceback.print_exc()
            resp = Response(500, {"Content-Type": "application/json"},
                            APIError(500, "UNKNOWN", f"internal error: {e}").body())
        if not req.body_consumed and not req.drain(16 << 20):
            # An unread body too large to skip: the connection cannot be reused safely.
            keep = False
        self._send(req, resp, close=not keep)
        return keep

    def _send(self, req: Request | None, resp: Response, close: bool) -> None:
        head_only = req is not None and req.method == "HEAD"
        if resp.file is not None and not head_only:
            try:
                resp.opened = open(resp.file, "rb")
            except FileNotFoundError:
                # Deleted (garbage-collected) between the lookup and now: answer as if
                # the lookup had missed it, rather than dropping the connection.
                err = APIError(404, "BLOB_UNKNOWN", "blob unknown to registry")
                resp = Response(404, {"Content-Type": "application/json"}, err.body())
        length = resp.count if resp.file is not None else len(resp.body)
        lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}"]
        h = resp.headers
        if "Content-Length" not in h:
            lines.append(f"Content-Length: {length}")
        lines.extend(f"{k}: {v}" for k, v in h.items())
        lines.append("Docker-Distribution-API-Version: registry/2.0")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sent = 0
        if head_only or (resp.file is None and not resp.body):
            self.sock.sendall(head)
        elif resp.file is None:
            self.sock.sendall(head + resp.body)
            sent = len(resp.body)
        else:
            f = resp.opened
            try:
                self.sock.sendall(head)
                sent = self.sock.sendfile(f, resp.offset, resp.count) if resp.count else 0
            finally:
                f.close()
        if self.log is not None:
            self.log.log(self.peer, req, resp.status, sent, req.user if req is not None else "")


class Server:
    """Accepts on one TCP socket; one thread per connection (keep-alive friendly)."""

    def __init__(self, host: str, port: int, handler: Handler, tls: ssl.SSLContext | None = None,
                 log: AccessLog | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.log = log
        self.sock = socket.create_server((host, port), backlog=512, reuse_port=False)
        self.address = self.sock.getsockname()[:2]
        self._closing = False
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        while not self._closing:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                if self._closing:
                    return
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # An idle keep-alive connection (or a stalled upload) must not pin a thread forever.
            conn.settimeout(IDLE_TIMEOUT)
            threading.Thread(target=self._serve_conn, args=(conn, addr[0]), daemon=True).start()

    def _serve_conn(self, conn: socket.socket, peer: str) -> None:
        if self.tls is not None:
            try:
                conn.settimeout(30)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(IDLE_TIMEOUT)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        Connection(conn, peer, self.handler, self.log).serve()

    def start(self) -> "Server":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread is not None:
            self._thread.join(5)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
