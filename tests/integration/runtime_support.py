"""Bundles and a tiny monitor for runtime tests: a busybox rootfs, a Docker-like OCI
spec (or the spec branch's generator when present), and ``run`` which drives a Runtime
from a forked subreaper child exactly as the real monitor does, or ``runc run``."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

# Imported here, in the parent: the forked test monitor must not take the import lock
# (another thread of the test session could hold it at fork time).
from hoist import linux
from hoist.runtime.base import Stdio
from hoist.runtime.hoistrt import HoistRuntime

BUSYBOX = "/usr/bin/busybox"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# A small profile in the OCI form: what the probes need to tell "seccomp said no" from
# "capabilities said no" (unshare -U needs no capability, so only seccomp can refuse it).
TEST_SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["keyctl", "add_key", "request_key", "unshare", "setns", "mount", "umount2",
                   "ptrace", "kexec_load", "open_by_handle_at", "bpf", "userfaultfd"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},  # clone(CLONE_NEWUSER) only: fork stays allowed
    ],
}

PROBE_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
int main(void) {
    long r = syscall(SYS_keyctl, 0, -3, 0);
    printf("keyctl=%s\n", r < 0 ? strerror(errno) : "ok");
    return 0;
}
"""


def make_rootfs(path: str) -> None:
    os.makedirs(os.path.join(path, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, check=True).stdout.decode()
    for name in out.split():
        if name != "busybox":
            os.symlink("busybox", os.path.join(path, "bin", name))
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "home/user", "usr/bin"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\nuser:x:1000:\n")
    probe_src = os.path.join(path, "..", "probe.c")
    with open(probe_src, "w") as f:
        f.write(PROBE_C)
    if shutil.which("gcc"):
        subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(path, "bin", "probe"), probe_src],
                       check=True, capture_output=True)


def docker_like_spec(args: list[str], cgroups_path: str, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
            "env": [f"PATH={PATH}", "HOSTNAME=hoisttest"], "cwd": "/",
            "capabilities": {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}],
            "noNewPrivileges": False, "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "hoisttest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")],
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 136, "access": "rwm"}],
                "memory": {"limit": 64 << 20},
                "pids": {"limit": 100},
            },
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
            "seccomp": TEST_SECCOMP,
        },
    }
    for k, v in over.items():
        spec[k] = v
    return spec


@dataclass
class Result:
    code: int
    out: str
    err: str
    error: str = ""      # runtime error message (create/start)
    kind: str = ""       # error class name
    pid: int = 0
    extra: Any = None
    before: Any = None


class Bundle:
    def __init__(self, base: str, rootfs_template: str, name: str) -> None:
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        # the rootfs is shared read-only-ish between runs: bind it? a copy per bundle is
        # simplest and keeps runs independent (busybox is 1 MB)
        shutil.copytree(rootfs_template, os.path.join(self.dir, "rootfs"), symlinks=True)

    def write(self, spec: dict[str, Any]) -> None:
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(spec, f)


def run_hoist(runtime_root: str, bundle: str, cid: str, timeout: float = 20,
              stdin: bytes = b"", terminal: bool = False,
              during: Callable[..., Any] | None = None, before_start: Callable[..., Any] | None = None,
              extra_fds: int = 0, cgroup_layout: Any = None) -> Result:
    """A test monitor: a forked subreaper child calls create/start and waits for init.
    ``before_start``/``during(rt, cid, created)`` run in the monitor; what they return
    (JSON-able) comes back in Result.extra."""
    outf = tempfile.TemporaryFile()
    errf = tempfile.TemporaryFile()
    inr, inw = os.pipe()
    os.write(inw, stdin)
    os.close(inw)
    rr, rw = os.pipe()
    pid = os.fork()
    if pid == 0:
        res: dict[str, Any] = {}
        os.close(rr)
        try:
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
            for _ in range(extra_fds):  # stray inheritable fds a careless monitor might hold
                fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
                os.set_inheritable(fd, True)
            if extra_fds:  # ... and the signal state a monitor loop might have
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
            rt = HoistRuntime(root=runtime_root, cgroup_layout=cgroup_layout)
            created = rt.create(cid, bundle, Stdio(inr, outf.fileno(), errf.fileno(), terminal))
            res["pid"] = created.pid
            res["console"] = created.console is not None
            if before_start is not None:
                res["before"] = before_start(rt, cid, created)
            try:
                rt.start(cid)
            except Exception as e:  # noqa: BLE001
                res["error"], res["kind"] = str(e), type(e).__name__
            if during is not None:
                res["extra"] = during(rt, cid, created)
            while True:
                p, status = os.waitpid(-1, 0)
                if p == created.pid:
                    break
            res["code"] = os.waitstatus_to_exitcode(status)
            if res["code"] < 0:
                res["code"] = 128 - res["code"]
            rt.delete(cid)
        except BaseException as e:  # noqa: BLE001
            res["error"], res["kind"] = str(e), type(e).__name__
            res.setdefault("code", -1)
            try:
                rt.delete(cid)  # never leave a container behind a failed test
            except BaseException:  # noqa: BLE001
                pass
        os.write(rw, json.dumps(res).encode())
        os._exit(0)
    os.close(rw)
    os.close(inr)
    deadline = time.time() + timeout
    data = b""
    while time.time() < deadline:
        chunk = os.read(rr, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rr)
    os.waitpid(pid, 0)
    res = json.loads(data or b"{}")
    outf.seek(0)
    errf.seek(0)
    return Result(res.get("code", -1), outf.read().decode(errors="replace"),
                  errf.read().decode(errors="replace"), res.get("error", ""), res.get("kind", ""),
                  res.get("pid", 0), res.get("extra"), res.get("before"))


def run_runc(runc_root: str, bundle: str, cid: str, timeout: float = 20) -> Result:
    p = subprocess.run(["runc", "--root", runc_root, "run", "-b", bundle, cid],
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    subprocess.run(["runc", "--root", runc_root, "delete", "-f", cid], capture_output=True)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
