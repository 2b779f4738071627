"""Attach plumbing for the container commands: hijacked connections, Docker's
multiplexed stream, raw terminals and detach keys.

The Engine API answers attach and exec-start by turning the HTTP connection into a
bidirectional byte pipe (``101 UPGRADED``). Without a TTY the daemon frames output as
8-byte headers (stream type, three zero bytes, big-endian length) followed by the
payload; with a TTY it sends raw bytes. Everything here is stdlib C modules only
(select, termios) so that `run` pays nothing for the plumbing it does not use.
"""
from __future__ import annotations

import os
import select
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..errors import HoistError

STDIN, STDOUT, STDERR = 0, 1, 2
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


class Detached(Exception):
    """The user typed the detach key sequence."""


def hijack(client: Any, path: str, params: Any = None, body: Any = None, *,
           tty: bool = False) -> tuple[Any, bytes, bool]:
    """POST ``path`` asking for a protocol upgrade; returns ``(socket, already_read,
    multiplexed)``. The caller owns the socket. Framing follows the container's (or
    exec's) TTY setting, as the docker CLI decides it: daemons before API 1.42 label
    every stream raw."""
    from .. import fastjson

    url = client._url(path, params)
    conn = client._connect()
    headers = {"User-Agent": "hoist-cli", "Connection": "Upgrade", "Upgrade": "tcp"}
    payload = None
    if body is not None:
        payload = fastjson.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    else:
        payload = b""
    try:
        conn.send_request("POST", url, headers, payload)
        resp = conn.read_response("POST")
    except OSError as e:
        conn.close()
        raise HoistError(f"error during attach: {e}") from None
    if resp.status not in (101, 200):
        data = resp.read()
        conn.close()
        from ..client.http import error_from_response

        raise error_from_response(resp.status, resp.reason, resp.getheader("content-type") or "",
                                  data, url)
    multiplexed = not tty
    leftover = bytes(conn._buf)
    conn._buf.clear()
    return conn.sock, leftover, multiplexed


def parse_detach_keys(spec: str) -> bytes:
    """docker's detach-keys syntax: comma separated ``ctrl-<x>`` or single characters."""
    from ..detachkeys import parse_detach_keys as parse
    return parse(spec)


class Demux:
    """Incremental parser of the multiplexed stream; writes payloads to fds 1/2."""

    def __init__(self, out_fd: int, err_fd: int) -> None:
        self.buf = bytearray()
        self.fds = {0: out_fd, 1: out_fd, 2: err_fd}

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            size = int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                return
            kind = self.buf[0]
            payload = bytes(self.buf[8:8 + size])
            del self.buf[:8 + size]
            _write_all(self.fds.get(kind, self.fds[1]), payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pump(sock: Any, leftover: bytes, multiplexed: bool, *, stdin_fd: int | None,
         out_fd: int = 1, err_fd: int = 2, detach_keys: bytes | None = None,
         close_stdin: bool = True) -> None:
    """Copy the container's output to out/err and, if ``stdin_fd`` is given, our stdin
    to the container until the daemon closes the stream. Raises Detached when the
    detach sequence is typed (only checked when ``detach_keys`` is given: a TTY)."""
    demux = Demux(out_fd, err_fd) if multiplexed else None

    def emit(data: bytes) -> None:
        if demux is not None:
            demux.feed(data)
        else:
            _write_all(out_fd, data)

    if leftover:
        emit(leftover)
    fds = [sock.fileno()]
    if stdin_fd is not None:
        fds.append(stdin_fd)
    matched = 0
    pending = b""
    while True:
        try:
            ready, _, _ = select.select(fds, [], [])
        except InterruptedError:
            continue
        if sock.fileno() in ready:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return
            emit(data)
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 65536)
            if not data:
                fds.remove(stdin_fd)
                stdin_fd = None
                if close_stdin:
                    try:
                        import socket as _s

                        sock.shutdown(_s.SHUT_WR)
                    except OSError:
                        pass
                continue
            if detach_keys:
                # Hold back a partial detach sequence; send it on if it does not complete.
                out = bytearray()
                for b in data:
                    if b == detach_keys[matched]:
                        matched += 1
                        pending += bytes([b])
                        if matched == len(detach_keys):
                            raise Detached()
                        continue
                    if pending:
                        out += pending
                        pending, matched = b"", 0
                    out.append(b)
                data = bytes(out)
            if data:
                try:
                    sock.sendall(data)
                except OSError:
                    fds.remove(stdin_fd)
                    stdin_fd = None


class RawTerminal:
    """Puts the local terminal in raw mode for -t and restores it on exit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: Any = None

    def __enter__(self) -> "RawTerminal":
        import termios
        import tty

        try:
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        except termios.error:
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns
