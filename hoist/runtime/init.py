"""The container side of hoist's runtime: what runs in the forked child.

``prepare`` (in the monitor, before the fork) turns the spec into a Plan: pipes,
compiled seccomp filter, capability masks, rlimits, cgroup files. ``run_init`` and
``run_exec`` (in the child) only make syscalls. Every module they use is imported here,
at load time, so nothing is imported after the fork.
"""
from __future__ import annotations

import errno
import fcntl
import os
import resource
import _signal
import signal
import socket
import stat
import struct
import termios
from dataclasses import dataclass
from typing import Any

from .. import linux
from ..errors import CannotExecute, CommandNotFound, HoistError, InvalidArgument
from . import mounts
from .base import Stdio
from .cgroups import Cgroup
from .seccomp_filter import Filter, compile_filter

CAPS = ("CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL "
        "CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE "
        "CAP_NET_BROADCAST CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE "
        "CAP_SYS_RAWIO CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT "
        "CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE "
        "CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN "
        "CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF "
        "CAP_CHECKPOINT_RESTORE").split()
CAP_BITS = {name: i for i, name in enumerate(CAPS)}

_RLIMITS = {"RLIMIT_" + n: getattr(resource, "RLIMIT_" + n) for n in (
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS",
    "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME") if hasattr(resource, "RLIMIT_" + n)}

# Namespaces entered with setns/unshare in the child, in runc's order (user first, mount
# last so /proc paths of the target stay reachable until then).
_NS_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "mount")

def _caps_mask(names: Any) -> int:
    mask = 0
    for n in names or []:
        bit = CAP_BITS.get(n)
        if bit is None:
            continue  # unknown to this runtime: runc ignores unknown caps with a warning
        mask |= 1 << bit
    return mask


@dataclass
class Plan:
    spec: dict[str, Any]
    rootfs: str
    exec_mode: bool
    stdio: Stdio
    procs_files: list[str]
    ns_fds: list[tuple[int, int]]          # (fd, CLONE flag) to setns into
    unshare_flags: int
    seccomp: Filter | None
    caps: tuple[int, int, int, int, int]   # bounding, effective, permitted, inheritable, ambient
    rlimits: list[tuple[int, int, int]]
    start_r: int
    start_w: int
    err_r: int
    err_w: int
    console_parent: socket.socket | None = None
    console_child_fd: int = -1
    cgroup: Cgroup | None = None

    # -- parent side -------------------------------------------------------------------
    def close_child_ends(self) -> None:
        for fd in (self.err_w, self.start_r):
            _close(fd)
        for fd, _ in self.ns_fds:
            _close(fd)
        self.ns_fds = []
        if self.console_child_fd >= 0:
            _close(self.console_child_fd)
            self.console_child_fd = -1
        if self.seccomp is not None:
            self.seccomp.release()
            self.seccomp = None

    def close_parent(self) -> None:
        self.close_child_ends()
        for fd in (self.err_r, self.start_w):
            _close(fd)
        if self.console_parent is not None:
            self.console_parent.close()
            self.console_parent = None

    def receive_console(self) -> int | None:
        assert self.console_parent is not None
        try:
            _, fds, _, _ = socket.recv_fds(self.console_parent, 16, 1)
        finally:
            self.console_parent.close()
            self.console_parent = None
        return fds[0] if fds else None

    # -- child side --------------------------------------------------------------------
    def report_error(self, e: BaseException) -> None:
        if isinstance(e, CommandNotFound):
            code = b"127"
        elif isinstance(e, CannotExecute):
            code = b"126"
        elif isinstance(e, InvalidArgument):
            code = b"400"
        else:
            code = b"500"
        msg = str(e) if isinstance(e, HoistError) else f"{type(e).__name__}: {e}"
        try:
            os.write(self.err_w, b"E" + code + b"\0" + msg.encode(errors="replace"))
        except OSError:
            pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# sysctl prefix -> the namespace that makes writing it container-local (runc's list)
