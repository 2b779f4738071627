"""Engine -> runtime: the OCI runtime spec (config.json) for one container.

:func:`generate` turns a Docker API container Config + HostConfig into the plain dict a
runtime (hoist's own, runc, crun) executes, with Docker's defaults: the 14 default
capabilities, masked and read-only /proc and /sys paths, the device cgroup allow-list,
the default seccomp profile, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /proc mounts.
Everything a user can get wrong raises InvalidArgument here, before any kernel work.

The input is read, never changed; the output is fresh plain data (lists and dicts),
ready for json.dumps.
"""
from __future__ import annotations

import os
import re
import resource
import socket
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument, Unavailable
from .capabilities import has_cap, tweak_caps
from .seccomp import default_seccomp, docker_profile_seccomp
from .user import ResolvedUser, resolve_user

__all__ = ["SpecInput", "generate", "OCI_VERSION", "DEFAULT_PATH", "MASKED_PATHS",
           "READONLY_PATHS", "DEFAULT_DEVICE_RULES", "INIT_PATH", "INIT_SOURCE",
           "DEFAULT_NOFILE", "MIN_MEMORY", "DEFAULT_SHM_SIZE", "parse_bind",
           "parse_cpuset", "parse_device_cgroup_rule"]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_NOFILE = 1048576              # what dockerd (via containerd) gives a container
INIT_PATH = "/sbin/docker-init"       # where Docker puts its init inside the container
INIT_SOURCE = "/usr/bin/tini-static"  # Debian's tini, statically linked: works in any rootfs

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)


def _dev(allow: bool, type_: str | None = None, major: int | None = None,
         minor: int | None = None, access: str = "rwm") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow}
    if type_ is not None:
        rule["type"] = type_
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    rule["access"] = access
    return rule


# The device cgroup list Docker containers end up with: deny everything, then Docker's
# own rules, then the ones runc always appends (mknod of anything; pty, tun). hoist's
# runtime does not append anything itself, so the spec carries the complete list.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    _dev(False),
    _dev(True, "c", 1, 5),      # /dev/zero
    _dev(True, "c", 1, 3),      # /dev/null
    _dev(True, "c", 1, 9),      # /dev/urandom
    _dev(True, "c", 1, 8),      # /dev/random
    _dev(True, "c", 5, 0),      # /dev/tty
    _dev(True, "c", 5, 1),      # /dev/console
    _dev(False, "c", 10, 229),  # /dev/fuse
    _dev(True, "c", None, None, "m"),  # mknod of any char device
    _dev(True, "b", None, None, "m"),  # mknod of any block device
    _dev(True, "c", 1, 7),      # /dev/full
    _dev(True, "c", 136, None),  # /dev/pts/*
    _dev(True, "c", 5, 2),      # /dev/ptmx
    _dev(True, "c", 10, 200),   # /dev/net/tun
)

# RFC 1123 labels, at most 64 characters in all (what sethostname accepts).
_HOSTNAME = re.compile(r"^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_RLIMITS = frozenset({
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
})
_PROPAGATIONS = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
_BIND_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated"})


@dataclass(frozen=True)
class SpecInput:
    container_id: str
    config: Mapping[str, Any]       # Docker API container Config, already merged with the image config
    host_config: Mapping[str, Any]  # Docker API HostConfig
    rootfs: str                     # host path of the mounted rootfs
    hostname_path: str              # files the engine prepared, bind-mounted into the container
    hosts_path: str
    resolv_conf_path: str
    cgroups_path: str               # e.g. "/hoist/<id>"


