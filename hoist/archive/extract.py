"""Extract a layer tar into a directory without ever writing outside it.

Layer archives are hostile input. The defence here is structural rather than a set of
path-string checks: every file system operation is relative to a directory file
descriptor that was opened with ``O_NOFOLLOW``, so no path component is ever resolved
through a symlink, and the final component of every call is created or changed with
"don't follow" semantics (``O_EXCL|O_NOFOLLOW``, ``mkdirat``, ``symlinkat``, ``linkat``
without ``AT_SYMLINK_FOLLOW``, ``fchownat``/``utimensat`` with ``AT_SYMLINK_NOFOLLOW``).
Name checks (absolute, ``..``) come on top, to reject hostile archives with a clear error.

Whiteouts follow the OCI image spec: in ``"overlay"`` mode they become overlayfs
whiteouts (char 0/0 devices, ``trusted.overlay.opaque``) in a fresh per-layer directory;
in ``"apply"`` mode ``dest`` already holds the parent's merged tree and the whiteouts
delete from it, only ever touching what came from lower layers.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO, Callable, Literal

from ..errors import (InvalidArgument, InvalidContent, NotFound, SizeLimitExceeded,
                      Unavailable, UnsafeArchive)
from .tarstream import (CHAR, DIRECTORY, FIFO, HARDLINK, REGULAR, SYMLINK, TarEntry,
                        TarReader, xattr_transportable)

__all__ = ["ExtractStats", "extract_layer", "open_root", "safe_remove_tree", "split_name",
           "MAX_ENTRIES", "MAX_NAME_BYTES"]

MAX_ENTRIES = 1_000_000
MAX_NAME_BYTES = 4096          # PATH_MAX; longer names cannot be real files anyway
_MAX_COMPONENT = 255           # NAME_MAX
_COPY = 1 << 20
_DIR_CACHE = 512

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."   # aufs bookkeeping (.wh..wh.plnk, ...): never content
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

Whiteouts = Literal["overlay", "apply"]


@dataclass(frozen=True, slots=True)
class ExtractStats:
    entries: int
    bytes: int


# --------------------------------------------------------------------------- helpers


def open_root(dest: str) -> int:
    """Open the extraction root as a directory fd (the caller trusts this path)."""
    try:
        return os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"extraction directory {dest} does not exist") from None
    except NotADirectoryError:
        raise InvalidArgument(f"extraction target {dest} is not a directory") from None


def split_name(name: str, what: str = "entry") -> tuple[str, ...]:
    """Normalise an archive member name into path components relative to the root.

    ``./`` and empty components are dropped (so the root entry gives ``()``); absolute
    names, ``..`` components and NUL bytes are refused rather than rewritten, because a
    layer producing them is broken or hostile and guessing its intent is how escapes
    happen.
    """
    if "\0" in name:
        raise UnsafeArchive(f"{what} name contains a NUL byte: {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeArchive(f"{what} name longer than {MAX_NAME_BYTES} bytes")
    if name.startswith("/"):
        raise UnsafeArchive(f"{what} name is absolute: {name!r}")
    parts = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            raise UnsafeArchive(f"{what} name escapes the root with '..': {name!r}")
        if len(comp.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT:
            raise InvalidContent(f"{what} name has a component longer than {_MAX_COMPONENT} "
                                 f"bytes: {name[:80]!r}...")
        parts.append(comp)
    return tuple(parts)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _unlink_nondir(dir_fd: int, name: str) -> bool:
    """Unlink ``name`` unless it is a directory; True if nothing is left at ``name``."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except IsADirectoryError:
        return False
    except PermissionError:
        # unlink(2) of a directory is EISDIR on Linux, but EPERM on some file systems.
        st = _lstat(name, dir_fd)
        if st is not None and stat.S_ISDIR(st.st_mode):
            return False
        raise


def safe_remove_tree(parent_fd: int, name: str) -> None:
    """Remove ``name`` in ``parent_fd`` (file, symlink or whole directory tree).

    Directories are entered through ``O_NOFOLLOW`` fds, so a symlink anywhere in the tree
    is unlinked as a link, never followed. Iterative, so depth is bounded by fds rather
    than by Python's recursion limit. A missing ``name`` is not an error.
    """
    if _unlink_nondir(parent_fd, name):
        return
    top = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    stack: list[tuple[int, str, list[str]]] = [(top, name, os.listdir(top))]
    try:
        while stack:
            fd, dname, names = stack[-1]
            if names:
                child = names.pop()
                if not _unlink_nondir(fd, child):
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                    stack.append((cfd, child, os.listdir(cfd)))
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(dname, dir_fd=stack[-1][0] if stack else parent_fd)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _ns_pair(entry: TarEntry) -> tuple[int, int]:
    return (entry.atime_ns if entry.atime_ns is not None else entry.mtime_ns, entry.mtime_ns)


