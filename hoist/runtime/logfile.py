"""Docker's json-file log format: one JSON object per line, with size-based rotation.

Each line is ``{"log": "<text>", "stream": "stdout"|"stderr", "time": "<RFC3339Nano>"}``.
Rotated files are ``<path>.1`` (newest) … ``<path>.<max_files-1>`` (oldest), as Docker
names them. The reader follows across rotation by noticing that the path names a new
inode, draining the old file first so no line is lost.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

MAX_LINE = 16 * 1024  # Docker splits longer lines into partial entries of this size


def format_time(ns: int, fixed: bool = False) -> str:
    """RFC3339Nano in UTC; Go trims trailing zeros of the fraction unless ``fixed``."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    f = f"{frac:09d}"
    if not fixed:
        f = f.rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def parse_time(s: str) -> int:
    """RFC3339(Nano) → unix nanoseconds (accepts Z or ±hh:mm offsets)."""
    import calendar
    s = s.strip()
    off = 0
    if s.endswith("Z"):
        s = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        sign = 1 if s[-6] == "+" else -1
        off = sign * (int(s[-5:-3]) * 3600 + int(s[-2:]) * 60)
        s = s[:-6]
    main, _, frac = s.partition(".")
    t = time.strptime(main, "%Y-%m-%dT%H:%M:%S")
    return (calendar.timegm(t) - off) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


@dataclass(frozen=True)
class LogEntry:
    stream: str      # "stdout" | "stderr"
    data: bytes      # the line, including its trailing newline when it had one
    time_ns: int

    @property
    def timestamp(self) -> str:
        """As ``docker logs --timestamps`` prints it (9 fraction digits)."""
        return format_time(self.time_ns, fixed=True)


class LogWriter:
    """Appends entries; rotates when the next entry would pass ``max_size``."""

    def __init__(self, path: str, max_size: int = 10 * 1024 * 1024, max_files: int = 1) -> None:
        self.path = path
        self.max_size = max_size if max_size > 0 else 0  # 0: no rotation
        self.max_files = max(1, max_files)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes, time_ns: int | None = None) -> None:
        """Split ``data`` into lines (keeping an unfinished tail for the next call)."""
        buf = self._partial.pop(stream, b"") + data
        t = time_ns if time_ns is not None else time.time_ns()
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            while nl + 1 - start > MAX_LINE:
                self._entry(stream, buf[start:start + MAX_LINE], t)
                start += MAX_LINE
            self._entry(stream, buf[start:nl + 1], t)
            start = nl + 1
        rest = buf[start:]
        while len(rest) >= MAX_LINE:
            self._entry(stream, rest[:MAX_LINE], t)
            rest = rest[MAX_LINE:]
        if rest:
            self._partial[stream] = rest

    def flush(self) -> None:
        """Write unfinished lines (at EOF of a stream)."""
        for stream, rest in list(self._partial.items()):
            self._entry(stream, rest, time.time_ns())
        self._partial.clear()

    def _entry(self, stream: str, line: bytes, t: int) -> None:
        rec = json.dumps({"log": line.decode("utf-8", "replace"), "stream": stream,
                          "time": format_time(t)}, ensure_ascii=False, separators=(",", ":"))
        out = rec.encode() + b"\n"
        if self.max_size and self._size and self._size + len(out) > self.max_size:
            self._rotate()
        os.write(self._fd, out)
        self._size += len(out)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files > 1:
            for i in range(self.max_files - 1, 1, -1):
                try:
                    os.replace(f"{self.path}.{i - 1}", f"{self.path}.{i}")
                except FileNotFoundError:
                    pass
            os.replace(self.path, f"{self.path}.1")
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = 0

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def _decode(line: bytes) -> LogEntry | None:
    try:
        rec = json.loads(line)
        return LogEntry(rec.get("stream", "stdout"), rec.get("log", "").encode(),
                        parse_time(rec["time"]))
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign line: skip it rather than fail the whole read