def check(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> None:
    """Every check generate() makes that needs no rootfs (container create: dockerd
    refuses a bad HostConfig there, not at start). USER is resolved at start."""
    generate(SpecInput(container_id="0" * 64, config=config, host_config=host_config,
                       rootfs="", hostname_path="/etc/hostname", hosts_path="/etc/hosts",
                       resolv_conf_path="/etc/resolv.conf", cgroups_path="/"),
             resolve=False)


def generate(inp: SpecInput, resolve: bool = True) -> dict[str, Any]:
    """The OCI runtime spec for ``inp``; raises InvalidArgument for bad input.
    ``resolve=False`` (check()): the user stays root, nothing in the rootfs is read."""
    cfg = inp.config or {}
    hc = inp.host_config or {}
    privileged = bool(hc.get("Privileged"))
    sec = _security_opts(hc.get("SecurityOpt"))
    caps = tweak_caps(_list(hc.get("CapAdd"), "CapAdd"), _list(hc.get("CapDrop"), "CapDrop"),
                      privileged)
    if hc.get("Devices"):
        raise InvalidArgument("device mappings (--device) are not supported yet")
    if hc.get("VolumesFrom"):
        raise InvalidArgument("volumes are not supported yet (--volumes-from)")
    resources = _resources(hc, privileged)  # before any file system work: cheap checks first

    args = _list(cfg.get("Entrypoint"), "Entrypoint") + _list(cfg.get("Cmd"), "Cmd")
    if not args:
        raise InvalidArgument("no command specified")
    init = bool(hc.get("Init"))
    if init:
        if not os.path.isfile(INIT_SOURCE):
            raise Unavailable(f"--init needs {INIT_SOURCE} (Debian package tini), "
                              f"which is not installed")
        args = [INIT_PATH, "--", *args]

    namespaces, host_net, host_uts, host_ipc = _namespaces(hc)
    hostname = str(cfg.get("Hostname") or "")
    if host_uts:
        if hostname:
            raise InvalidArgument("Conflicting options: hostname and the UTS mode")
    elif not hostname:
        hostname = socket.gethostname() if host_net else inp.container_id[:12]
    if hostname and not _HOSTNAME.match(hostname):
        raise InvalidArgument(f"invalid hostname format: {hostname}")
    domainname = str(cfg.get("Domainname") or "")
    if domainname and not _HOSTNAME.match(domainname):
        raise InvalidArgument(f"invalid domainname format: {domainname}")

    sysctls = _sysctls(hc.get("Sysctls"), host_net, host_ipc, host_uts)
    groups = _list(hc.get("GroupAdd"), "GroupAdd")
    user = resolve_user(inp.rootfs, str(cfg.get("User") or ""), groups) if resolve else \
        ResolvedUser(0, 0)

    process: dict[str, Any] = {
        "terminal": bool(cfg.get("Tty")),
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": _env(cfg, hostname, user.home),
        "cwd": _cwd(cfg.get("WorkingDir")),
        "capabilities": {
            "bounding": list(caps), "effective": list(caps), "permitted": list(caps),
            "inheritable": [], "ambient": [],
        },
        "rlimits": _rlimits(hc.get("Ulimits")),
        "noNewPrivileges": sec.no_new_privileges,
        "oomScoreAdj": _oom_score_adj(hc.get("OomScoreAdj")),
    }
    # Docker lists the primary group among the supplementary ones too (a process that
    # drops to it with setgroups keeps it), so /proc/self/status shows "Groups: 0 10".
    gids = [user.gid, *(g for g in user.additional_gids if g != user.gid)]
    process["user"]["additionalGids"] = gids

    mounts = _mounts(inp, hc, privileged, init, host_ipc)

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": inp.cgroups_path,
    }
    if privileged:
        linux["devices"] = _host_devices()
        linux["resources"]["devices"] = [_dev(True)]
    else:
        if not sec.system_paths:
            # HostConfig.MaskedPaths/ReadonlyPaths (Engine API) replace the defaults when
            # given; dockerd fills them in with the defaults at create, so a HostConfig
            # read back from inspect says the same thing.
            masked = _paths(hc.get("MaskedPaths"), MASKED_PATHS, "MaskedPaths")
            readonly = _paths(hc.get("ReadonlyPaths"), READONLY_PATHS, "ReadonlyPaths")
            if masked:
                linux["maskedPaths"] = masked
            if readonly:
                linux["readonlyPaths"] = readonly
        rules = [dict(r) for r in DEFAULT_DEVICE_RULES]
        for rule in _list(hc.get("DeviceCgroupRules"), "DeviceCgroupRules"):
            rules.append(parse_device_cgroup_rule(rule))
        linux["resources"]["devices"] = rules
    if sysctls:
        linux["sysctl"] = sysctls
    propagation = _rootfs_propagation(mounts)
    if propagation:
        linux["rootfsPropagation"] = propagation
    if not privileged and sec.seccomp != "unconfined":
        if sec.seccomp == "default":
            linux["seccomp"] = default_seccomp(caps)
        else:
            linux["seccomp"] = docker_profile_seccomp(sec.seccomp, caps)

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
    }
    if not host_uts:
        spec["hostname"] = hostname
        if domainname:
            spec["domainname"] = domainname
    return spec