def _join(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


# --------------------------------------------------------------------------- extractor


class _Extractor:
    def __init__(self, root_fd: int, whiteouts: Whiteouts, limit: int | None,
                 allow_devices: bool, on_member: Callable[[TarEntry], None] | None) -> None:
        self.root = root_fd
        self.whiteouts = whiteouts
        self.limit = limit
        self.allow_devices = allow_devices
        self.on_member = on_member
        self.privileged = os.geteuid() == 0
        self.entries = 0
        self.bytes = 0
        self._view = memoryview(bytearray(_COPY))
        # rel path -> dir fd. Fds handed out are "borrowed" for the current entry only;
        # evicted fds are closed at the start of the next entry, never while in use.
        self._dirs: dict[str, int] = {}
        self._graveyard: list[int] = []
        # Directory mode and times are applied last: creating children changes a
        # directory's mtime, and a read-only mode could block the children (non-root).
        self._dir_meta: dict[str, tuple[int, int, int]] = {}
        # "apply" mode only: what this layer itself wrote, so whiteouts spare it.
        self._touched: set[str] = set()
        self._new_dirs: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------

    def run(self, reader: TarReader) -> None:
        while (entry := reader.next()) is not None:
            self.entries += 1
            if self.entries > MAX_ENTRIES:
                raise SizeLimitExceeded(f"layer has more than {MAX_ENTRIES} entries")
            if self.on_member is not None:
                self.on_member(entry)
            self._release()
            self._apply(entry, reader)
        reader.drain()
        self._finish_directories()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        self._release()

    def _release(self) -> None:
        for fd in self._graveyard:
            os.close(fd)
        self._graveyard.clear()
        if len(self._dirs) > _DIR_CACHE:
            self._graveyard.extend(self._dirs.values())
            self._dirs.clear()

    def _forget(self, path: str) -> None:
        """``path`` was removed: drop cached fds at or below it (closed later)."""
        below = path + "/"
        for key in [k for k in self._dirs if k == path or k.startswith(below)]:
            self._graveyard.append(self._dirs.pop(key))
        self._dir_meta.pop(path, None)

    # -- walking ------------------------------------------------------------------------

    def _dir(self, parts: tuple[str, ...], create: bool) -> int:
        """A borrowed fd for the directory ``parts``, reached without following links."""
        if not parts:
            return self.root
        path = _join(parts)
        fd = self._dirs.get(path)
        if fd is not None:
            return fd
        depth = len(parts) - 1
        while depth and _join(parts[:depth]) not in self._dirs:
            depth -= 1
        cur = self._dirs[_join(parts[:depth])] if depth else self.root
        for i in range(depth, len(parts)):
            cur = self._open_subdir(cur, parts[: i + 1], create)
            self._dirs[_join(parts[: i + 1])] = cur
        return cur

    def _open_subdir(self, parent_fd: int, parts: tuple[str, ...], create: bool) -> int:
        name = parts[-1]
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise UnsafeArchive(f"{_join(parts)}: no such directory in the layer root") from None
        except (NotADirectoryError, OSError) as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            self._refuse_component(parent_fd, parts)
        # Missing parents are created like Docker does (0755, owned by us).
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        os.fchmod(fd, 0o755)  # explicit: the process umask must not decide layer content
        self._note_new_dir(_join(parts))
        return fd

    @staticmethod
    def _refuse_component(parent_fd: int, parts: tuple[str, ...]) -> None:
        # Docker resolves a symlinked parent *inside* the root and writes through it. We
        # refuse instead: layers produced by real builders always name the real path (an
        # overlay upper dir has no symlinked parents), the in-root resolution rules are a
        # long history of escape bugs, and a link planted by an earlier entry or layer is
        # exactly how an archive redirects writes to somewhere it shouldn't.
        st = _lstat(parts[-1], parent_fd)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise UnsafeArchive(
                f"{_join(parts)}: path component is a symlink; refusing to write through it")
        raise InvalidContent(f"{_join(parts)}: path component is not a directory")

    def _note_new_dir(self, path: str) -> None:
        if self.whiteouts == "apply":
            self._new_dirs.add(path)

    def _touch(self, parts: tuple[str, ...]) -> None:
        if self.whiteouts != "apply":
            return
        for i in range(len(parts), 0, -1):
            path = _join(parts[:i])
            if path in self._touched:
                break
            self._touched.add(path)

    def _clear(self, parent_fd: int, parts: tuple[str, ...]) -> None:
        """Remove whatever is at ``parts`` so that an entry can replace it (tar semantics)."""
        safe_remove_tree(parent_fd, parts[-1])
        self._forget(_join(parts))

    def _create(self, parent_fd: int, parts: tuple[str, ...], make: Callable[[], None]) -> None:
        """Run ``make`` (an exclusive create); on EEXIST clear the old entry and retry once."""
        try:
            make()
        except FileExistsError:
            self._clear(parent_fd, parts)
            make()

    # -- entries ------------------------------------------------------------------------

    def _apply(self, entry: TarEntry, reader: TarReader) -> None:
        parts = split_name(entry.name)
        if not parts:
            return  # "./": describes dest itself, which belongs to the caller
        if parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(parts)
            return
        self._make_entry(parts, entry, reader)
        self._touch(parts)

    def _make_entry(self, parts: tuple[str, ...], entry: TarEntry, reader: TarReader) -> None:
        """Make the entry's file, directory or link, in its (created) parent."""
        parent = self._dir(parts[:-1], create=True)
        kind = entry.type
        if kind == DIRECTORY:
            self._directory(parent, parts, entry)
        elif kind == REGULAR:
            self._regular(parent, parts, entry, reader)
        elif kind == SYMLINK:
            self._symlink(parent, parts, entry)
        elif kind == HARDLINK:
            self._hardlink(parts, entry)
        else:
            self._special(parent, parts, entry)

    def _directory(self, parent: int, parts: tuple[str, ...], entry: TarEntry) -> None:
        name = parts[-1]
        path = _join(parts)
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
            self._note_new_dir(path)
        except FileExistsError:
            st = _lstat(name, parent)
            if st is None or not stat.S_ISDIR(st.st_mode):
                self._clear(parent, parts)
                os.mkdir(name, 0o700, dir_fd=parent)
                self._note_new_dir(path)
        fd = self._dirs.get(path)
        if fd is None:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            self._dirs[path] = fd
        self._chown_fd(fd, entry)
        self._set_xattrs(fd, entry)
        atime, mtime = _ns_pair(entry)
        self._dir_meta[path] = (entry.mode, atime, mtime)

    def _regular(self, parent: int, parts: tuple[str, ...], entry: TarEntry,
                 reader: TarReader) -> None:
        if self.limit is not None and self.bytes + entry.size > self.limit:
            raise SizeLimitExceeded(f"layer content exceeds the limit of {self.limit} bytes")
        name = parts[-1]
        fds: list[int] = []
        self._create(parent, parts, lambda: fds.append(
            os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)))
        fd = fds[-1]
        try:
            self._copy(reader, fd, entry.size)
            self._chown_fd(fd, entry)           # chown first: it clears setuid/setgid
            os.fchmod(fd, entry.mode)
            self._set_xattrs(fd, entry)         # after chown: chown drops capabilities
            os.utime(fd, ns=_ns_pair(entry))
        finally:
            os.close(fd)
        self.bytes += entry.size

    def _copy(self, reader: TarReader, fd: int, size: int) -> None:
        view = self._view
        remaining = size
        while remaining:
            n = reader.readinto(view[: min(remaining, len(view))])
            _write_all(fd, view[:n])
            remaining -= n

    def _symlink(self, parent: int, parts: tuple[str, ...], entry: TarEntry) -> None:
        # The target is data: absolute targets are legal and are resolved against the
        # container root at run time. We never follow it here.
        target = entry.linkname
        if not target or "\0" in target:
            raise InvalidContent(f"{entry.name}: invalid symlink target {target!r}")
        if len(target.encode("utf-8", "surrogateescape")) >= MAX_NAME_BYTES:
            raise UnsafeArchive(f"{entry.name}: symlink target longer than {MAX_NAME_BYTES} bytes")
        name = parts[-1]
        self._create(parent, parts, lambda: os.symlink(target, name, dir_fd=parent))
        self._finish_node(parent, name, entry, chmod=False)

    def _hardlink(self, parts: tuple[str, ...], entry: TarEntry) -> None:
        target = split_name(entry.linkname, "hardlink target")
        if not target:
            raise UnsafeArchive(f"{entry.name}: hardlink to the layer root")
        if target == parts:
            return  # a link to itself: nothing to do
        tparent = self._dir(target[:-1], create=False)
        st = _lstat(target[-1], tparent)
        if st is None:
            raise UnsafeArchive(f"{entry.name}: hardlink target {entry.linkname!r} does not exist")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchive(
                f"{entry.name}: hardlink target {entry.linkname!r} is not a regular file")
        parent = self._dir(parts[:-1], create=True)
        name, tname = parts[-1], target[-1]

        def link() -> None:
            os.link(tname, name, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)

        try:
            self._create(parent, parts, link)
        except FileNotFoundError:
            # Replacing the link's own name removed its target (e.g. "a" -> "a/f").
            raise UnsafeArchive(f"{entry.name}: hardlink target {entry.linkname!r} "
                                f"was removed by the entry itself") from None
        # The link shares the target's inode, whose metadata its own entry already set.

    def _special(self, parent: int, parts: tuple[str, ...], entry: TarEntry) -> None:
        name = parts[-1]
        is_whiteout_dev = (entry.type == CHAR and entry.devmajor == 0 and entry.devminor == 0
                           and self.whiteouts == "overlay")
        if not self.allow_devices and not is_whiteout_dev:
            raise UnsafeArchive(f"{entry.name}: device nodes and FIFOs are not allowed here")
        if entry.type == FIFO:
            self._create(parent, parts, lambda: os.mkfifo(name, 0o600, dir_fd=parent))
        else:
            if not self.privileged:
                if is_whiteout_dev:
                    raise Unavailable("overlay whiteouts need root")
                # Unprivileged (rootless) extraction cannot mknod; Docker skips them too.
                return
            kind = stat.S_IFCHR if entry.type == CHAR else stat.S_IFBLK
            dev = os.makedev(entry.devmajor, entry.devminor)
            self._create(parent, parts, lambda: os.mknod(name, kind | 0o600, dev, dir_fd=parent))
        self._finish_node(parent, name, entry, chmod=True)

    def _finish_node(self, parent: int, name: str, entry: TarEntry, chmod: bool) -> None:
        """Metadata for nodes we can't open for writing (symlinks, devices, FIFOs)."""
        if self.privileged:
            os.chown(name, entry.uid, entry.gid, dir_fd=parent, follow_symlinks=False)
        if chmod:
            _chmod_nofollow(parent, name, entry.mode)
        if entry.xattrs:
            self._set_xattrs(f"/proc/self/fd/{parent}/{name}", entry)
        os.utime(name, ns=_ns_pair(entry), dir_fd=parent, follow_symlinks=False)

    # -- metadata -------------------------------------------------------------------------

    def _chown_fd(self, fd: int, entry: TarEntry) -> None:
        if self.privileged:
            os.fchown(fd, entry.uid, entry.gid)

    def _set_xattrs(self, target: int | str, entry: TarEntry) -> None:
        for key, value in entry.xattrs.items():
            if not xattr_transportable(key):
                continue  # host state (trusted.overlay.*, security.selinux, ACLs): dropped
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    # /proc/self/fd/<dirfd>/<name>: the dir fd is pinned and the last
                    # component is not followed, so this is as safe as a *at() call.
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    continue  # the file system has no xattrs of this kind
                if exc.errno == errno.EPERM and (not self.privileged or isinstance(target, str)):
                    continue  # unprivileged, or a kind of node that can't carry this xattr
                raise

    # -- whiteouts --------------------------------------------------------------------

    def _whiteout(self, parts: tuple[str, ...]) -> None:
        base, parent_parts = parts[-1], parts[:-1]
        if base == WHITEOUT_OPAQUE:
            parent = self._dir(parent_parts, create=True)
            if self.whiteouts == "overlay":
                self._set_opaque(parent, _join(parent_parts) or ".")
            else:
                self._prune_lower(parent, _join(parent_parts))
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs metadata, not a whiteout of anything
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", "..") or "/" in target:
            raise UnsafeArchive(f"invalid whiteout {_join(parts)!r}")
        parent = self._dir(parent_parts, create=True)
        if self.whiteouts == "overlay":
            self._overlay_whiteout(parent, parent_parts + (target,))
        else:
            self._remove_lower(parent, _join(parent_parts), target)

    def _set_opaque(self, fd: int, path: str) -> None:
        try:
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
        except OSError as exc:
            if exc.errno == errno.EPERM:
                raise Unavailable("overlay whiteouts need root") from None
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise Unavailable(f"{path}: file system does not support trusted xattrs "
                                  "needed for overlay whiteouts") from None
            raise

    def _overlay_whiteout(self, parent: int, parts: tuple[str, ...]) -> None:
        if not self.privileged:
            raise Unavailable("overlay whiteouts need root")
        name = parts[-1]
        self._create(parent, parts,
                     lambda: os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent))

    def _remove_lower(self, parent: int, parent_path: str, name: str) -> None:
        """Delete ``name`` as far as it came from lower layers (OCI: a whiteout never
        hides entries of its own layer)."""
        path = f"{parent_path}/{name}" if parent_path else name
        if path not in self._touched:
            st = _lstat(name, parent)
            if st is not None:
                safe_remove_tree(parent, name)
                self._forget(path)
            return
        if path in self._new_dirs:
            return
        st = _lstat(name, parent)
        if st is not None and stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            try:
                self._prune_lower(fd, path)
            finally:
                os.close(fd)

    def _prune_lower(self, dir_fd: int, dir_path: str) -> None:
        """Opaque directory in apply mode: drop every child that came from lower layers,
        descending only into directories this layer also wrote into."""
        if dir_path in self._new_dirs:
            return
        stack: list[tuple[int | None, str, list[str]]] = [(None, dir_path, os.listdir(dir_fd))]
        try:
            while stack:
                own_fd, path, names = stack[-1]
                fd = dir_fd if own_fd is None else own_fd
                if not names:
                    stack.pop()
                    if own_fd is not None:
                        os.close(own_fd)
                    continue
                child = names.pop()
                child_path = f"{path}/{child}" if path else child
                if child_path not in self._touched:
                    safe_remove_tree(fd, child)
                    self._forget(child_path)
                    continue
                if child_path in self._new_dirs:
                    continue
                st = _lstat(child, fd)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                    stack.append((cfd, child_path, os.listdir(cfd)))
        finally:
            for own_fd, _, _ in stack:
                if own_fd is not None:
                    os.close(own_fd)

    # -- the end ------------------------------------------------------------------------

    def _finish_directories(self) -> None:
        # Deepest first, so a directory is made read-only only after everything below it.
        for path in sorted(self._dir_meta, key=lambda p: p.count("/"), reverse=True):
            mode, atime, mtime = self._dir_meta[path]
            parts = tuple(path.split("/"))
            self._release()
            try:
                parent = self._dir(parts[:-1], create=False)
                fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
            except (InvalidContent, FileNotFoundError, NotADirectoryError):
                continue  # replaced or removed by a later entry
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue
                raise
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(atime, mtime))
            finally:
                os.close(fd)


