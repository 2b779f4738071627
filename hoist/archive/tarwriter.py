"""Plan-then-stream tar writer for image archives.

The entries (headers plus where their bytes come from) are planned first, so the exact
archive size is known before a byte is sent: the API can answer with Content-Length and
blob bytes go from the store to the socket with sendfile, never through Python buffers.
"""
from __future__ import annotations

import io
import os
import tarfile
import time
from dataclasses import dataclass
from typing import BinaryIO

_BLOCK = 512


@dataclass(frozen=True, slots=True)
class _Entry:
    header: bytes
    data: bytes | None
    path: str | None
    size: int


class TarPlan:
    def __init__(self, mtime: float | None = None) -> None:
        self._entries: list[_Entry] = []
        self._names: set[str] = set()
        self._mtime = int(mtime if mtime is not None else time.time())

    def _header(self, name: str, size: int, type_: bytes = tarfile.REGTYPE, mode: int = 0o644,
                linkname: str = "") -> bytes:
        ti = tarfile.TarInfo(name)
        ti.size = size
        ti.type = type_
        ti.mode = mode
        ti.mtime = self._mtime
        ti.linkname = linkname
        return ti.tobuf(format=tarfile.PAX_FORMAT)

    def has(self, name: str) -> bool:
        return name in self._names

    def add_dir(self, name: str) -> None:
        if name in self._names:
            return
        self._names.add(name)
        self._entries.append(_Entry(self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE, 0o755),
                                    None, None, 0))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._names.add(name)
        self._entries.append(_Entry(self._header(name, len(data)), data, None, len(data)))

    def add_file(self, name: str, path: str) -> None:
        size = os.stat(path).st_size
        self._names.add(name)
        self._entries.append(_Entry(self._header(name, size), None, path, size))

    @property
    def size(self) -> int:
        total = 0
        for e in self._entries:
            total += len(e.header) + _padded(e.size)
        return total + 2 * _BLOCK * 5  # end-of-archive: Go and GNU tar write 10 blocks

    def write_to(self, out: BinaryIO) -> None:
        fd = _fileno(out)
        for e in self._entries:
            out.write(e.header)
            if e.data is not None:
                out.write(e.data)
            elif e.path is not None:
                _copy_file(e.path, e.size, out, fd)
            pad = _padded(e.size) - e.size
            if pad:
                out.write(b"\0" * pad)
        out.write(b"\0" * (2 * _BLOCK * 5))
        out.flush()


def _padded(n: int) -> int:
    return (n + _BLOCK - 1) // _BLOCK * _BLOCK


def _fileno(out: BinaryIO) -> int | None:
    try:
        return out.fileno()
    except (AttributeError, io.UnsupportedOperation, OSError):
        return None


def _copy_file(path: str, size: int, out: BinaryIO, fd: int | None) -> None:
    with open(path, "rb") as f:
        if fd is not None:
            out.flush()
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, f.fileno(), offset, size - offset)
                if sent == 0:
                    raise IOError(f"{path} shrank while being sent")
                offset += sent
            return
        remaining = size
        while remaining:
            chunk = f.read(min(1 << 20, remaining))
            if not chunk:
                raise IOError(f"{path} shrank while being sent")
            out.write(chunk)
            remaining -= len(chunk)