# --- process ---------------------------------------------------------------------------

def _list(v: Any, what: str) -> list[str]:
    """Docker's "strslice": null, a string (one element) or a list of strings."""
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, Sequence) and all(isinstance(s, str) for s in v):
        return list(v)
    raise InvalidArgument(f"{what} must be a list of strings")


def _env(cfg: Mapping[str, Any], hostname: str, home: str = "/") -> list[str]:
    # Docker's order: PATH, HOSTNAME, TERM defaults first; the container's own values
    # replace a default of the same name in place, others are appended.
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if cfg.get("Tty"):
        env.append("TERM=xterm")
    values: dict[str, str] = {}  # insertion-ordered: the defaults first
    for e in env:
        key, _, value = e.partition("=")
        values[key] = value
    for e in _list(cfg.get("Env"), "Env"):
        if "\0" in e:
            raise InvalidArgument(f"invalid environment variable: {e!r}")
        key, eq, value = e.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {e!r}")
        if not eq:
            values.pop(key, None)  # "NAME" alone unsets, as in Docker
        else:
            values[key] = value  # replaces in place, or appends
    # runc sets HOME from the user's passwd entry when the environment lacks it; doing it
    # here gives the same environment under every runtime.
    values.setdefault("HOME", home or "/")
    return [f"{k}={v}" for k, v in values.items()]


def _paths(v: Any, default: tuple[str, ...], what: str) -> list[str]:
    if v is None:
        return list(default)
    paths = _list(v, what)
    for p in paths:
        if not p.startswith("/") or ".." in p.split("/"):
            raise InvalidArgument(f"{what}: {p!r} must be an absolute path without '..'")
    return paths


def _cwd(v: Any) -> str:
    if not v:
        return "/"
    v = str(v)
    if not v.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{v}' is invalid, it needs to be an absolute path")
    return os.path.normpath(v).replace("//", "/")


