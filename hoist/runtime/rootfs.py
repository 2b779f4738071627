"""Open files inside a container's root file system as if chrooted into it.

A container image is hostile input: ``/etc/passwd`` may be a symlink to
``/etc/shadow`` of the *host*, or to ``../../../../etc/passwd``. Resolving such a path
with ordinary ``open(rootfs + path)`` would read the host's file. Here every path
component is opened relative to a directory fd with ``O_NOFOLLOW``; symlinks are read
and resolved by us against the container's root (absolute targets restart at the root,
``..`` never climbs above it), with a hop limit like the kernel's.
"""
from __future__ import annotations

import errno
import os
import stat

__all__ = ["MAX_SYMLINK_HOPS", "open_root", "open_in_root", "read_file_in_root",
           "mkdirs_in_root"]

MAX_SYMLINK_HOPS = 40  # the kernel's MAXSYMLINKS


def open_root(rootfs: str) -> int:
    """A directory fd for ``rootfs`` (the caller closes it)."""
    return os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def open_in_root(root_fd: int, path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """Open ``path`` (interpreted inside the root ``root_fd``) and return a new fd.

    Intermediate symlinks are followed *within* the root; the final component is
    followed too unless ``flags`` contains ``O_NOFOLLOW`` (then a symlink there fails
    with ELOOP, or is opened itself with ``O_PATH``). ``O_CREAT`` creates the final
    component if it is missing. Raises OSError (ENOENT, ENOTDIR, ELOOP, ...).
    """
    nofollow_last = bool(flags & os.O_NOFOLLOW)
    pending = _split(path)
    pending.reverse()  # a stack: pop() gives the next component
    stack: list[int] = []  # fds of the directories walked into, below the root
    hops = 0

    def cur() -> int:
        return stack[-1] if stack else root_fd

    try:
        if not pending:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=root_fd)
        while pending:
            name = pending.pop()
            if name == "..":
                if stack:  # at the root, ".." is the root itself
                    os.close(stack.pop())
                continue
            last = not pending
            if last:
                try:
                    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur())
                except OSError as e:
                    if nofollow_last or e.errno not in (errno.ELOOP, errno.EEXIST, errno.ENOTDIR):
                        raise
                    target = _readlink(name, cur())
                    if target is None:
                        raise
                else:
                    # O_PATH|O_NOFOLLOW opens a symlink itself instead of failing.
                    if nofollow_last or not stat.S_ISLNK(os.fstat(fd).st_mode):
                        return fd
                    os.close(fd)
                    target = _readlink(name, cur())
                    if target is None:
                        raise OSError(errno.ENOENT, "symlink vanished", path)
            else:
                try:
                    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=cur())
                except OSError as e:
                    if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    target = _readlink(name, cur())
                    if target is None:
                        raise
                else:
                    stack.append(fd)
                    continue
            # A symlink: splice its target into the remaining path.
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            if target.startswith("/"):
                while stack:
                    os.close(stack.pop())
            parts = _split(target)
            if not parts and not pending:
                # A link to "/" (or "."): the result is the directory we are at.
                return os.open(".", flags & ~os.O_CREAT | os.O_CLOEXEC, dir_fd=cur())
            pending.extend(reversed(parts))
        # The path ended in ".." (or a link to a directory): open where we are.
        return os.open(".", flags & ~os.O_CREAT | os.O_CLOEXEC, dir_fd=cur())
    finally:
        for fd in stack:
            os.close(fd)


def _readlink(name: str, dir_fd: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def read_file_in_root(rootfs: str | int, path: str, limit: int = 32 << 20) -> bytes | None:
    """The contents of regular file ``path`` inside ``rootfs`` (a path or a root dir fd),
    or None if it does not exist. Refuses non-regular files (a FIFO would block, a
    device could be anything) and files larger than ``limit``."""
    root_fd = open_root(rootfs) if isinstance(rootfs, str) else rootfs
    try:
        try:
            fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            if st.st_size > limit:
                raise OSError(errno.EFBIG, "file too large", path)
            chunks = []
            total = 0
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                total += len(b)
                if total > limit:
                    raise OSError(errno.EFBIG, "file too large", path)
                chunks.append(b)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        if isinstance(rootfs, str):
            os.close(root_fd)


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755, uid: int | None = None,
                   gid: int | None = None) -> int:
    """``mkdir -p path`` inside the root (e.g. a container's WorkingDir); returns an
    O_RDONLY fd of the directory. Symlinks on the way are resolved inside the root, a
    dangling one gets its target created (inside the root), as Docker does. New
    directories get ``mode`` and, when given, ``uid``/``gid``."""
    pending = _split(path)
    done: list[str] = []
    hops = 0
    while pending:
        name = pending.pop(0)
        here = "/".join(done + [name])
        try:
            fd = open_in_root(root_fd, here, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            parent = open_in_root(root_fd, "/".join(done), os.O_RDONLY | os.O_DIRECTORY)
            try:
                try:
                    os.mkdir(name, mode, dir_fd=parent)
                except FileExistsError:
                    # A dangling symlink: create what it points to instead.
                    target = _readlink(name, parent)
                    if target is None:
                        raise
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                    if target.startswith("/"):
                        done = []
                    pending = _split(target) + pending
                    continue
                new = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=parent)
                try:
                    os.fchmod(new, mode)  # mkdir applied the umask; the caller chose a mode
                    if uid is not None or gid is not None:
                        os.fchown(new, -1 if uid is None else uid, -1 if gid is None else gid)
                finally:
                    os.close(new)
            finally:
                os.close(parent)
            done.append(name)
        else:
            os.close(fd)
            done.append(name)
    return open_in_root(root_fd, "/".join(done), os.O_RDONLY | os.O_DIRECTORY)