def _chmod_nofollow(parent: int, name: str, mode: int) -> None:
    """chmod without following a final symlink (fchmodat can't do that on Linux).

    An O_PATH fd pins the node itself; chmod through its /proc/self/fd link then applies
    to exactly that node.
    """
    fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            return  # symlink permissions don't exist on Linux
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def extract_layer(stream: BinaryIO, dest: str, *, whiteouts: Whiteouts,
                  limit: int | None = None,
                  on_member: Callable[[TarEntry], None] | None = None,
                  allow_devices: bool = True) -> ExtractStats:
    """Extract the uncompressed tar ``stream`` into the existing directory ``dest``.

    ``limit`` bounds the total bytes of regular-file content. ``on_member`` is called with
    each entry before it is applied (progress reporting). On any error ``dest`` may hold a
    partial tree, which the caller discards; nothing outside ``dest`` is ever touched.
    """
    if whiteouts not in ("overlay", "apply"):
        raise InvalidArgument(f"unknown whiteout mode {whiteouts!r}")
    root_fd = open_root(dest)
    extractor = _Extractor(root_fd, whiteouts, limit, allow_devices, on_member)
    try:
        extractor.run(TarReader(stream))
    finally:
        extractor.close()
        os.close(root_fd)
    return ExtractStats(entries=extractor.entries, bytes=extractor.bytes)
