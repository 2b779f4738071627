"""Docker's default seccomp policy, as hoist's own data.

The policy: every system call fails with EPERM unless a rule below allows it. Most rules
are unconditional; some depend on the container's capabilities (a container given
CAP_SYS_ADMIN may also mount, unshare, ...), on the CPU architecture, or on the kernel
version. :func:`hoist.runtime.seccomp.render` turns these rules into an OCI
``linux.seccomp`` object for one container.

The syscall names are facts about Docker's behaviour (its documented default profile,
as of Docker 25+, which no longer allows io_uring); their grouping here is ours.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "Arg", "DEFAULT_ACTION", "DEFAULT_ERRNO", "SUB_ARCHES", "DEFAULT_RULES"]


@dataclass(frozen=True)
class Arg:
    """One argument comparison (OCI ``linux.seccomp.syscalls[].args[]``)."""
    index: int
    value: int
    op: str                     # SCMP_CMP_*
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """``names`` get ``action`` when every condition holds.

    ``caps``: all must be in the container's bounding set; ``not_caps``: none may be.
    ``arches``/``not_arches``: Go-style architecture names (amd64, arm64, ...).
    """
    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    args: tuple[Arg, ...] = ()
    errno: int | None = None
    caps: tuple[str, ...] = ()
    not_caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    not_arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


DEFAULT_ACTION = "SCMP_ACT_ERRNO"
DEFAULT_ERRNO = 1  # EPERM

# Native seccomp architecture -> the compat ABIs a process on it can also use.
SUB_ARCHES: dict[str, tuple[str, ...]] = {
    "SCMP_ARCH_X86_64": ("SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "SCMP_ARCH_AARCH64": ("SCMP_ARCH_ARM",),
    "SCMP_ARCH_MIPS64": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "SCMP_ARCH_MIPS64N32": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "SCMP_ARCH_MIPSEL64": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "SCMP_ARCH_MIPSEL64N32": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "SCMP_ARCH_S390X": ("SCMP_ARCH_S390",),
    "SCMP_ARCH_RISCV64": (),
}


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted(set(text.split())))


# Unconditionally allowed, grouped by what they are for (the grouping is only for
# reading; they all become one rule).
_FILES = """
access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
chown chown32 fchown fchown32 fchownat lchown lchown32 creat open openat openat2 close
close_range dup dup2 dup3 fcntl fcntl64 flock read readv pread64 preadv preadv2 write
writev pwrite64 pwritev pwritev2 lseek _llseek stat stat64 fstat fstat64 fstatat64
newfstatat lstat lstat64 statx statfs statfs64 fstatfs fstatfs64 truncate truncate64
ftruncate ftruncate64 fallocate fadvise64 fadvise64_64 readahead fsync fdatasync sync
syncfs sync_file_range mkdir mkdirat mknod mknodat rmdir rename renameat renameat2
link linkat symlink symlinkat unlink unlinkat readlink readlinkat getdents getdents64
utime utimes utimensat utimensat_time64 futimesat umask name_to_handle_at
copy_file_range sendfile sendfile64 splice tee vmsplice cachestat
getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr
flistxattr removexattr lremovexattr fremovexattr
inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
"""
_MEMORY = """
brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall
munlock munlockall remap_file_pages membarrier memfd_create memfd_secret
pkey_alloc pkey_free pkey_mprotect map_shadow_stack
"""
_PROCESS = """
execve execveat exit exit_group fork vfork wait4 waitid waitpid kill tkill tgkill
getpid getppid gettid getpgid getpgrp setpgid getsid setsid getuid getuid32 geteuid
geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32 getresgid
getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32
setregid setregid32 setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32
setfsgid setfsgid32 setgroups setgroups32 capget capset prctl getpriority setpriority
getrlimit setrlimit ugetrlimit prlimit64 getrusage times sysinfo uname
sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam
sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max
sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64 sched_yield
getcpu ioprio_get ioprio_set set_tid_address set_robust_list get_robust_list
get_thread_area set_thread_area rseq restart_syscall seccomp getrandom
pidfd_open pidfd_send_signal process_mrelease landlock_add_rule
landlock_create_ruleset landlock_restrict_self
futex futex_time64 futex_waitv futex_wait futex_wake futex_requeue
"""
_SIGNALS = """
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask
sigreturn signalfd signalfd4 pause
"""
_TIME = """
alarm getitimer setitimer time gettimeofday adjtimex clock_adjtime clock_adjtime64
clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 nanosleep timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
"""
_IO_WAIT = """
select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait
epoll_pwait2 eventfd eventfd2 pipe pipe2 ioctl io_setup io_destroy io_submit
io_cancel io_getevents io_pgetevents io_pgetevents_time64
"""
_NETWORK = """
socketpair socketcall bind connect listen accept accept4 getsockname getpeername
getsockopt setsockopt shutdown send sendto sendmsg sendmmsg recv recvfrom recvmsg
recvmmsg recvmmsg_time64
"""
_IPC = """
ipc msgctl msgget msgrcv msgsnd semctl semget semop semtimedop semtimedop_time64
shmat shmctl shmdt shmget mq_open mq_unlink mq_notify mq_getsetattr mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
"""

_ALWAYS = _names(_FILES + _MEMORY + _PROCESS + _SIGNALS + _TIME + _IO_WAIT + _NETWORK + _IPC)

# The personality(2) values Docker lets through: Linux, Linux32, with and without
# UNAME26 ... and 0xffffffff, which only queries the current persona.
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# clone(2) flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|
# NEWPID|NEWNET): without CAP_SYS_ADMIN clone is allowed only if none of them is set.
_CLONE_NS_FLAGS = 0x7E020000

_SYS_ADMIN = """
bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
sethostname setns syslog umount umount2 unshare
"""

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(_ALWAYS),
    Rule(("process_vm_readv", "process_vm_writev", "ptrace"), min_kernel=(4, 8)),
    # Every socket family but AF_VSOCK (40), which could reach the host.
    Rule(("socket",), args=(Arg(0, 40, "SCMP_CMP_NE"),)),
    *(Rule(("personality",), args=(Arg(0, p, "SCMP_CMP_EQ"),)) for p in _PERSONAS),
    # Architecture-specific calls.
    Rule(("sync_file_range2", "swapcontext"), arches=("ppc64le",)),
    Rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
          "cacheflush", "set_tls"), arches=("arm", "arm64")),
    Rule(("arch_prctl",), arches=("amd64", "x32")),
    Rule(("modify_ldt",), arches=("amd64", "x32", "x86")),
    Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
         arches=("s390", "s390x")),
    Rule(("riscv_flush_icache",), arches=("riscv64",)),
    # Calls that come with a capability.
    Rule(("open_by_handle_at",), caps=("CAP_DAC_READ_SEARCH",)),
    Rule(_names(_SYS_ADMIN), caps=("CAP_SYS_ADMIN",)),
    Rule(("clone",), args=(Arg(0, _CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ", 0),),
         not_caps=("CAP_SYS_ADMIN",), not_arches=("s390", "s390x")),
    # s390 passes clone's flags as the second argument.
    Rule(("clone",), args=(Arg(1, _CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ", 0),),
         not_caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x")),
    # clone3 passes its flags in memory, where seccomp cannot look: make libc fall back
    # to clone (ENOSYS) instead of failing with EPERM.
    Rule(("clone3",), action="SCMP_ACT_ERRNO", errno=38, not_caps=("CAP_SYS_ADMIN",)),
    Rule(("reboot",), caps=("CAP_SYS_BOOT",)),
    Rule(("chroot",), caps=("CAP_SYS_CHROOT",)),
    Rule(("delete_module", "init_module", "finit_module"), caps=("CAP_SYS_MODULE",)),
    Rule(("acct",), caps=("CAP_SYS_PACCT",)),
    Rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
          "process_vm_writev", "ptrace"), caps=("CAP_SYS_PTRACE",)),
    Rule(("iopl", "ioperm"), caps=("CAP_SYS_RAWIO",)),
    Rule(("settimeofday", "stime", "clock_settime", "clock_settime64"),
         caps=("CAP_SYS_TIME",)),
    Rule(("vhangup",), caps=("CAP_SYS_TTY_CONFIG",)),
    Rule(("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
         caps=("CAP_SYS_NICE",)),
    Rule(("syslog",), caps=("CAP_SYSLOG",)),
    Rule(("bpf",), caps=("CAP_BPF",)),
    Rule(("perf_event_open",), caps=("CAP_PERFMON",)),
)