def _default_nofile() -> int:
    """Docker's 1048576, unless the engine itself may not go that high: without
    CAP_SYS_RESOURCE a process cannot raise its hard limit, so the runtime (which runs
    with the engine's limits) would fail to start every container."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= DEFAULT_NOFILE or has_cap("CAP_SYS_RESOURCE"):
        return DEFAULT_NOFILE
    return hard


def _rlimits(ulimits: Any) -> list[dict[str, Any]]:
    nofile = _default_nofile()
    limits: dict[str, tuple[int, int]] = {"nofile": (nofile, nofile)}
    for u in ulimits or ():
        if not isinstance(u, Mapping):
            raise InvalidArgument("Ulimits entries must be objects with Name, Soft, Hard")
        name = str(u.get("Name", "")).lower()
        if name not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        soft, hard = u.get("Soft", 0), u.get("Hard", 0)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (soft, hard)):
            raise InvalidArgument(f"invalid ulimit value for {name}")
        # -1 means unlimited (RLIM_INFINITY) as in docker's --ulimit x=-1.
        soft = (1 << 64) - 1 if soft == -1 else soft
        hard = (1 << 64) - 1 if hard == -1 else hard
        if soft < 0 or hard < 0:
            raise InvalidArgument(f"invalid ulimit value for {name}")
        if soft > hard:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        limits[name] = (soft, hard)
    return [{"type": "RLIMIT_" + n.upper(), "hard": h, "soft": s}
            for n, (s, h) in limits.items()]


def _oom_score_adj(v: Any) -> int:
    v = v or 0
    if not isinstance(v, int) or isinstance(v, bool) or not -1000 <= v <= 1000:
        raise InvalidArgument(f"Invalid value {v}, range for oom score adj is [-1000, 1000]")
    return v


@dataclass(frozen=True)
class _Security:
    no_new_privileges: bool
    seccomp: str  # "default", "unconfined" or a Docker profile's JSON text
    system_paths: bool = False  # systempaths=unconfined: no masked/read-only paths


def _security_opts(opts: Any) -> _Security:
    nnp, seccomp, system_paths = False, "default", False
    for opt in _list(opts, "SecurityOpt"):
        if opt == "no-new-privileges":
            nnp = True
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")  # the old "key:value" form
        if not sep:
            raise InvalidArgument(f"Invalid --security-opt: {opt!r}")
        if key == "no-new-privileges":
            if value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
            nnp = value in ("true", "1")
        elif key == "seccomp":
            if value == "unconfined":
                seccomp = "unconfined"
            elif value in ("", "builtin"):
                seccomp = "default"
            else:
                seccomp = value
        elif key == "systempaths":
            if value != "unconfined":
                raise InvalidArgument(f"Invalid --security-opt: {opt!r}")
            system_paths = True
        elif key in ("apparmor", "label", "writable-cgroups"):
            # No AppArmor/SELinux on hoist's hosts; accepted and ignored like dockerd does
            # on a host without them, so compose files that set them keep working.
            continue
        else:
            raise InvalidArgument(f"Invalid --security-opt: {opt!r}")
    return _Security(nnp, seccomp, system_paths)


# --- namespaces and sysctls ------------------------------------------------------------

def _namespaces(hc: Mapping[str, Any]) -> tuple[list[dict[str, str]], bool, bool, bool]:
    def mode(key: str) -> str:
        v = hc.get(key) or ""
        if not isinstance(v, str):
            raise InvalidArgument(f"{key} must be a string")
        if v.startswith("container:"):
            raise InvalidArgument(f"{key} {v!r}: joining another container's namespace "
                                  f"is not supported yet")
        return v

    net = mode("NetworkMode")
    if net not in ("", "default", "bridge", "none", "host"):
        raise InvalidArgument(f"network mode {net!r} is not supported yet "
                              f"(use bridge, none or host)")
    pid, ipc, uts, cgroupns = mode("PidMode"), mode("IpcMode"), mode("UTSMode"), mode("CgroupnsMode")
    userns = mode("UsernsMode")
    for key, v, allowed in (("PidMode", pid, ("", "host")),
                            ("IpcMode", ipc, ("", "private", "shareable", "none", "host")),
                            ("UTSMode", uts, ("", "host")),
                            ("CgroupnsMode", cgroupns, ("", "private", "host")),
                            ("UsernsMode", userns, ("", "host"))):
        if v not in allowed:
            raise InvalidArgument(f"invalid {key}: {v!r}")
    ns = []
    if pid != "host":
        ns.append({"type": "pid"})
    if net != "host":
        ns.append({"type": "network"})
    if ipc != "host":
        ns.append({"type": "ipc"})
    if uts != "host":
        ns.append({"type": "uts"})
    ns.append({"type": "mount"})
    if cgroupns != "host":
        ns.append({"type": "cgroup"})
    return ns, net == "host", uts == "host", ipc == "host"


_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced"})


def _sysctls(v: Any, host_net: bool, host_ipc: bool, host_uts: bool) -> dict[str, str]:
    if not v:
        return {}
    if not isinstance(v, Mapping):
        raise InvalidArgument("Sysctls must be an object")
    out = {}
    for key, value in v.items():
        key = str(key).replace("/", ".")
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if host_ipc:
                raise InvalidArgument(f"sysctl {key!r} is not allowed when sharing the host's IPC namespace")
        elif key == "kernel.domainname":
            if host_uts:
                raise InvalidArgument(f"sysctl {key!r} is not allowed when sharing the host's UTS namespace")
        elif key.startswith("net."):
            if host_net:
                raise InvalidArgument(f"sysctl {key!r} not allowed in host network namespace")
        else:
            raise InvalidArgument(f"sysctl {key!r} is not allowed: only namespaced sysctls "
                                  f"(kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) "
                                  f"can be set")
        if not isinstance(value, str | int) or isinstance(value, bool) or "\n" in str(value):
            raise InvalidArgument(f"invalid value for sysctl {key!r}")
        out[key] = str(value)
    return out


# --- resources -------------------------------------------------------------------------

def _int(hc: Mapping[str, Any], key: str) -> int:
    v = hc.get(key) or 0
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidArgument(f"{key} must be an integer")
    return v


_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_cpuset(v: str, what: str = "cpus") -> list[int]:
    """``0-2,5`` -> [0, 1, 2, 5]; InvalidArgument with Docker's message when malformed."""
    if not _CPUSET.match(v):
        raise InvalidArgument(f"Invalid value {v} for cpuset {what}")
    out: set[int] = set()
    for part in v.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if a > b or b > 8191:
            raise InvalidArgument(f"Invalid value {v} for cpuset {what}")
        out.update(range(a, b + 1))
    return sorted(out)


