"""OCI linux.seccomp -> BPF through libseccomp, loaded in a forked child (with
no_new_privs, so no root needed) and checked against real syscalls."""
from __future__ import annotations

import ctypes
import errno
import os

import pytest

from hoist import linux
from hoist.errors import InvalidArgument

seccomp_filter = pytest.importorskip("hoist.runtime.seccomp_filter")
try:
    seccomp_filter._libseccomp()
except Exception:  # noqa: BLE001
    pytest.skip("libseccomp2 not installed", allow_module_level=True)

SYS_GETPPID = {"x86_64": 110, "aarch64": 173}.get(os.uname().machine, 110)
PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] if os.uname().machine == "x86_64" else [],
    "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["no_such_syscall_anywhere", "setpgid"], "action": "SCMP_ACT_ERRNO"},
        # personality(0xffffffff) (a query) allowed, anything else refused
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # same as default: skipped
    ],
}


def _in_child(fn) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:  # noqa: BLE001
            os._exit(255)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_filter_denies_what_the_profile_says(tmp_path):
    flt = seccomp_filter.compile_filter(PROFILE, cache_dir=str(tmp_path))
    assert len(flt.prog) % 8 == 0 and len(flt.prog) > 8
    libc = ctypes.CDLL(None, use_errno=True)

    def probe() -> int:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        flt.load()
        results = []
        # getppid through syscall(): glibc's wrapper cannot fail and returns -errno raw
        for fn, args in ((libc.syscall, (SYS_GETPPID,)), (libc.setpgid, (0, 0)),
                         (libc.personality, (ctypes.c_ulong(0xFFFFFFFF),)),
                         (libc.personality, (ctypes.c_ulong(0),)), (libc.getuid, ())):
            ctypes.set_errno(0)
            rc = fn(*args)
            results.append(ctypes.get_errno() if rc == -1 else 0)
        want = [errno.EACCES, errno.EPERM, 0, errno.EPERM, 0]
        return 0 if results == want else 1
    assert _in_child(probe) == 0
    # cached on disk under the profile's hash, reused by the next compile
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".bpf")
    seccomp_filter._cache.clear()
    again = seccomp_filter.compile_filter(PROFILE, cache_dir=str(tmp_path))
    assert again.prog == flt.prog


def test_default_errno_and_kill():
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
            "syscalls": [{"names": ["exit", "exit_group", "rt_sigreturn", "prctl", "seccomp",
                                    "write", "getuid", "munmap", "brk", "mmap", "futex"],
                          "action": "SCMP_ACT_ALLOW"}]}
    flt = seccomp_filter.compile_filter(prof)
    libc = ctypes.CDLL(None, use_errno=True)

    def probe() -> int:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        flt.load()
        ctypes.set_errno(0)
        rc = libc.syscall(SYS_GETPPID)
        ok = rc == -1 and ctypes.get_errno() == errno.ENOSYS
        libc._exit(0 if ok else 1)
        return 2
    assert _in_child(probe) == 0


@pytest.mark.parametrize("bad", [
    {"defaultAction": "SCMP_ACT_BOGUS"},
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
    {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WHATEVER"]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_LIKE"}]}]},
])
def test_bad_profiles_rejected(bad):
    with pytest.raises(InvalidArgument):
        seccomp_filter.compile_filter(bad)