_SYSCTL_NS = (("net.", "network"), ("kernel.msgmax", "ipc"), ("kernel.msgmnb", "ipc"),
              ("kernel.msgmni", "ipc"), ("kernel.sem", "ipc"), ("kernel.shmall", "ipc"),
              ("kernel.shmmax", "ipc"), ("kernel.shmmni", "ipc"), ("kernel.shm_rmid_forced", "ipc"),
              ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"), ("kernel.domainname", "uts"))


def _check_namespaced(spec: dict[str, Any], wanted: dict[str, str]) -> None:
    """Refuse what would change the HOST: settings without the namespace that scopes them."""
    errs = []
    if "user" in wanted:
        errs.append("user namespaces are not supported by the hoist runtime yet")
    if "time" in wanted and not wanted["time"]:
        # a new time namespace only takes effect for children of the unsharer
        errs.append("new time namespaces are not supported by the hoist runtime yet")
    if "mount" not in wanted:
        errs.append("a mount namespace is required (mounts, masks and pivot_root are per namespace)")
    if (spec.get("hostname") or spec.get("domainname")) and "uts" not in wanted:
        errs.append("unable to set hostname or domainname without a private UTS namespace")
    for key in (spec.get("linux") or {}).get("sysctl") or {}:
        ns = next((n for prefix, n in _SYSCTL_NS if key == prefix or key.startswith(prefix)), None)
        if ns is None:
            errs.append(f"sysctl {key!r} is not namespaced: it would change the host")
        elif ns not in wanted:
            errs.append(f"sysctl {key!r} needs a private {ns} namespace")
    if errs:
        raise InvalidArgument("; ".join(errs))


def prepare(spec: dict[str, Any], bundle: str, cg: Cgroup, stdio: Stdio, exec_mode: bool,
            target_pid: int = 0, cache_dir: str | None = None) -> Plan:
    proc = spec.get("process") or {}
    args = proc.get("args")
    if not args or not isinstance(args, list):
        raise InvalidArgument("process.args must be a non-empty list")
    lx = spec.get("linux") or {}
    root = spec.get("root") or {}
    rootfs = root.get("path") or "rootfs"
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not exec_mode and not os.path.isdir(rootfs):
        raise InvalidArgument(f"rootfs {rootfs} is not a directory")
    ns_fds: list[tuple[int, int]] = []
    flags = 0
    wanted = {ns.get("type"): ns.get("path") or "" for ns in lx.get("namespaces") or []}
    for t in _NS_ORDER:
        if t not in wanted:
            continue
        flag, name = linux.NAMESPACES[t]
        if exec_mode:
            path = f"/proc/{target_pid}/ns/{name}"
            if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue  # same as ours (host namespace): nothing to join
            ns_fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag))
        elif wanted[t]:
            ns_fds.append((os.open(wanted[t], os.O_RDONLY | os.O_CLOEXEC), flag))
        else:
            flags |= flag
    if not exec_mode:
        _check_namespaced(spec, wanted)
    caps = proc.get("capabilities") or {}
    capt = (_caps_mask(caps.get("bounding")), _caps_mask(caps.get("effective")),
            _caps_mask(caps.get("permitted")), _caps_mask(caps.get("inheritable")),
            _caps_mask(caps.get("ambient")))
    rl = []
    for r in proc.get("rlimits") or []:
        t = _RLIMITS.get(r.get("type", ""))
        if t is None:
            raise InvalidArgument(f"unknown rlimit {r.get('type')!r}")
        rl.append((t, int(r.get("soft", 0)), int(r.get("hard", 0))))
    filt = None
    if lx.get("seccomp"):
        filt = compile_filter(lx["seccomp"], cache_dir)
    start_r, start_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    plan = Plan(spec=spec, rootfs=rootfs, exec_mode=exec_mode, stdio=stdio,
                procs_files=cg.procs_files(), ns_fds=ns_fds, unshare_flags=flags, seccomp=filt,
                caps=capt, rlimits=rl, start_r=start_r, start_w=start_w, err_r=err_r, err_w=err_w,
                cgroup=cg)
    if stdio.terminal:
        plan.console_parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        plan.console_child_fd = child.detach()
    return plan


# ------------------------------------------------------------------------------------
# child side