def _swap_accounting() -> bool:
    v1 = "/sys/fs/cgroup/memory"  # the v1 memory controller (hybrid or legacy hosts)
    if os.path.isdir(v1):
        return os.path.exists(v1 + "/memory.memsw.limit_in_bytes")
    return True  # cgroup v2 has memory.swap.max wherever the memory controller is on


def _resources(hc: Mapping[str, Any], privileged: bool) -> dict[str, Any]:
    res: dict[str, Any] = {}
    memory = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    reservation = _int(hc, "MemoryReservation")
    if memory < 0:
        raise InvalidArgument("invalid memory limit: must be positive")
    if 0 < memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap < -1:
        raise InvalidArgument("invalid memory swap limit")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory and reservation and memory < reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage")
    mem: dict[str, Any] = {}
    if memory:
        mem["limit"] = memory
        # Unset swap means "as much swap as memory" (limit on memory+swap = 2x memory).
        # Like Docker, leave it out where the kernel has no swap accounting: the
        # runtime would fail to set it.
        if _swap_accounting():
            mem["swap"] = -1 if swap == -1 else (swap or 2 * memory)
    if reservation:
        mem["reservation"] = reservation
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        if not isinstance(swappiness, int) or not 0 <= swappiness <= 100:
            raise InvalidArgument(
                f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
        mem["swappiness"] = swappiness
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem

    cpu: dict[str, Any] = {}
    nano = _int(hc, "NanoCpus")
    quota, period = _int(hc, "CpuQuota"), _int(hc, "CpuPeriod")
    shares = _int(hc, "CpuShares")
    if nano:
        if quota:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if period:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        ncpu = os.cpu_count() or 1
        if nano < 0 or nano > ncpu * 10**9:
            raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                                  f"{ncpu} CPUs available")
        cpu["period"] = 100000
        cpu["quota"] = max(nano * 100000 // 10**9, 1000)
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if quota and quota != -1 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    if shares:
        if shares < 0:
            raise InvalidArgument("invalid CPU shares: must be positive")
        cpu["shares"] = shares
    for key, field, what in (("CpusetCpus", "cpus", "cpus"), ("CpusetMems", "mems", "mems")):
        v = hc.get(key) or ""
        if v:
            if not isinstance(v, str):
                raise InvalidArgument(f"{key} must be a string")
            parse_cpuset(v, what)
            cpu[field] = v
    if cpu:
        res["cpu"] = cpu

    pids = hc.get("PidsLimit")
    if pids is not None:
        if not isinstance(pids, int) or isinstance(pids, bool):
            raise InvalidArgument("PidsLimit must be an integer")
        if pids > 0:  # 0 and -1 both mean unlimited
            res["pids"] = {"limit": pids}
    weight = _int(hc, "BlkioWeight")
    if weight:
        if not 10 <= weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        res["blockIO"] = {"weight": weight}
    return res


_DEV_RULE = re.compile(r"^([acb]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$")


def parse_device_cgroup_rule(rule: str) -> dict[str, Any]:
    """``c 1:3 rwm`` / ``a *:* m`` -> OCI linux.resources.devices entry (allow)."""
    m = _DEV_RULE.match(rule.strip())
    if not m or len(set(m.group(4))) != len(m.group(4)):
        raise InvalidArgument(f"invalid device cgroup format '{rule}'")
    t, major, minor, access = m.groups()
    return _dev(True, t, None if major == "*" else int(major),
                None if minor == "*" else int(minor), access)


def _host_devices() -> list[dict[str, Any]]:
    """Every device node of the host's /dev, for --privileged (as Docker does)."""
    out: list[dict[str, Any]] = []
    skip = {"/dev/pts", "/dev/shm", "/dev/fd", "/dev/mqueue", "/dev/console"}

    def walk(path: str) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for e in entries:
            p = e.path
            if p in skip:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 0:
                    continue  # overlay whiteouts and the like
                out.append({"path": p, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode),
                            "uid": st.st_uid, "gid": st.st_gid})

    walk("/dev")
    out.sort(key=lambda d: d["path"])
    return out


