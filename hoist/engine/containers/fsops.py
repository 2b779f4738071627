"""Container file system operations: ``cp`` (stat, archive, extract), ``export``, ``diff``.

Every path a client names is a path *inside* the container, and the container's file
system is hostile: any component may be a symlink to "/" or to ``../../..``, and a
process in a running container can swap one in while we work. So no host path is ever
built from a container path. Paths are resolved from a directory fd of the rootfs with
openat2(RESOLVE_IN_ROOT), which makes the kernel treat that fd as "/" for absolute
links and ``..`` (and fails with EAGAIN/EXDEV rather than escaping under a race);
everything after that is relative to the fds obtained, with the final component never
followed unless Docker's semantics ask for it (and then resolved the same way).

Uploaded archives go through hoist's layer extractor, which never follows a symlink at
the final component and refuses absolute or ``..`` member names; here its directory
lookups are resolved inside the container root as well, so an archive symlink such as
``x -> /`` followed by ``x/etc/passwd`` writes the *container's* /etc/passwd, exactly as
dockerd's chrooted extraction does, and nothing outside the rootfs is reachable.
"""
from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

from ... import linux
from ...archive.compression import open_decompressed
from ...archive.create import _TreeWriter, write_tar_from_dir
from ...archive.extract import _DIR_FLAGS, _Extractor, _lstat, split_name
from ...archive.tarstream import DIRECTORY, TarEntry, TarReader, TarWriter
from ...errors import HoistError, InvalidArgument, InvalidContent, NotFound, UnsafeArchive
from .changes import Change, compute_changes
from .pathstat import PathStat, clean_path, go_base, split_path

__all__ = ["ContainerFS", "PathArchive", "open_resolved", "link_target"]

_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
_MAX_UPLOAD = 1 << 40   # a bound on decompressed upload content, as a sanity check


class ExtractError(HoistError):
    """Extraction failed on the container's content (dockerd answers 500 here too)."""

    status = 500


def open_resolved(root_fd: int, path: str, flags: int) -> int:
    """Open container ``path`` (symlinks, absolute or relative, resolved with ``root_fd``
    as "/"). Raises OSError like open(2)."""
    rel = path.lstrip("/") or "."
    for _ in range(16):
        try:
            return linux.openat2(root_fd, rel, flags, _RESOLVE)
        except OSError as exc:
            # EAGAIN: a rename raced with ".." resolution; the kernel refused rather than
            # risk an escape. Trying again is safe.
            if exc.errno != errno.EAGAIN:
                raise
    raise OSError(errno.EAGAIN, "path kept changing during resolution", path)


def _container_path_of(root_fd: int, fd: int) -> str | None:
    """The container path of an fd opened below ``root_fd`` (None if not below it)."""
    root = os.readlink(f"/proc/self/fd/{root_fd}")
    here = os.readlink(f"/proc/self/fd/{fd}")
    if here == root:
        return "/"
    if here.startswith(root.rstrip("/") + "/"):
        return here[len(root.rstrip("/")):]
    return None


def link_target(root_fd: int, abs_path: str, dir_fd: int, name: str) -> str:
    """Docker's ``linkTarget``: the symlink ``abs_path`` fully evaluated inside the
    container, as a container path. A dangling link is evaluated lexically."""
    try:
        fd = open_resolved(root_fd, abs_path, linux.O_PATH)
    except OSError:
        target = os.readlink(name, dir_fd=dir_fd)
        base = posixpath.dirname(abs_path.rstrip("/")) or "/"
        return posixpath.normpath(posixpath.join(base, target)).replace("//", "/")
    try:
        return _container_path_of(root_fd, fd) or "/"
    finally:
        os.close(fd)


