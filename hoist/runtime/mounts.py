"""The container's root filesystem, built in its new mount namespace (child side).

Every mount destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT):
symlinks in the image are followed as if the rootfs were "/", so a hostile image can
never turn a destination into a host path; the mount then targets /proc/self/fd/N, the
very inode resolved (no second lookup to race). proc and sysfs are never mounted onto
a symlink at all (runc's CVE-2019-19921).
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Any

from .. import linux
from ..errors import InvalidArgument

_FLAGS: dict[str, tuple[bool, int]] = {  # option -> (clear?, flag)
    "ro": (False, linux.MS_RDONLY), "rw": (True, linux.MS_RDONLY),
    "nosuid": (False, linux.MS_NOSUID), "suid": (True, linux.MS_NOSUID),
    "nodev": (False, linux.MS_NODEV), "dev": (True, linux.MS_NODEV),
    "noexec": (False, linux.MS_NOEXEC), "exec": (True, linux.MS_NOEXEC),
    "sync": (False, linux.MS_SYNCHRONOUS), "async": (True, linux.MS_SYNCHRONOUS),
    "dirsync": (False, linux.MS_DIRSYNC), "remount": (False, linux.MS_REMOUNT),
    "mand": (False, linux.MS_MANDLOCK), "nomand": (True, linux.MS_MANDLOCK),
    "atime": (True, linux.MS_NOATIME), "noatime": (False, linux.MS_NOATIME),
    "diratime": (True, linux.MS_NODIRATIME), "nodiratime": (False, linux.MS_NODIRATIME),
    "relatime": (False, linux.MS_RELATIME), "norelatime": (True, linux.MS_RELATIME),
    "strictatime": (False, linux.MS_STRICTATIME), "nostrictatime": (True, linux.MS_STRICTATIME),
    "bind": (False, linux.MS_BIND), "rbind": (False, linux.MS_BIND | linux.MS_REC),
    "defaults": (False, 0),
}
_PROPAGATION = {
    "private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC,
    "shared": linux.MS_SHARED, "rshared": linux.MS_SHARED | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE, "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
_ST_TO_MS = ((os.ST_RDONLY, linux.MS_RDONLY), (os.ST_NOSUID, linux.MS_NOSUID),
             (os.ST_NODEV, linux.MS_NODEV), (os.ST_NOEXEC, linux.MS_NOEXEC),
             (os.ST_NOATIME, linux.MS_NOATIME), (os.ST_NODIRATIME, linux.MS_NODIRATIME),
             (os.ST_RELATIME, linux.MS_RELATIME))
DEFAULT_DEVICES = (  # name, type, major, minor, mode: what runc always creates
    ("null", "c", 1, 3, 0o666), ("zero", "c", 1, 5, 0o666), ("full", "c", 1, 7, 0o666),
    ("random", "c", 1, 8, 0o666), ("urandom", "c", 1, 9, 0o666), ("tty", "c", 5, 0, 0o666),
)
_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


def parse_options(options: list[str]) -> tuple[int, list[int], str]:
    """OCI mount options -> (flags, propagation flags, data string)."""
    flags = 0
    prop: list[int] = []
    data: list[str] = []
    for o in options:
        if o in _FLAGS:
            clear, f = _FLAGS[o]
            flags = flags & ~f if clear else flags | f
        elif o in _PROPAGATION:
            prop.append(_PROPAGATION[o])
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def open_in_root(rootfd: int, path: str, flags: int = 0, nofollow: bool = False) -> int:
    return linux.openat2(rootfd, path.lstrip("/") or ".", linux.O_PATH | flags |
                         (os.O_NOFOLLOW if nofollow else 0), _RESOLVE)


def mkdir_in_root(rootfd: int, path: str, file: bool = False) -> int:
    """Create ``path`` (dirs, and a file at the end when ``file``) inside the root and
    return an O_PATH fd on it; every step resolved inside the root."""
    parts = [p for p in path.split("/") if p and p != "."]
    try:
        return open_in_root(rootfd, "/".join(parts))
    except FileNotFoundError:
        pass
    cur = os.dup(rootfd)
    try:
        for i, name in enumerate(parts):
            if name == "..":
                raise InvalidArgument(f"mount destination {path!r} contains ..")
            last = i == len(parts) - 1
            try:
                nxt = open_in_root(rootfd, "/".join(parts[:i + 1]))
            except FileNotFoundError:
                # ``cur`` is an O_PATH fd on a directory resolved inside the root;
                # mkdirat/openat on a single name cannot leave it.
                if last and file:
                    fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                                 dir_fd=cur)
                    os.close(fd)
                else:
                    try:
                        os.mkdir(name, 0o755, dir_fd=cur)
                    except FileExistsError:
                        pass
                nxt = open_in_root(rootfd, "/".join(parts[:i + 1]))
            os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        os.close(cur)
        raise


def _existing_flags(path: str) -> int:
    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in _ST_TO_MS:
        if f & st:
            out |= ms
    return out


# What may be mounted over inside /proc (lxcfs-style files), as runc allows.
_PROC_ALLOWED = frozenset({"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                           "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
                           "/proc/net/dev", "/proc/sys/kernel/ns_last_pid"})


def _check_proc_mount(dest: str, typ: str) -> None:
    """Nothing but procfs itself (and a few plain files) goes on or under /proc: a
    mount there could cover or redirect what the runtime relies on (CVE-2019-19921)."""
    norm = os.path.normpath("/" + dest.lstrip("/"))
    if norm == "/proc":
        if typ != "proc":
            raise InvalidArgument(f"{dest!r} cannot be mounted because it is not of type proc")
    elif norm.startswith("/proc/") and norm not in _PROC_ALLOWED:
        raise InvalidArgument(f"{dest!r} cannot be mounted because it is inside /proc")


def _mount_one(rootfd: int, m: dict[str, Any], cgroup: Any, cgroupns: bool) -> None:
    dest = m.get("destination") or ""
    if not dest.startswith("/"):
        raise InvalidArgument(f"mount destination {dest!r} must be absolute")
    typ = m.get("type") or ""
    _check_proc_mount(dest, typ)
    src = m.get("source") or typ or "none"
    flags, prop, data = parse_options(list(m.get("options") or []))
    is_bind = typ == "bind" or bool(flags & linux.MS_BIND)
    if is_bind:
        src_is_dir = os.path.isdir(src)
        if not os.path.exists(src):
            raise InvalidArgument(f"bind source path does not exist: {src}")
    else:
        src_is_dir = True
    if typ in ("proc", "sysfs"):
        # Refuse a symlinked target outright: never let the image redirect procfs.
        try:
            fd = open_in_root(rootfd, dest, nofollow=True)
        except FileNotFoundError:
            fd = mkdir_in_root(rootfd, dest)
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidArgument(f"mount destination {dest} is a symlink (refused for {typ})")
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidArgument(f"mount destination {dest} for {typ} is not a directory")
    else:
        fd = mkdir_in_root(rootfd, dest, file=not src_is_dir)
    try:
        target = _fdpath(fd)
        if typ == "cgroup":
            _mount_cgroup(target, flags, cgroup, cgroupns)
        elif is_bind:
            linux.mount(src, target, "", linux.MS_BIND | (flags & linux.MS_REC))
        else:
            linux.mount(src, target, typ, flags, data or None)
    finally:
        os.close(fd)
    extra = flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT)
    if (is_bind and extra) or prop or typ == "cgroup":
        # The fd still names the directory *under* the new mount: resolve again (still
        # inside the root) to reach the mount itself.
        fd = open_in_root(rootfd, dest)
        try:
            target = _fdpath(fd)
            if typ == "cgroup":
                _populate_cgroup(target, flags, cgroup, cgroupns)
            elif is_bind and extra:
                # A bind ignores flags on creation: remount to apply them, keeping the
                # flags the source mount has (nosuid/nodev locked there stay).
                linux.mount("", target, "", linux.MS_BIND | linux.MS_REMOUNT | extra
                            | _existing_flags(target))
            for p in prop:
                linux.mount("", target, "", p)
        finally:
            os.close(fd)


def _mount_cgroup(target: str, flags: int, cgroup: Any, cgroupns: bool) -> None:
    """/sys/fs/cgroup: v2 mounts cgroup2 (its root is the namespace's, i.e. the
    container's cgroup) or, without a cgroup namespace, binds the container's own
    directory so the host tree stays out of sight; v1 gets a tmpfs with the container's
    directory of each hierarchy bound in (as runc does)."""
    base = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    if cgroup is None or (cgroup.layout.unified and cgroupns):
        linux.mount("cgroup2", target, "cgroup2", base | flags)
    elif cgroup.layout.unified:
        linux.mount(cgroup.v2, target, "", linux.MS_BIND)
    else:
        linux.mount("tmpfs", target, "tmpfs", base, "mode=755")


def _populate_cgroup(target: str, flags: int, cgroup: Any, cgroupns: bool) -> None:
    ro = flags & linux.MS_RDONLY
    base = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    if cgroup is None or (cgroup.layout.unified and cgroupns):
        return
    if cgroup.layout.unified:
        linux.mount("", target, "", linux.MS_BIND | linux.MS_REMOUNT | base | ro)
        return
    tfd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        def bind(src: str, name: str) -> None:
            os.mkdir(name, 0o755, dir_fd=tfd)
            sub = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=tfd)
            try:
                linux.mount(src, _fdpath(sub), "", linux.MS_BIND | linux.MS_REC)
            finally:
                os.close(sub)
            sub = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=tfd)
            try:
                linux.mount("", _fdpath(sub), "", linux.MS_BIND | linux.MS_REMOUNT | base | ro)
            finally:
                os.close(sub)
        seen: set[str] = set()
        for ctrl, mnt in cgroup.layout.v1.items():  # the host's order, as runc binds them
            d = cgroup.v1[ctrl]
            name = os.path.basename(mnt)
            if name in seen:
                continue
            seen.add(name)
            bind(d, name)
            if "," in name:
                for part in name.split(","):
                    try:
                        os.symlink(name, part, dir_fd=tfd)
                    except FileExistsError:
                        pass
        # (hybrid: the controller-less v2 tree is not shown inside, as with runc)
    finally:
        os.close(tfd)
    # The tmpfs itself stays rw, as runc (1.1, Debian 12's) leaves it and so Docker
    # shows it: each hierarchy bound in is read-only, the tmpfs is the container's own.


def _make_devices(rootfd: int, spec: dict[str, Any]) -> None:
    lx = spec.get("linux") or {}
    devs: dict[str, tuple[str, int, int, int, int, int]] = {}
    for name, t, ma, mi, mode in DEFAULT_DEVICES:
        devs["/dev/" + name] = (t, ma, mi, mode, 0, 0)
    for d in lx.get("devices") or []:
        p = d.get("path") or ""
        if not p.startswith("/dev/"):
            raise InvalidArgument(f"device path {p!r} must be under /dev")
        devs[p] = (d.get("type", "c"), int(d.get("major", 0)), int(d.get("minor", 0)),
                   int(d.get("fileMode", 0o666)), int(d.get("uid", 0)), int(d.get("gid", 0)))
    for p, (t, ma, mi, mode, uid, gid) in devs.items():
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(t)
        if kind is None:
            raise InvalidArgument(f"device {p}: unknown type {t!r}")
        parent, name = os.path.split(p)
        pfd = mkdir_in_root(rootfd, parent)
        try:
            try:
                os.unlink(name, dir_fd=pfd)
            except (FileNotFoundError, IsADirectoryError):
                pass
            try:
                os.mknod(name, kind | (mode & 0o7777), os.makedev(ma, mi), dir_fd=pfd)
            except PermissionError:
                # No mknod here (a user namespace, a nodev mount): bind the host's node.
                fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd)
                os.close(fd)
                fd = linux.openat2(pfd, name, linux.O_PATH | os.O_NOFOLLOW, _RESOLVE)
                try:
                    linux.mount(p, _fdpath(fd), "", linux.MS_BIND)
                finally:
                    os.close(fd)
                continue
            fd = linux.openat2(pfd, name, linux.O_PATH | os.O_NOFOLLOW, _RESOLVE)
            try:
                os.chmod(_fdpath(fd), mode & 0o7777)  # mknod obeys the umask; chmod does not
                os.chown(_fdpath(fd), uid, gid)
            finally:
                os.close(fd)
        finally:
            os.close(pfd)


def _dev_symlinks(rootfd: int) -> None:
    links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    dfd = mkdir_in_root(rootfd, "/dev")
    try:
        for target, name in links:
            try:
                os.symlink(target, name, dir_fd=dfd)
            except FileExistsError:
                if name == "ptmx":
                    # an image's /dev/ptmx node would bypass the new devpts instance
                    try:
                        os.unlink(name, dir_fd=dfd)
                        os.symlink(target, name, dir_fd=dfd)
                    except OSError:
                        pass
    finally:
        os.close(dfd)


def setup_rootfs(rootfs: str, spec: dict[str, Any], cgroup: Any) -> None:
    lx = spec.get("linux") or {}
    prop = _PROPAGATION.get(lx.get("rootfsPropagation") or "", linux.MS_SLAVE | linux.MS_REC)
    linux.mount("", "/", "", prop | linux.MS_REC)
    # pivot_root refuses a new root whose parent mount is shared; and a private parent
    # keeps the bind below from propagating anywhere (runc's rootfsParentMountPrivate).
    parent = _mount_point_of(rootfs)
    if parent[1]:
        linux.mount("", parent[0], "", linux.MS_PRIVATE)
    linux.mount(rootfs, rootfs, "", linux.MS_BIND | linux.MS_REC)
    cgroupns = any(ns.get("type") == "cgroup" for ns in lx.get("namespaces") or [])
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in spec.get("mounts") or []:
            _mount_one(rootfd, m, cgroup, cgroupns)
        _make_devices(rootfd, spec)
        _dev_symlinks(rootfd)
    finally:
        os.close(rootfd)
    # pivot_root(".", "."): the old root ends up stacked on the new one; detach it.
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    newroot = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(newroot)
        linux.pivot_root(".", ".")
        os.fchdir(oldroot)
        linux.mount("", ".", "", linux.MS_SLAVE | linux.MS_REC)
        linux.umount(".", linux.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(oldroot)
        os.close(newroot)
    if lx.get("rootfsPropagation"):
        # applies to the current "/", so only meaningful after the pivot
        linux.mount("", "/", "", prop)


def _mount_point_of(path: str) -> tuple[str, bool]:
    """(mount point holding ``path``, whether that mount is shared), from mountinfo."""
    best, shared = "/", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ", 1)[0].split()
            mp = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, shared = mp, any(x.startswith("shared:") for x in fields[6:])
    return best, shared


def write_sysctl(key: str, value: str) -> None:
    rel = key.replace(".", "/")
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise InvalidArgument(f"invalid sysctl {key!r}")
    rootfd = os.open("/proc/sys", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = linux.openat2(rootfd, rel, os.O_WRONLY, linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS)
    finally:
        os.close(rootfd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def finalize_rootfs(spec: dict[str, Any]) -> None:
    """After pivot_root: read-only paths, masked paths, read-only root."""
    lx = spec.get("linux") or {}
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for p in lx.get("readonlyPaths") or []:
            try:
                fd = open_in_root(rootfd, p)
            except FileNotFoundError:
                continue
            try:
                t = _fdpath(fd)
                linux.mount(t, t, "", linux.MS_BIND | linux.MS_REC)
            finally:
                os.close(fd)
            # re-resolve: the bind is stacked on top, the old fd points below it
            fd = open_in_root(rootfd, p)
            try:
                t = _fdpath(fd)
                linux.mount("", t, "", linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
                            | _existing_flags(t))
            finally:
                os.close(fd)
        for p in lx.get("maskedPaths") or []:
            try:
                fd = open_in_root(rootfd, p)
            except FileNotFoundError:
                continue
            try:
                t = _fdpath(fd)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    linux.mount("tmpfs", t, "tmpfs", linux.MS_RDONLY)
                else:
                    linux.mount("/dev/null", t, "", linux.MS_BIND)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
            finally:
                os.close(fd)
    finally:
        os.close(rootfd)
    if (spec.get("root") or {}).get("readonly"):
        linux.mount("", "/", "", linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _existing_flags("/"))