def _setup_stdio(plan: Plan) -> None:
    """Put the caller's fds on 0-2 and close every other fd except our pipes."""
    def lift(fd: int) -> int:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) if fd < 3 else fd
    # Anything we keep may sit on 0-2 (a monitor started with closed stdio): lift it.
    plan.err_w = lift(plan.err_w)
    plan.start_r = lift(plan.start_r)
    plan.ns_fds = [(lift(fd), fl) for fd, fl in plan.ns_fds]
    if plan.console_child_fd >= 0:
        plan.console_child_fd = lift(plan.console_child_fd)
    src = [plan.stdio.stdin, plan.stdio.stdout, plan.stdio.stderr]
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) if fd is not None else
             os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC) for fd in src]
    for i, fd in enumerate(moved):
        os.dup2(fd, i, inheritable=True)
    kept = sorted({plan.err_w, plan.start_r, plan.console_child_fd, *(fd for fd, _ in plan.ns_fds)} - {-1})
    lo = 3
    for fd in kept:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 0x7FFFFFFF)


def _join_cgroup(plan: Plan) -> None:
    for f in plan.procs_files:
        fd = os.open(f, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _enter_namespaces(plan: Plan) -> None:
    for fd, flag in plan.ns_fds:
        linux.setns(fd, flag)
        os.close(fd)
    plan.ns_fds = []
    if plan.unshare_flags:
        linux.unshare(plan.unshare_flags)
        if plan.unshare_flags & linux.CLONE_NEWNET:
            _loopback_up()


_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """A new network namespace starts with lo down; runc brings it up (its "loopback"
    network), and programs expect 127.0.0.1 to work even with --network none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", req)[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _setup_terminal(plan: Plan, uid: int) -> None:
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, linux.TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, linux.TIOCGPTN, b"\0\0\0\0"))[0]
    slave_path = f"/dev/pts/{n}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    size = plan.spec["process"].get("consoleSize") or {}
    if size.get("height") or size.get("width"):
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", int(size.get("height", 0)), int(size.get("width", 0)), 0, 0))
    if not plan.exec_mode:
        # /dev/console is the container's terminal (what runc does): a bind of the
        # slave onto a file in the /dev tmpfs this init just built.
        try:
            fd = os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            os.close(fd)
            linux.mount(slave_path, "/dev/console", "", linux.MS_BIND)
        except OSError:
            pass  # a read-only /dev (no tmpfs in the spec): no console, like runc's warning
    try:
        os.fchown(slave, uid, -1)
    except OSError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=plan.console_child_fd)
    socket.send_fds(sock, [b"c"], [master])
    os.close(master)
    sock.close()
    plan.console_child_fd = -1
    os.setsid()
    fcntl.ioctl(slave, linux.TIOCSCTTY, 0)
    for i in range(3):
        os.dup2(slave, i, inheritable=True)
    os.close(slave)


def _apply_process(plan: Plan) -> tuple[list[str], dict[str, str]]:
    """User, capabilities, no-new-privs, seccomp, cwd. Returns (argv, env)."""
    proc = plan.spec["process"]
    user = proc.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    groups = [int(g) for g in user.get("additionalGids") or []]
    nnp = bool(proc.get("noNewPrivileges"))
    bounding, eff, perm, inh, amb = plan.caps
    if "umask" in user and user["umask"] is not None:
        os.umask(int(user["umask"]))
    else:
        os.umask(0o022)
    last = linux.cap_last()
    for c in range(last + 1):
        if not bounding & (1 << c):
            try:
                linux.prctl(linux.PR_CAPBSET_DROP, c)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
    cwd = proc.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"process.cwd {cwd!r} must be absolute")
    cwd_done = False
    try:
        os.chdir(cwd)
        cwd_done = True
    except PermissionError:
        pass  # retried as the user: root-squashed NFS and 0700 homes
    except FileNotFoundError:
        raise HoistError(f"chdir to cwd (\"{cwd}\") set in config.json failed: no such file or directory") from None
    except NotADirectoryError:
        raise HoistError(f"chdir to cwd (\"{cwd}\") set in config.json failed: not a directory") from None
    if plan.seccomp is not None and not nnp:
        # Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is held.
        plan.seccomp.load()
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    linux.capset(eff, perm, inh)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    for c in range(last + 1):
        if amb & (1 << c):
            linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, c)
    if not cwd_done:
        try:
            os.chdir(cwd)
        except OSError as e:
            raise HoistError(f"chdir to cwd (\"{cwd}\") set in config.json failed: "
                             f"{os.strerror(e.errno or 0).lower()}") from None
    if nnp:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if plan.seccomp is not None and nnp:
        plan.seccomp.load()
    env: dict[str, str] = {}
    for kv in proc.get("env") or []:
        k, sep, v = kv.partition("=")
        if sep:
            env[k] = v
    return list(proc["args"]), env


def lookup(name: str, env: dict[str, str]) -> str:
    """Go's exec.LookPath inside the container (runc uses it): errors as Docker shows them."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise CommandNotFound(f'exec: "{name}": stat {name}: {os.strerror(e.errno or 0).lower()}') from None
        # a directory reads "permission denied" too: what runc (Go's LookPath) and so
        # Docker print
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise CannotExecute(f'exec: "{name}": permission denied')
        return name
    for d in env.get("PATH", "").split(":"):
        p = os.path.join(d or ".", name)
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return p
    raise CommandNotFound(f'exec: "{name}": executable file not found in $PATH')


def _execve(plan: Plan, args: list[str], env: dict[str, str]) -> None:
    path = lookup(args[0], env)
    try:
        os.execve(path, args, env)
    except OSError as e:
        msg = f"exec {path}: {os.strerror(e.errno or 0).lower()}"
        if e.errno == errno.ENOENT:
            raise CommandNotFound(msg) from None
        raise CannotExecute(msg) from None


def _exit_with(plan: Plan, e: BaseException) -> None:
    plan.report_error(e)
    os._exit(127 if isinstance(e, CommandNotFound) else 126 if isinstance(e, CannotExecute) else 1)


def _reset_signals() -> None:
    """Default dispositions, nothing blocked: execve keeps ignored signals ignored and
    the mask as is, and the monitor is python (SIGPIPE and SIGXFSZ ignored) with
    whatever its loop blocks or handles. The container must not inherit any of it."""
    # _signal's own functions: signal's wrap every result in an enum, for nothing here.
    for sig in _SIGNALS:
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


_SIGNALS = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))