# --- mounts ----------------------------------------------------------------------------

def _system_mounts(hc: Mapping[str, Any], privileged: bool, host_ipc: bool) -> list[dict[str, Any]]:
    shm = _int(hc, "ShmSize") or DEFAULT_SHM_SIZE
    if shm < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    ro = [] if privileged else ["ro"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": [*ro, "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    ipc = hc.get("IpcMode") or ""
    if host_ipc:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                       "options": ["rbind", "rprivate"]})
    elif ipc != "none":
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]})
    return mounts


def _clean_dest(dest: Any, spec: str) -> str:
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount config: mount path must be absolute: {spec}")
    parts = dest.split("/")
    if ".." in parts:
        raise InvalidArgument(f"invalid mount config: mount path must not contain '..': {spec}")
    clean = "/" + "/".join(p for p in parts if p not in ("", "."))
    if clean == "/":
        raise InvalidArgument(f"invalid mount config: destination can't be '/': {spec}")
    return clean


def _bind_source(src: str) -> str:
    if not os.path.isabs(src):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: "
                              f"'{src}' mount path must be absolute")
    if not os.path.exists(src):
        raise InvalidArgument(f"invalid mount config for type \"bind\": "
                              f"bind source path does not exist: {src}")
    return os.path.normpath(src)


