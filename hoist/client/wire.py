"""HTTP/1.1 on a plain socket, just what an Engine API client needs.

Why not :mod:`http.client`: importing it pulls in ``email.parser`` and ``ssl``, about
30 ms before the first byte is sent, which is more than the whole round trip of
``hoist images``. The Engine API needs little of HTTP: a request line, a few headers,
bodies of known length or chunked, and responses framed the same two ways (or by close).
"""
from __future__ import annotations

import _socket  # socket.py would bring enum and selectors: milliseconds per CLI run
import os
import stat
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any, Iterable, Iterator

_CHUNK = 1 << 20
_MAX_HEADER = 64 * 1024


class ProtocolError(OSError):
    pass


class Connection:
    def __init__(self, sock: _socket.socket, host_header: str) -> None:
        self.sock = sock
        self.host_header = host_header
        self._buf = bytearray()
        self.reusable = True

    @staticmethod
    def open_unix(path: str, timeout: float | None = None) -> "Connection":
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(path)
        except BaseException:
            s.close()
            raise
        # docker's client names non-TCP transports with this placeholder host.
        return Connection(s, "api.moby.localhost")

    @staticmethod
    def open_tcp(host: str, port: int, timeout: float | None = None) -> "Connection":
        import socket

        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(s, f"{host}:{port}")

    def close(self) -> None:
        self.reusable = False
        try:
            self.sock.close()
        except OSError:
            pass

    # ---------------------------------------------------------------- sending

    def send_request(self, method: str, target: str, headers: dict[str, str], body: Any = None) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        size = _known_size(body)
        chunked = body is not None and size is None
        framed = False
        for k, v in headers.items():
            framed = framed or k.lower() in ("content-length", "transfer-encoding")
            lines.append(f"{k}: {v}")
        if framed:
            pass
        elif chunked:
            lines.append("Transfer-Encoding: chunked")
        elif body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {size or 0}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.sock.sendall(head + bytes(body))
            return
        self.sock.sendall(head)
        if body is None:
            return
        if size is not None:
            _send_file(self.sock, body, size)
        else:
            for chunk in _iter_body(body):
                if chunk:
                    self.sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            self.sock.sendall(b"0\r\n\r\n")

    # ---------------------------------------------------------------- receiving

    def _fill(self) -> bool:
        data = self.sock.recv(_CHUNK)
        if not data:
            return False
        self._buf += data
        return True

    def _readline(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return line
            if len(self._buf) > _MAX_HEADER:
                raise ProtocolError("response header too long")
            if not self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    def read_response(self, method: str) -> "Response":
        while True:
            status_line = self._readline()
            if not status_line:
                raise ConnectionResetError("the daemon closed the connection")
            parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ProtocolError(f"bad status line {status_line[:80]!r}")
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            total = 0
            while True:
                line = self._readline()
                total += len(line)
                if total > _MAX_HEADER:
                    raise ProtocolError("response headers too long")
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if status == 100:
                continue
            return Response(self, method, status, reason, headers, parts[0])

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes: buffered first, then one recv."""
        if not self._buf and not self._fill():
            return b""
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _take_into(self, view: memoryview) -> int:
        if self._buf:
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            del self._buf[:n]
            return n
        return self.sock.recv_into(view)


class Response:
    def __init__(self, conn: Connection, method: str, status: int, reason: str,
                 headers: dict[str, str], version: str) -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        self._left: int | None = 0 if no_body else (int(length) if length is not None and not self._chunked else None)
        self._chunk_left = 0
        self._done = no_body or self._left == 0
        if not self._chunked and self._left is None:
            conn.reusable = False  # framed by close
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            conn.reusable = False

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def done(self) -> bool:
        return self._done

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._done or not len(view):
            return 0
        if self._chunked:
            if self._chunk_left == 0:
                size_line = self.conn._readline()
                if not size_line:
                    raise ProtocolError("truncated chunked response")
                self._chunk_left = int(size_line.split(b";")[0].strip() or b"0", 16)
                if self._chunk_left == 0:
                    while self.conn._readline() not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    return 0
            n = self.conn._take_into(view[:self._chunk_left])
            if not n:
                raise ProtocolError("truncated chunked response")
            self._chunk_left -= n
            if self._chunk_left == 0:
                self.conn._readline()
            return n
        want = len(view) if self._left is None else min(len(view), self._left)
        n = self.conn._take_into(view[:want])
        if not n:
            if self._left:
                raise ProtocolError("truncated response body")
            self._done = True
            return 0
        if self._left is not None:
            self._left -= n
            if self._left == 0:
                self._done = True
        return n

    def read1(self, n: int = _CHUNK) -> bytes:
        # A buffer no bigger than what can come: zeroing 1 MiB for a 300-byte JSON
        # answer was half a millisecond of every request.
        if self._left is not None:
            n = min(n, self._left)
        elif self._chunked and self._chunk_left:
            n = min(n, self._chunk_left)
        else:
            n = min(n, 1 << 16)
        buf = bytearray(n)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def read(self, n: int | None = None) -> bytes:
        if n is not None:
            out = bytearray()
            while len(out) < n:
                chunk = self.read1(n - len(out))
                if not chunk:
                    break
                out += chunk
            return bytes(out)
        parts = []
        while True:
            chunk = self.read1(_CHUNK)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.read1(_CHUNK)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        if not self._done:
            self.conn.close()


def _known_size(body: Any) -> int | None:
    if body is None:
        return 0
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    fileno = getattr(body, "fileno", None)
    if fileno is not None:
        try:
            st = os.fstat(fileno())
        except (OSError, ValueError):
            return None
        if stat.S_ISREG(st.st_mode):
            try:
                return st.st_size - body.tell()
            except (OSError, ValueError):
                return st.st_size
    return None


def _send_file(sock: _socket.socket, f: Any, size: int) -> None:
    offset = f.tell()
    end = offset + size
    try:
        while offset < end:
            sent = os.sendfile(sock.fileno(), f.fileno(), offset, min(end - offset, 1 << 30))
            if sent == 0:
                raise ProtocolError("the file being sent shrank while it was read")
            offset += sent
    except OSError as e:
        if isinstance(e, (BrokenPipeError, ConnectionResetError, ProtocolError)):
            raise
        f.seek(offset)  # sendfile unsupported for this pair: copy what is left
        while offset < end:
            data = f.read(min(_CHUNK, end - offset))
            if not data:
                raise ProtocolError("the file being sent shrank while it was read") from None
            sock.sendall(data)
            offset += len(data)
    f.seek(end)


def _iter_body(body: Any) -> Iterable[bytes]:
    read = getattr(body, "read1", None) or getattr(body, "read", None)
    if read is None:
        yield from body
        return
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            return
        yield chunk