def _not_found(path: str, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {ref}")


@dataclass(frozen=True)
class _Target:
    """What a GET/HEAD names: ``name`` in the directory ``dir_fd`` ("." when the path
    names a directory itself, as with a trailing "/" or "/.")."""

    dir_fd: int
    name: str
    stat: PathStat
    arcname: str
    cpath: str         # the container path archived as ``arcname``


# The files the runtime bind-mounts over the rootfs (host path from the container
# document). dockerd mounts them in its cp namespace, so `docker cp c:/etc/hosts .`
# gives the container's real hosts file, not the empty mount point below it.
_NETWORK_FILES = (("/etc/hosts", "HostsPath"), ("/etc/resolv.conf", "ResolvConfPath"),
                  ("/etc/hostname", "HostnamePath"))


class _MountedFiles:
    """Container path -> (dir fd, name) of the host file mounted there."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.files: dict[str, tuple[int, str]] = {}
        dirs: dict[str, int] = {}
        try:
            for cpath, key in _NETWORK_FILES:
                host = doc.get(key) or ""
                if not host or not os.path.isfile(host):
                    continue
                parent = os.path.dirname(host)
                if parent not in dirs:
                    dirs[parent] = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                self.files[cpath] = (dirs[parent], os.path.basename(host))
        except BaseException:
            for fd in dirs.values():
                os.close(fd)
            raise
        self._fds = list(dirs.values())

    def get(self, cpath: str) -> tuple[int, str] | None:
        return self.files.get(cpath)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class _MountAwareTree(_TreeWriter):
    """Archives a subtree, taking the mounted files from where they really are."""

    def __init__(self, writer: TarWriter, mounted: _MountedFiles, arc: str, cpath: str) -> None:
        super().__init__(writer, "none")
        self.mounted = mounted
        self.arc = arc
        self.cpath = cpath.rstrip("/")

    def emit(self, dir_fd: int, rel: str, name: str) -> int | None:
        hit = self.mounted.get(self.cpath + rel[len(self.arc):] or "/")
        if hit is not None:
            dir_fd, name = hit
        return super().emit(dir_fd, rel, name)


def _resolve_target(root_fd: int, path: str, ref: str,
                    mounted: _MountedFiles | None = None) -> _Target:
    abs_path = clean_path(path)
    head, base = split_path(abs_path)
    # With a trailing "/" or "/." the path names the directory itself (every component,
    # the last one too, is followed); otherwise the last component is lstat'ed only.
    name = "." if base in ("", ".") else base
    try:
        dir_fd = open_resolved(root_fd, head, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise _not_found(path, ref) from None
        # e.g. "/etc/passwd/": dockerd's lstat fails with ENOTDIR, a 500 there too
        raise HoistError(f"lstat {abs_path}: {os.strerror(exc.errno)}") from None
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise HoistError(f"lstat {abs_path}: {os.strerror(exc.errno)}") from None
        if st is None:
            raise _not_found(path, ref)
        dir_path = _container_path_of(root_fd, dir_fd) or "/"
        cpath = dir_path if name == "." else posixpath.join(dir_path, name)
        arcname = go_base(abs_path)
        hit = mounted.get(cpath) if mounted is not None else None
        if hit is not None:
            st = os.stat(hit[1], dir_fd=hit[0], follow_symlinks=False)
        target = ""
        if stat.S_ISLNK(st.st_mode):
            target = link_target(root_fd, abs_path, dir_fd, name)
        return _Target(dir_fd, name, PathStat.from_stat(arcname, st, target), arcname, cpath)
    except BaseException:
        os.close(dir_fd)
        raise


class PathArchive:
    """An open ``GET /containers/{id}/archive``: the stat is known (errors are raised
    before the response starts), the tar is written by ``write``. ``close`` releases
    the fds and the rootfs mount."""

    def __init__(self, stack: contextlib.ExitStack, target: _Target,
                 mounted: _MountedFiles) -> None:
        self._stack = stack
        self._target = target
        self._mounted = mounted
        self.stat = target.stat

    def write(self, out: BinaryIO) -> None:
        t = self._target
        writer = TarWriter(out)
        # Docker rebases the entries on the name the client asked for: a symlinked
        # directory copied with "link/" is archived as "link", "dir/." as ".".
        # The root is archived as "/", "/bin", ... like dockerd does; the docker CLI
        # rebases on exactly that.
        arc = t.arcname if t.arcname != "/" else ""
        tree = _MountAwareTree(writer, self._mounted, arc, t.cpath)
        child = tree.emit(t.dir_fd, arc, t.name)
        if child is not None:
            try:
                tree.walk(child, arc + "/")
            finally:
                os.close(child)
        writer.close()

    def close(self) -> None:
        self._stack.close()


class _InRootExtractor(_Extractor):
    """The layer extractor with two container-specific changes: parent directories are
    resolved inside the container root (symlinks contained, like a chrooted untar), and
    Docker's ``noOverwriteDirNonDir`` rule."""

    def __init__(self, dest_fd: int, croot_fd: int, dest_path: str, no_overwrite: bool,
                 on_member: Callable[[TarEntry], None] | None) -> None:
        super().__init__(dest_fd, "apply", None, True, on_member)
        self.whiteouts = "none"  # cp writes ".wh.*" names as plain files, as dockerd does
        self.croot = croot_fd
        self.dest_path = dest_path.rstrip("/")
        self.no_overwrite = no_overwrite

    def _apply(self, entry: TarEntry, reader: TarReader) -> None:
        parts = split_name(entry.name)
        if parts and parts[0].startswith(".wh..wh.") and len(parts) == 1:
            return  # aufs bookkeeping, skipped by dockerd as well
        if not parts:
            return
        if self.no_overwrite:
            parent = self._dir(parts[:-1], create=True)
            st = _lstat(parts[-1], parent)
            if st is not None:
                is_dir = stat.S_ISDIR(st.st_mode)
                if is_dir and entry.type != DIRECTORY:
                    raise ExtractError(f"cannot overwrite directory \"{self._cpath(parts)}\" "
                                       f"with non-directory \"{self.dest_path or '/'}\"")
                if not is_dir and entry.type == DIRECTORY:
                    raise ExtractError(f"cannot overwrite non-directory \"{self._cpath(parts)}\""
                                       f" with directory \"{self.dest_path or '/'}\"")
        self._make_entry(parts, entry, reader)

    def _cpath(self, parts: tuple[str, ...]) -> str:
        return f"{self.dest_path}/{'/'.join(parts)}"

    def _dir(self, parts: tuple[str, ...], create: bool) -> int:
        if not parts:
            return self.root
        key = "/".join(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        try:
            fd = open_resolved(self.croot, self._cpath(parts), os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create:
                raise UnsafeArchive(f"{key}: no such directory") from None
            parent = self._dir(parts[:-1], create=True)
            try:
                os.mkdir(parts[-1], 0o700, dir_fd=parent)
            except FileExistsError:
                # A dangling symlink: dockerd's MkdirAll fails here too.
                raise ExtractError(f"mkdir {self._cpath(parts)}: file exists") from None
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
            os.fchmod(fd, 0o755)
        except NotADirectoryError:
            raise InvalidContent(f"{self._cpath(parts)}: not a directory") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EXDEV):
                raise UnsafeArchive(f"{self._cpath(parts)}: cannot resolve path") from None
            raise
        self._dirs[key] = fd
        return fd


class ContainerFS:
    """cp/export/diff on top of the ContainerService seams (resolve, get,
    mounted_rootfs, store)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    def _event(self, doc: dict[str, Any], action: str) -> None:
        self.svc.publish_event(doc, action)

    @contextlib.contextmanager
    def _root(self, ref: str) -> Iterator[tuple[dict[str, Any], str, int]]:
        with self.svc.mounted_rootfs(ref) as (doc, rootfs):
            root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield doc, rootfs, root_fd
            finally:
                os.close(root_fd)

    # -- HEAD / GET /containers/{id}/archive -----------------------------------------

    def stat_path(self, ref: str, path: str) -> PathStat:
        _check_path(path)
        with self._root(ref) as (doc, _rootfs, root_fd):
            mounted = _MountedFiles(doc)
            try:
                target = _resolve_target(root_fd, path, ref, mounted)
            finally:
                mounted.close()
            os.close(target.dir_fd)
            return target.stat

    def archive_path(self, ref: str, path: str) -> PathArchive:
        _check_path(path)
        stack = contextlib.ExitStack()
        try:
            doc, _rootfs, root_fd = stack.enter_context(self._root(ref))
            mounted = _MountedFiles(doc)
            stack.callback(mounted.close)
            target = _resolve_target(root_fd, path, ref, mounted)
            stack.callback(os.close, target.dir_fd)
        except BaseException:
            stack.close()
            raise
        self._event(doc, "archive-path")
        return PathArchive(stack, target, mounted)

    # -- PUT /containers/{id}/archive --------------------------------------------------

    def extract_to_dir(self, ref: str, path: str, body: BinaryIO, *,
                       no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        _check_path(path)
        with self._root(ref) as (doc, rootfs, root_fd):
            abs_path = clean_path(path)
            try:
                # Unlike GET, the last component is followed too: extracting "into" a
                # symlink to a directory is allowed (inside the container). O_PATH
                # first: opening a FIFO or device for reading could block or act.
                path_fd = open_resolved(root_fd, abs_path, linux.O_PATH)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise _not_found(path, ref) from None
                raise
            try:
                if not stat.S_ISDIR(os.fstat(path_fd).st_mode):
                    raise InvalidArgument("extraction point is not a directory")
                dest_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                                  dir_fd=path_fd)
            finally:
                os.close(path_fd)
            try:
                if doc.get("HostConfig", {}).get("ReadonlyRootfs"):
                    raise InvalidArgument("container rootfs is marked read-only")
                dest_path = _container_path_of(root_fd, dest_fd)
                if dest_path is None:
                    raise UnsafeArchive(f"{path}: resolves outside the container")
                chown = self._chown_to(doc, rootfs) if copy_uid_gid else None
                _extract(body, dest_fd, root_fd, dest_path, no_overwrite_dir_non_dir, chown)
            finally:
                os.close(dest_fd)
        self._event(doc, "extract-to-dir")

    @staticmethod
    def _chown_to(doc: dict[str, Any], rootfs: str) -> tuple[int, int] | None:
        user = (doc.get("Config") or {}).get("User") or ""
        if not user:
            return None  # dockerd keeps the archive's owners then
        from ...runtime.user import resolve_user
        u = resolve_user(rootfs, user)
        return u.uid, u.gid

    # -- GET /containers/{id}/export ---------------------------------------------------

    @contextlib.contextmanager
    def export(self, ref: str) -> Iterator[Callable[[BinaryIO], None]]:
        """Yields a writer of the whole merged rootfs as a tar (names relative, like
        ``docker export``); the rootfs stays mounted while the context is open."""
        with self.svc.mounted_rootfs(ref) as (doc, rootfs):
            self._event(doc, "export")

            def write(out: BinaryIO) -> None:
                write_tar_from_dir(rootfs, out, whiteouts="none")

            yield write

    # -- GET /containers/{id}/changes --------------------------------------------------

    def changes(self, ref: str) -> list[Change]:
        doc = self.svc.get(ref)
        upper = doc["GraphDriver"]["Data"]["UpperDir"]
        store = self.svc.store
        keys = store.layer_keys(store.config(doc["Image"]))
        # layer_keys lists the base layer first; overlay's lowerdir (and our lookup
        # order) wants the top-most first.
        lowers = [store.snapshots.path(k) for k in reversed(keys)]
        if not os.path.isdir(upper):
            return []
        return compute_changes(upper, lowers)


def _check_path(path: str) -> None:
    if not path:
        raise InvalidArgument("Path cannot be empty")
    if "\0" in path:
        raise InvalidArgument("path contains a NUL byte")


def _extract(body: BinaryIO, dest_fd: int, root_fd: int, dest_path: str, no_overwrite: bool,
             chown: tuple[int, int] | None) -> None:
    def on_member(entry: TarEntry) -> None:
        if chown is not None:
            entry.uid, entry.gid = chown

    stream = open_decompressed(body, _MAX_UPLOAD)
    extractor = _InRootExtractor(dest_fd, root_fd, dest_path, no_overwrite, on_member)
    try:
        extractor.run(TarReader(stream))
    except OSError as exc:
        raise ExtractError(f"error extracting the archive: {exc}") from None
    finally:
        extractor.close()