def parse_bind(spec: str) -> dict[str, Any]:
    """One ``HostConfig.Binds`` entry (``src:dst[:opts]``) -> an OCI bind mount."""
    parts = spec.split(":")
    if len(parts) == 1 or (len(parts) >= 2 and parts[0] and not parts[0].startswith("/")):
        raise InvalidArgument(f"volumes are not supported yet: {spec!r} names a volume; "
                              f"use a host path (absolute) for a bind mount")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    dest = _clean_dest(dst, spec)
    writable, propagation = True, "rprivate"
    seen_rw = False
    for m in (mode.split(",") if mode else []):
        if m in ("ro", "rw"):
            if seen_rw:
                raise InvalidArgument(f"invalid mode: {mode}")
            seen_rw, writable = True, m == "rw"
        elif m in _PROPAGATIONS:
            propagation = m
        elif m in _BIND_MODES:
            continue  # z/Z (SELinux), nocopy, consistency: nothing to do on this host
        else:
            raise InvalidArgument(f"invalid mode: {mode}")
    source = _bind_source(src)
    opts = ["rbind"] + ([] if writable else ["ro"]) + [propagation]
    return {"destination": dest, "type": "bind", "source": source, "options": opts}


_TMPFS_FLAG_PAIRS = {
    "ro": "rw", "rw": "ro", "exec": "noexec", "noexec": "exec", "suid": "nosuid",
    "nosuid": "suid", "dev": "nodev", "nodev": "dev", "atime": "noatime", "noatime": "atime",
    "diratime": "nodiratime", "nodiratime": "diratime", "relatime": "norelatime",
    "norelatime": "relatime", "strictatime": "nostrictatime", "nostrictatime": "strictatime",
    "sync": "async", "async": "sync",
}


def _merge_tmpfs_options(options: list[str]) -> list[str]:
    """Later options override earlier ones (``exec`` cancels a default ``noexec``,
    the last ``size=`` wins)."""
    out: list[str] = []
    for opt in options:
        opt = opt.strip()
        if not opt:
            continue
        key = opt.split("=", 1)[0]
        if key in _PROPAGATIONS:
            out = [o for o in out if o not in _PROPAGATIONS]
        elif "=" in opt:
            out = [o for o in out if o.split("=", 1)[0] != key]
        else:
            opposite = _TMPFS_FLAG_PAIRS.get(opt)
            out = [o for o in out if o != opt and o != opposite]
        out.append(opt)
    return out


def _tmpfs(dest: str, data: str, spec: str) -> dict[str, Any]:
    if not isinstance(data, str):
        raise InvalidArgument(f"invalid tmpfs options for {spec}")
    for opt in filter(None, (o.strip() for o in data.split(","))):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(=[A-Za-z0-9_.:+-]*)?", opt):
            raise InvalidArgument(f"invalid tmpfs option {opt!r} for {spec}")
    opts = _merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", *data.split(",")])
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}


def _api_mount(m: Any) -> dict[str, Any]:
    if not isinstance(m, Mapping):
        raise InvalidArgument("HostConfig.Mounts entries must be objects")
    typ = m.get("Type") or ""
    target = m.get("Target") or ""
    where = f"{typ} mount at {target!r}"
    if typ == "volume":
        raise InvalidArgument(f"volumes are not supported yet: {where}")
    if typ not in ("bind", "tmpfs"):
        raise InvalidArgument(f"invalid mount config: mount type unknown: {typ!r}")
    if not target:
        raise InvalidArgument(f"invalid mount config for type \"{typ}\": field Target must not be empty")
    dest = _clean_dest(target, where)
    if typ == "bind":
        src = m.get("Source") or ""
        if not src:
            raise InvalidArgument("invalid mount config for type \"bind\": field Source must not be empty")
        if m.get("TmpfsOptions"):
            raise InvalidArgument("invalid mount config for type \"bind\": field TmpfsOptions must not be specified")
        bo = m.get("BindOptions") or {}
        propagation = bo.get("Propagation") or "rprivate"
        if propagation not in _PROPAGATIONS:
            raise InvalidArgument(f"invalid propagation mode: {propagation}")
        source = _bind_source(src)
        opts = ["bind" if bo.get("NonRecursive") else "rbind"]
        if m.get("ReadOnly"):
            opts.append("ro")
        opts.append(propagation)
        return {"destination": dest, "type": "bind", "source": source, "options": opts}
    if m.get("Source"):
        raise InvalidArgument("invalid mount config for type \"tmpfs\": field Source must not be specified")
    if m.get("BindOptions"):
        raise InvalidArgument("invalid mount config for type \"tmpfs\": field BindOptions must not be specified")
    to = m.get("TmpfsOptions") or {}
    extra = []
    size = to.get("SizeBytes") or 0
    if not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"invalid tmpfs size for {where}")
    if size:
        extra.append(f"size={size}")
    mode = to.get("Mode")
    if mode:
        if not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise InvalidArgument(f"invalid tmpfs mode for {where}")
        extra.append(f"mode={mode:o}")
    if m.get("ReadOnly"):
        extra.append("ro")
    return _tmpfs(dest, ",".join(extra), where)


