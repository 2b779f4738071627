"""Stream plumbing for container commands: hijacked connections and Docker's
multiplexed stdout/stderr framing.

A hijacked request (attach, exec start) turns the HTTP connection into a raw
bidirectional byte stream after the response head. When the container has no tty the
daemon frames its output: one byte stream type (0 stdin, 1 stdout, 2 stderr), three
zero bytes, a big-endian uint32 length, then the payload.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any, Callable

_CHUNK = 32 * 1024


class Hijacked:
    """The raw socket of an upgraded connection plus what was read past the head."""

    def __init__(self, sock: Any, leftover: bytes) -> None:
        self.sock = sock
        self._pending = leftover

    def recv(self, n: int = _CHUNK) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            return self.sock.recv(n)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(1)  # SHUT_WR: the container sees EOF on stdin
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def hijack(client: Any, path: str, params: Any = None, body: Any = None) -> Hijacked:
    """POST ``path`` asking for an upgrade to a raw stream (docker's ``Upgrade: tcp``)."""
    from ..client.http import error_from_response

    url = client._url(path, params)
    conn = client._connect()
    headers = {"User-Agent": "hoist-cli", "Connection": "Upgrade", "Upgrade": "tcp"}
    if body is not None:
        import json

        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.send_request("POST", url, headers, body)
    resp = conn.read_response("POST")
    if resp.status >= 400:
        data = resp.read()
        conn.close()
        raise error_from_response(resp.status, resp.reason,
                                  resp.getheader("Content-Type") or "", data, url)
    leftover = bytes(conn._buf)
    conn._buf.clear()
    return Hijacked(conn.sock, leftover)


class Demuxer:
    """Incremental decoder of the 8-byte-header multiplexed stream."""

    def __init__(self, write_out: Callable[[bytes], None], write_err: Callable[[bytes], None]) -> None:
        self._buf = bytearray()
        self._out = write_out
        self._err = write_err

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                return
            kind = buf[0]
            payload = bytes(buf[8:8 + size])
            del buf[:8 + size]
            (self._err if kind == 2 else self._out)(payload)


def writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    return write


def copy_output(src: Any, tty: bool, out_fd: int = 1, err_fd: int = 2) -> None:
    """Copy a hijacked or response stream to the local stdout/stderr until EOF."""
    w_out, w_err = writer(out_fd), writer(err_fd)
    dem = None if tty else Demuxer(w_out, w_err)
    read = src.recv if hasattr(src, "recv") else src.read1
    while True:
        data = read(_CHUNK)
        if not data:
            return
        if dem is None:
            w_out(data)
        else:
            dem.feed(data)


def parse_detach_keys(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` → b"\\x10\\x11" (docker's term.ToBytes)."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if len(key) > 1 and key.startswith("ctrl-"):
            ch = key[5:].lower()
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if len(ch) == 1 and "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in codes:
                out.append(codes[ch])
            else:
                raise ValueError(f"Unknown character: '{key}'")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


def pump_stdin(conn: Hijacked, in_fd: int, detach: bytes, stop: Any) -> bool:
    """Forward local stdin to the container until EOF (then half-close) or the detach
    key sequence (returns True)."""
    import select

    matched = 0
    while not stop.is_set():
        r, _, _ = select.select([in_fd], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(in_fd, _CHUNK)
        except OSError:
            data = b""
        if not data:
            conn.close_write()
            return False
        if detach:
            out = bytearray()
            for b in data:
                if b == detach[matched]:
                    matched += 1
                    if matched == len(detach):
                        return True
                    continue
                if matched:
                    out += detach[:matched]
                    matched = 0
                out.append(b)
            data = bytes(out)
        if data:
            try:
                conn.send(data)
            except OSError:
                return False
    return False
