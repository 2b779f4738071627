"""Turn a directory tree (typically an overlay upper dir) into a layer tar.

The output is deterministic: entries in byte-wise name order, integer-second mtimes, no
uname/gname, no atime/ctime, PAX records only where ustar can't hold a value. The same
tree therefore always produces the same bytes and, once compressed, the same digest.

Like extraction, the walk goes through ``O_NOFOLLOW`` directory fds: a symlink in the
tree is archived as a symlink and never entered.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, Collection, Iterable, Iterator, Literal

from ..errors import Conflict, InvalidArgument, NotFound
from .extract import OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, open_root
from .tarstream import (BLOCKDEV, CHAR, DIRECTORY, FIFO, HARDLINK, REGULAR, SYMLINK, TarEntry,
                        TarWriter, xattr_transportable)

__all__ = ["write_tar_from_dir", "read_xattrs"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
_NS = 1_000_000_000


def read_xattrs(fd: int) -> dict[str, bytes]:
    """The transportable xattrs (``user.*``, ``security.capability``) of an open file."""
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out: dict[str, bytes] = {}
    for name in sorted(names):
        if not xattr_transportable(name):
            continue
        try:
            out[name] = os.getxattr(fd, name)
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    return out


def is_opaque(fd: int) -> bool:
    """Is the directory open at ``fd`` an overlayfs opaque directory?"""
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE_XATTR) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise


def _sorted_names(fd: int) -> list[str]:
    # Byte order, not locale or code point order, so the result never depends on the host.
    return sorted(os.listdir(fd), key=lambda n: n.encode("utf-8", "surrogateescape"))


def _base_entry(name: str, typ: str, st: os.stat_result) -> TarEntry:
    # mtime truncated to whole seconds as Docker does, so layer digests are reproducible.
    return TarEntry(name=name, type=typ, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                    gid=st.st_gid, mtime_ns=(st.st_mtime_ns // _NS) * _NS)


class _TreeWriter:
    def __init__(self, writer: TarWriter, whiteouts: str, exclude: Collection[str] = ()) -> None:
        self.writer = writer
        self.overlay = whiteouts == "overlay"
        self.exclude = frozenset(exclude)
        self._inodes: dict[tuple[int, int], str] = {}

    def emit(self, dir_fd: int, rel: str, name: str) -> int | None:
        """Write the entry for ``name`` (in ``dir_fd``, archive path ``rel``).

        Returns an fd for a directory still to be descended into (caller closes it).
        """
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return self._directory(dir_fd, rel, name, st)
        if stat.S_ISREG(mode):
            self._regular(dir_fd, rel, name, st)
        elif stat.S_ISLNK(mode):
            entry = _base_entry(rel, SYMLINK, st)
            entry.linkname = os.readlink(name, dir_fd=dir_fd)
            self.writer.add(entry)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self._device(rel, st)
        elif stat.S_ISFIFO(mode):
            self.writer.add(_base_entry(rel, FIFO, st))
        # Sockets (and anything else) can't be represented in a tar; Docker skips them too.
        return None

    def _directory(self, dir_fd: int, rel: str, name: str, st: os.stat_result) -> int:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            entry = _base_entry(rel + "/", DIRECTORY, st)
            entry.xattrs = read_xattrs(fd)
            self.writer.add(entry)
            if self.overlay and is_opaque(fd):
                # An opaque overlay dir hides everything below it in lower layers; in an OCI
                # layer that is an empty ".wh..wh..opq" file right after the directory.
                marker = _base_entry(f"{rel}/{WHITEOUT_OPAQUE}", REGULAR, st)
                marker.mode = stat.S_IMODE(st.st_mode) & 0o777
                self.writer.add(marker)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _regular(self, dir_fd: int, rel: str, name: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        first = self._inodes.get(key) if st.st_nlink > 1 else None
        if first is not None:
            entry = _base_entry(rel, HARDLINK, st)
            entry.linkname = first
            self.writer.add(entry)
            return
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != key:
                raise Conflict(f"{rel} changed while it was being archived")
            entry = _base_entry(rel, REGULAR, fst)
            entry.size = fst.st_size
            entry.xattrs = read_xattrs(fd)
            self.writer.add_from_fd(entry, fd)
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            self._inodes[key] = rel

    def _device(self, rel: str, st: os.stat_result) -> None:
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if self.overlay and stat.S_ISCHR(st.st_mode) and major == 0 and minor == 0:
            # overlayfs whiteout -> OCI whiteout file ".wh.NAME"
            head, _, base = rel.rpartition("/")
            entry = _base_entry(f"{head}/{WHITEOUT_PREFIX}{base}" if head
                                else WHITEOUT_PREFIX + base, REGULAR, st)
            entry.mode = 0o600
            self.writer.add(entry)
            return
        entry = _base_entry(rel, CHAR if stat.S_ISCHR(st.st_mode) else BLOCKDEV, st)
        entry.devmajor, entry.devminor = major, minor
        self.writer.add(entry)

    def walk(self, dir_fd: int, prefix: str) -> None:
        """Write all of ``dir_fd``'s contents, depth first in name order, without recursion
        (deep trees must not hit Python's recursion limit)."""
        stack: list[tuple[int, str, Iterator[str]]] = [
            (dir_fd, prefix, iter(_sorted_names(dir_fd)))]
        try:
            while stack:
                fd, base, names = stack[-1]
                name = next(names, None)
                if name is None:
                    stack.pop()
                    if fd != dir_fd:
                        os.close(fd)
                    continue
                rel = base + name
                if rel in self.exclude:
                    continue
                child = self.emit(fd, rel, name)
                if child is not None:
                    stack.append((child, rel + "/", iter(_sorted_names(child))))
        finally:
            for fd, _, _ in stack:
                if fd != dir_fd:
                    os.close(fd)


def _selection(paths: Iterable[str]) -> list[tuple[str, ...]]:
    """Normalise, sort and de-duplicate selected paths; a path inside another is dropped."""
    chosen: set[tuple[str, ...]] = set()
    for path in paths:
        if path.startswith("/") or "\0" in path:
            raise InvalidArgument(f"archive path must be relative: {path!r}")
        parts = tuple(p for p in path.split("/") if p not in ("", "."))
        if ".." in parts:
            raise InvalidArgument(f"archive path must not contain '..': {path!r}")
        chosen.add(parts)
    ordered = sorted(chosen, key=lambda p: [c.encode("utf-8", "surrogateescape") for c in p])
    result: list[tuple[str, ...]] = []
    for parts in ordered:
        if result and parts[: len(result[-1])] == result[-1]:
            continue  # already covered by an ancestor
        result.append(parts)
    return result


def _open_parent(root_fd: int, parts: tuple[str, ...]) -> int:
    fd = os.dup(root_fd)
    try:
        for comp in parts:
            try:
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise NotFound(f"{'/'.join(parts)}: no such directory") from None
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise InvalidArgument(
                        f"{'/'.join(parts)}: a path component is a symlink or not a directory"
                    ) from None
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_tar_from_dir(root: str, out: BinaryIO, *,
                       whiteouts: Literal["overlay", "none"] = "overlay",
                       paths: Iterable[str] | None = None,
                       exclude: Collection[str] = ()) -> None:
    """Write the tree under ``root`` as an (uncompressed) layer tar to ``out``.

    With ``whiteouts="overlay"`` overlayfs whiteouts (char 0/0) become ``.wh.NAME`` files and
    opaque directories get a ``.wh..wh..opq`` entry, which turns an upper dir into an OCI
    layer diff. ``paths`` restricts the archive to those relative paths (each with its whole
    subtree; their parent directories are not added). ``exclude`` names relative paths
    (no leading or trailing slash) left out together with their subtrees, e.g. the
    mountpoints a runtime created in a container's upper dir. ``out`` is left open.
    """
    if whiteouts not in ("overlay", "none"):
        raise InvalidArgument(f"unknown whiteout mode {whiteouts!r}")
    root_fd = open_root(root)
    try:
        writer = TarWriter(out)
        tree = _TreeWriter(writer, whiteouts, exclude)
        if paths is None:
            tree.walk(root_fd, "")
        else:
            for parts in _selection(paths):
                if not parts:
                    tree.walk(root_fd, "")
                    continue
                _write_selected(tree, root_fd, parts)
        writer.close()
    finally:
        os.close(root_fd)


def _write_selected(tree: _TreeWriter, root_fd: int, parts: tuple[str, ...]) -> None:
    parent = _open_parent(root_fd, parts[:-1])
    try:
        rel = "/".join(parts)
        try:
            child = tree.emit(parent, rel, parts[-1])
        except FileNotFoundError:
            raise NotFound(f"{rel}: no such file or directory") from None
        if child is not None:
            try:
                tree.walk(child, rel + "/")
            finally:
                os.close(child)
    finally:
        os.close(parent)