def _depth(dest: str) -> int:
    return dest.rstrip("/").count("/")


def _mounts(inp: SpecInput, hc: Mapping[str, Any], privileged: bool, init: bool,
            host_ipc: bool) -> list[dict[str, Any]]:
    binds: list[dict[str, Any]] = [parse_bind(b) for b in _list(hc.get("Binds"), "Binds")]
    tmpfs_mounts: list[dict[str, Any]] = []
    tmpfs = hc.get("Tmpfs") or {}
    if not isinstance(tmpfs, Mapping):
        raise InvalidArgument("HostConfig.Tmpfs must be an object")
    for dest, data in tmpfs.items():
        tmpfs_mounts.append(_tmpfs(_clean_dest(dest, f"tmpfs {dest}"), data or "", f"tmpfs {dest}"))
    for m in hc.get("Mounts") or ():
        mount = _api_mount(m)
        (binds if mount["type"] == "bind" else tmpfs_mounts).append(mount)
    # Image VOLUME entries are ignored for now: Docker backs each with an anonymous
    # volume, and volumes arrive with a later issue; the directory then simply lives in
    # the container's writable layer.
    seen: set[str] = set()
    for m in binds + tmpfs_mounts:
        if m["destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {m['destination']}")
        seen.add(m["destination"])

    ro_files = bool(hc.get("ReadonlyRootfs"))
    engine = []
    for dest, src in (("/etc/resolv.conf", inp.resolv_conf_path),
                      ("/etc/hostname", inp.hostname_path),
                      ("/etc/hosts", inp.hosts_path)):
        if src and dest not in seen:
            engine.append({"destination": dest, "type": "bind", "source": src,
                           "options": ["rbind", "rprivate", *(["ro"] if ro_files else [])]})

    # A user mount replaces a default one at the same place (a user's /dev replaces
    # everything Docker would have put under /dev).
    system = [m for m in _system_mounts(hc, privileged, host_ipc)
              if m["destination"] not in seen
              and not ("/dev" in seen and m["destination"].startswith("/dev/"))]
    if init:  # Docker adds it to the default mounts, ahead of everything the user asked for
        if INIT_PATH in seen:
            raise InvalidArgument(f"Duplicate mount point: {INIT_PATH}")
        system.append({"destination": INIT_PATH, "type": "bind", "source": INIT_SOURCE,
                       "options": ["bind", "ro", "rprivate"]})
    # Docker's order (checked against dockerd): binds, then the engine's /etc files, then
    # tmpfs mounts, stably sorted so parents come before children — a bind under a
    # tmpfs is not hidden by it.
    rest = sorted(binds + engine + tmpfs_mounts, key=lambda m: _depth(m["destination"]))
    return system + rest


def _rootfs_propagation(mounts: list[dict[str, Any]]) -> str:
    # Shared/slave binds only propagate if the container's root is shared/slave too.
    props = {o for m in mounts if m["type"] == "bind" for o in m["options"]}
    if props & {"shared", "rshared"}:
        return "rshared"
    if props & {"slave", "rslave"}:
        return "rslave"
    return ""