def run_init(plan: Plan) -> None:
    """The container's pid 1 until execve. Never returns."""
    _reset_signals()
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    _join_cgroup(plan)
    _setup_stdio(plan)
    _enter_namespaces(plan)
    spec = plan.spec
    lx = spec.get("linux") or {}
    proc = spec["process"]
    mounts.setup_rootfs(plan.rootfs, spec, plan.cgroup)
    for key, value in (lx.get("sysctl") or {}).items():
        mounts.write_sysctl(key, str(value))
    mounts.finalize_rootfs(spec)
    if spec.get("hostname"):
        linux.sethostname(spec["hostname"])
    if spec.get("domainname"):
        linux.setdomainname(spec["domainname"])
    for t, soft, hard in plan.rlimits:
        resource.setrlimit(t, (soft, hard))
    if proc.get("oomScoreAdj") is not None:
        _set_oom_score_adj(int(proc["oomScoreAdj"]))
    user = proc.get("user") or {}
    if plan.console_child_fd >= 0:
        _setup_terminal(plan, int(user.get("uid", 0)))
    else:
        os.setsid()
    args, env = _apply_process(plan)
    os.write(plan.err_w, b"R")
    try:
        got = os.read(plan.start_r, 1)
    except OSError:
        got = b""
    if not got:
        os._exit(1)  # the monitor went away before start
    os.close(plan.start_r)
    try:
        _execve(plan, args, env)
    except BaseException as e:  # noqa: BLE001
        _exit_with(plan, e)


def run_exec(plan: Plan) -> None:
    """A process joining a running container (docker exec). Never returns."""
    # Non-dumpable until execve: nothing in the container may ptrace us or open our
    # /proc/<pid>/exe (the host python) -- CVE-2019-5736.
    _reset_signals()
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    _join_cgroup(plan)
    _setup_stdio(plan)
    _enter_namespaces(plan)
    os.chdir("/")
    proc = plan.spec["process"]
    for t, soft, hard in plan.rlimits:
        resource.setrlimit(t, (soft, hard))
    user = proc.get("user") or {}
    if plan.console_child_fd >= 0:
        _setup_terminal(plan, int(user.get("uid", 0)))
    else:
        os.setsid()
    args, env = _apply_process(plan)
    try:
        _execve(plan, args, env)
    except BaseException as e:  # noqa: BLE001
        _exit_with(plan, e)


def _set_oom_score_adj(v: int) -> None:
    with open("/proc/self/oom_score_adj", "r+") as f:
        if int(f.read()) == v:
            return
        f.seek(0)
        f.write(str(v))
