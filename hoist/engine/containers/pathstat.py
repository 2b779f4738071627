"""Pure helpers for the container archive API: path cleaning with Docker's trailing
"/" and "/." rules, Go ``os.FileMode`` bits and the ``X-Docker-Container-Path-Stat``
header."""
from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import posixpath
import stat
from dataclasses import dataclass

__all__ = ["PathStat", "clean_path", "split_path", "go_base", "go_file_mode", "go_time",
           "encode_stat", "decode_stat"]

# Go's os.FileMode type bits (io/fs): what the Engine API puts in "mode".
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19


def clean_path(path: str) -> str:
    """The absolute container path Docker works with: lexically cleaned (so ``..``
    never climbs above "/"), keeping a trailing "/" or "/." because they change what
    is copied (a directory's contents rather than the directory)."""
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if go_base(path) == ".":
        cleaned = cleaned.rstrip("/") + "/."
    if path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def split_path(abs_path: str) -> tuple[str, str]:
    """(directory, base) like Go's filepath.Split: base is "" for a trailing "/"."""
    head, _, base = abs_path.rpartition("/")
    return head + "/", base


def go_base(abs_path: str) -> str:
    """Go's filepath.Base: "/" for the root, the last element otherwise."""
    if not abs_path:
        return "."
    stripped = abs_path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rpartition("/")[2]


def go_file_mode(st_mode: int) -> int:
    """An ``st_mode`` as Go's ``os.FileMode`` (permission bits plus type/flag bits)."""
    mode = st_mode & 0o777
    fmt = stat.S_IFMT(st_mode)
    if fmt == stat.S_IFDIR:
        mode |= MODE_DIR
    elif fmt == stat.S_IFLNK:
        mode |= MODE_SYMLINK
    elif fmt == stat.S_IFBLK:
        mode |= MODE_DEVICE
    elif fmt == stat.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif fmt == stat.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif fmt == stat.S_IFSOCK:
        mode |= MODE_SOCKET
    elif fmt != stat.S_IFREG:
        mode |= MODE_IRREGULAR
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def go_time(ns: int) -> str:
    """A time as Go's JSON encoding writes it (RFC 3339 with trimmed nanoseconds, the
    daemon's local offset, "Z" for UTC)."""
    secs, frac = divmod(ns, 1_000_000_000)
    local = _dt.datetime.fromtimestamp(secs, _dt.timezone.utc).astimezone()
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    offset = local.utcoffset() or _dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class PathStat:
    """types.ContainerPathStat."""

    name: str
    size: int
    mode: int          # Go os.FileMode
    mtime: str         # RFC 3339
    link_target: str = ""

    @classmethod
    def from_stat(cls, name: str, st: os.stat_result, link_target: str = "") -> "PathStat":
        return cls(name, st.st_size, go_file_mode(st.st_mode), go_time(st.st_mtime_ns),
                   link_target)

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}


def encode_stat(st: PathStat) -> str:
    """The value of ``X-Docker-Container-Path-Stat``: base64 (standard alphabet) of the
    JSON object, in Go's field order."""
    raw = json.dumps(st.to_json(), separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def decode_stat(value: str) -> PathStat:
    obj = json.loads(base64.b64decode(value))
    return PathStat(obj["name"], int(obj["size"]), int(obj["mode"]), obj["mtime"],
                    obj.get("linkTarget", ""))
