"""``docker diff``: what a container changed, read from its overlay upper directory.

The upper dir holds exactly what the container wrote: new and copied-up files, overlayfs
whiteouts (char devices 0/0) for deletions and ``trusted.overlay.opaque`` directories
that hide everything below them in the lower layers. Each upper entry is classified the
way dockerd's overlay driver does it: a whiteout is a deletion, a path that no lower
layer has is an addition, anything else a modification, except directories whose size,
mode and mtime match the lower one (they were only copied up on the way to a child).
The parent of an added or deleted path is reported as modified, as Docker does, and what
an opaque directory hides from the lowers (without the upper re-creating it) is deleted.

Both trees are walked through ``O_NOFOLLOW`` directory fds: a symlink in a layer is an
entry to compare, never a way into the host's file system.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from ...archive.create import is_opaque

__all__ = ["Change", "MODIFIED", "ADDED", "DELETED", "INIT_PATHS", "compute_changes"]

MODIFIED, ADDED, DELETED = 0, 1, 2

# Docker puts these in a per-container "init" layer below the container's own layer, so
# they never show up in its diff. hoist's runtime creates the mount points it needs in
# the upper dir instead; hiding the same paths keeps ``diff`` output identical.
INIT_PATHS = frozenset({"/dev/pts", "/dev/shm", "/proc", "/sys", "/.dockerenv",
                        "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/dev/console",
                        "/etc/mtab"})

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_AUFS_META = ".wh..wh."


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: int

    def to_api(self) -> dict[str, object]:
        return {"Path": self.path, "Kind": self.kind}


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _open_dir(name: str, dir_fd: int) -> int | None:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def _sorted(fd: int) -> list[str]:
    # Go's filepath.Walk visits names in byte order; so do we, so output order matches.
    return sorted(os.listdir(fd), key=lambda n: n.encode("utf-8", "surrogateescape"))


def _same_time(a: int, b: int) -> bool:
    # Docker's sameFsTime: equal, or equal seconds where one side lost its nanoseconds.
    if a == b:
        return True
    return a // 1_000_000_000 == b // 1_000_000_000 and (a % 1_000_000_000 == 0
                                                         or b % 1_000_000_000 == 0)


class _Lowers:
    """The lower layers' view of one directory level: an fd per layer (top first), None
    where the layer lacks the directory or a higher layer hides it."""

    def __init__(self, fds: list[int | None]) -> None:
        self.fds = fds

    def lookup(self, name: str) -> os.stat_result | None:
        for fd in self.fds:
            if fd is None:
                continue
            st = _lstat(name, fd)
            if st is None:
                continue
            return None if _is_whiteout(st) else st
        return None

    def child(self, name: str) -> "_Lowers":
        out: list[int | None] = []
        hidden = False
        for fd in self.fds:
            if fd is None or hidden:
                out.append(None)
                continue
            st = _lstat(name, fd)
            if st is None:
                out.append(None)
                continue
            if not stat.S_ISDIR(st.st_mode):
                hidden = True  # a file or whiteout here hides the name in deeper layers
                out.append(None)
                continue
            cfd = _open_dir(name, fd)
            out.append(cfd)
            if cfd is not None and is_opaque(cfd):
                hidden = True
        return _Lowers(out)

    def names(self) -> set[str]:
        """Names visible through the lowers at this level (whiteouts resolved)."""
        seen: dict[str, bool] = {}
        for fd in self.fds:
            if fd is None:
                continue
            for name in os.listdir(fd):
                if name in seen:
                    continue
                st = _lstat(name, fd)
                seen[name] = st is not None and not _is_whiteout(st)
        return {n for n, visible in seen.items() if visible}

    def close(self) -> None:
        for fd in self.fds:
            if fd is not None:
                os.close(fd)


def compute_changes(upper: str, lowers: Iterable[str], *,
                    ignore: frozenset[str] = INIT_PATHS) -> list[Change]:
    """The changes recorded in ``upper`` against ``lowers`` (top-most layer first), in
    Docker's order (a depth-first walk in name order). Paths in ``ignore`` (and what is
    below them) are skipped; a directory holding nothing but ignored paths is too."""
    up = os.open(upper, _DIR_FLAGS)
    low_fds: list[int | None] = []
    try:
        for path in lowers:
            low_fds.append(os.open(path, _DIR_FLAGS))
        return list(_walk(up, _Lowers(low_fds), ignore))
    finally:
        os.close(up)
        for fd in low_fds:
            if fd is not None:
                os.close(fd)


def _hidden(upper_fd: int, lowers: _Lowers, path: str) -> list[str]:
    """Paths the lowers have below ``path`` that the (opaque) upper dir lacks: deleted.
    A deleted directory is reported once, not with its contents."""
    out: list[str] = []
    # (upper fd or None when owned by the caller, lowers, path) - depth first, name order
    work: list[tuple[int, bool, _Lowers, str]] = [(upper_fd, False, lowers, path)]
    try:
        while work:
            ufd, owned, low, base = work.pop()
            try:
                below: list[tuple[int, bool, _Lowers, str]] = []
                for name in sorted(low.names(), key=lambda n: n.encode("utf-8", "surrogateescape")):
                    ust = _lstat(name, ufd)
                    if ust is None:
                        out.append(f"{base}/{name}")
                        continue
                    lst = low.lookup(name)
                    if (stat.S_ISDIR(ust.st_mode) and lst is not None
                            and stat.S_ISDIR(lst.st_mode)):
                        cfd = _open_dir(name, ufd)
                        if cfd is not None:
                            below.append((cfd, True, low.child(name), f"{base}/{name}"))
                work.extend(reversed(below))
            finally:
                if owned:
                    os.close(ufd)
                    low.close()
    finally:
        for ufd, owned, low, _ in work:
            if owned:
                os.close(ufd)
                low.close()
    return out


def _walk(root_fd: int, root_lowers: _Lowers, ignore: frozenset[str]) -> Iterator[Change]:
    changed_dirs: set[str] = set()
    hidden_reported: set[str] = set()
    ignore_parents = {os.path.dirname(p) for p in ignore}
    # (upper dir fd, its container path, remaining names, lowers of that dir, own fds?)
    stack: list[tuple[int, str, Iterator[str], _Lowers, bool]] = [
        (root_fd, "/", iter(_sorted(root_fd)), root_lowers, False)]
    try:
        while stack:
            fd, base, names, lowers, owned = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if owned:
                    os.close(fd)
                    lowers.close()
                continue
            path = base + name
            if path in ignore or (base == "/" and name.startswith(_AUFS_META)):
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd) if is_dir else None
            opaque = child_fd is not None and is_opaque(child_fd)
            record = True
            if _is_whiteout(st):
                kind = DELETED
            else:
                lower = lowers.lookup(name)
                if lower is None:
                    kind = ADDED
                else:
                    kind = MODIFIED
                    if opaque and stat.S_ISDIR(lower.st_mode):
                        # Re-created over the lowers' directory (rm -rf x; mkdir x):
                        # dockerd reports what changed inside, and the directory only
                        # as the parent of those changes.
                        record = False
                    elif (is_dir and stat.S_ISDIR(lower.st_mode)
                            and st.st_size == lower.st_size and st.st_mode == lower.st_mode
                            and _same_time(st.st_mtime_ns, lower.st_mtime_ns)):
                        record = False  # only copied up on the way to a child
            if record and is_dir and path in ignore_parents and child_fd is not None:
                # e.g. /etc holding only the hosts/hostname/resolv.conf mount points
                if all(f"{path}/{n}" in ignore for n in os.listdir(child_fd)):
                    record = False
            if record and not (kind == MODIFIED and path in changed_dirs):
                # (already reported as the parent of a deletion an opaque dir implies)
                if is_dir:
                    changed_dirs.add(path)
                if kind in (ADDED, DELETED):
                    parent = base.rstrip("/") or "/"
                    if parent != "/" and parent not in changed_dirs:
                        changed_dirs.add(parent)
                        yield Change(parent, MODIFIED)
                yield Change(path, kind)
            if child_fd is None:
                continue
            # Like dockerd, entries below an opaque directory are still compared with
            # the lowers' entries of the same path (a re-created /var/spool is
            # "changed", not "added"); what the opaque dir hides and the upper does not
            # have again, at any depth, is reported deleted.
            child_lowers = lowers.child(name)
            if opaque:
                for gone in _hidden(child_fd, child_lowers, path):
                    if gone in hidden_reported:
                        continue  # nested opaque dirs see the same lower entries
                    hidden_reported.add(gone)
                    parent = posixpath.dirname(gone)
                    if parent not in changed_dirs:
                        changed_dirs.add(parent)
                        yield Change(parent, MODIFIED)
                    yield Change(gone, DELETED)
            stack.append((child_fd, path + "/", iter(_sorted(child_fd)), child_lowers, True))
    finally:
        for fd, _, _, lowers, owned in stack:
            if owned:
                os.close(fd)
                lowers.close()