def _files(path: str) -> list[str]:
    """Oldest first: path.N … path.1, path."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def _inodes(names: list[str]) -> list[int]:
    out = []
    for n in names:
        try:
            out.append(os.stat(n).st_ino)
        except FileNotFoundError:
            out.append(-1)
    return out


def _successor(path: str, ino: int) -> int | None:
    """Open the file that follows the (rotated) file with inode ``ino``.

    Names shift under us while the writer rotates, so the choice is checked after the
    open against a second look at the names, and made again if they moved."""
    for _ in range(50):
        names = _files(path)  # oldest first
        inos = _inodes(names)
        if ino in inos:
            i = inos.index(ino) + 1
            if i >= len(names):
                return None
        elif names:  # rotated out of the kept files already: the oldest one left
            i = 0
        else:
            return None
        try:
            fd = os.open(names[i], os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        got = os.fstat(fd).st_ino
        after = _inodes(_files(path))
        expected = after[after.index(ino) + 1] if ino in after and after.index(ino) + 1 < len(after) \
            else (after[0] if after and ino not in after else -2)
        if got == expected:
            return fd
        os.close(fd)
    return None


def read_logs(path: str, *, tail: int | None = None, since_ns: int | None = None,
              until_ns: int | None = None, follow: bool = False,
              stop: Callable[[], bool] | None = None,
              poll_interval: float = 0.05) -> Iterator[LogEntry]:
    """Entries of ``path`` and its rotated files, oldest first.

    ``tail``: only the last N entries (of those passing since/until); ``follow``: keep
    yielding new entries until ``stop()`` returns true (then drain what is left).
    """
    def keep(e: LogEntry) -> bool:
        return (since_ns is None or e.time_ns > since_ns) and (until_ns is None or e.time_ns <= until_ns)

    files = _files(path)
    # Open the current file first so that lines written (or a rotation) after we list
    # the old ones are still seen through this fd when following.
    cur_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if os.path.exists(path) else None
    try:
        old: list[LogEntry] = []
        for f in files[:-1] if cur_fd is not None else files:
            with open(f, "rb") as fh:
                for line in fh:
                    e = _decode(line)
                    if e and keep(e):
                        old.append(e)
        pending = b""
        if cur_fd is not None:
            while True:
                chunk = os.read(cur_fd, 1 << 20)
                if not chunk:
                    break
                pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                e = _decode(line)
                if e and keep(e):
                    old.append(e)
        if tail is not None and tail >= 0:
            old = old[len(old) - tail:] if tail else []
        yield from old
        del old
        if not follow:
            return
        draining = False
        after_ino: int | None = None
        while True:
            if cur_fd is None:
                if after_ino is not None:
                    # The successor of the file we finished was not there yet: look for
                    # it again (not simply `path`: that may be several rotations on).
                    cur_fd = _successor(path, after_ino)
                    if cur_fd is not None:
                        after_ino = None
                elif os.path.exists(path):
                    cur_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                if cur_fd is None:
                    if stop is not None and stop():
                        return
                    time.sleep(poll_interval)
                    continue
            chunk = os.read(cur_fd, 1 << 20)
            if not chunk:
                try:
                    rotated = os.stat(path).st_ino != os.fstat(cur_fd).st_ino
                except FileNotFoundError:
                    rotated = True
                if rotated:
                    # The writer may have appended between our empty read and its
                    # rotation; the file is final now, so read it to its end first.
                    chunk = os.read(cur_fd, 1 << 20)
            if chunk:
                pending += chunk
                lines = pending.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    e = _decode(line)
                    if e and keep(e):
                        if until_ns is not None and e.time_ns > until_ns:
                            return
                        yield e
                continue
            if rotated:
                # Then the file written right after this one: it may already be path.N
                # itself if rotation happened repeatedly.
                ino = os.fstat(cur_fd).st_ino
                os.close(cur_fd)
                cur_fd = _successor(path, ino)
                if cur_fd is None:
                    after_ino = ino
                pending = b""
                continue
            if stop is not None and stop():
                # The writer is done, but it may have written (or rotated) after our last
                # look: one more full pass -- read, rotation check -- before ending.
                if draining:
                    return
                draining = True
                continue
            time.sleep(poll_interval)
    finally:
        if cur_fd is not None:
            os.close(cur_fd)
