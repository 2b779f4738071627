"""cgroups v1, hybrid and v2 behind one interface.

``open_cgroup("/hoist/<id>")`` finds the hierarchies from /proc/self/mountinfo and
returns a Cgroup whose ``apply`` maps OCI ``linux.resources`` to the files of whatever
layout the host has. runc and crun create their cgroups at the same cgroupsPath, so
``stats()`` reads theirs too.

Layouts:
* v1: one hierarchy per controller (/sys/fs/cgroup/<ctrl>).
* hybrid: v1 controllers plus a controller-less cgroup2 (/sys/fs/cgroup/unified); the
  process is put there too so it can be tracked (as systemd and runc do).
* v2: one hierarchy with cgroup.controllers; controllers are enabled down the
  ancestors' cgroup.subtree_control.

v2 device rules need an eBPF program (BPF_CGROUP_DEVICE); hoist does not load one yet,
so on pure v2 ``linux.resources.devices`` is NOT enforced (the device nodes the spec
creates are still the only ones in the container's /dev).
"""
from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InvalidArgument, Unavailable

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
V2_CONTROLLERS = ("cpu", "memory", "pids", "cpuset", "io")
_V1_MOUNT_OPTIONS = frozenset({"rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode",
                               "favordynmods", "none", "all"})


@dataclass(frozen=True)
class Layout:
    """Where the hierarchies are. ``v1`` maps a controller to its mount point; ``v2``
    is the cgroup2 mount point or ""; ``unified`` is True when v2 holds the controllers."""
    v1: Mapping[str, str]
    v2: str
    unified: bool

    @property
    def kind(self) -> str:
        return "v2" if self.unified else ("hybrid" if self.v2 else "v1")


@dataclass(frozen=True)
class CgroupStats:
    memory_usage: int = 0            # bytes, as docker's memory_stats.usage
    memory_limit: int = 0            # bytes; 0 when unlimited
    memory_max_usage: int = 0
    memory_stat: Mapping[str, int] = field(default_factory=dict)
    cpu_total_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    cpu_percpu_ns: tuple[int, ...] = ()
    system_cpu_ns: int = 0           # host total cpu time (docker's system_cpu_usage)
    online_cpus: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0
    pids_current: int = 0
    pids_limit: int = 0              # 0 when unlimited
    oom_kills: int = 0
    # docker's blkio_stats.io_service_bytes_recursive: (major, minor, op, bytes), op as
    # the kernel spells it on v1 ("Read", "Write", ...) and "read"/"write" on v2
    io_service_bytes: tuple[tuple[int, int, str, int], ...] = ()

    @property
    def io_read_bytes(self) -> int:
        return sum(v for _, _, op, v in self.io_service_bytes if op.lower() == "read")

    @property
    def io_write_bytes(self) -> int:
        return sum(v for _, _, op, v in self.io_service_bytes if op.lower() == "write")


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def detect_layout(mountinfo: str = "/proc/self/mountinfo") -> Layout:
    v1: dict[str, str] = {}
    v2 = ""
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            fstype, opts = rfields[0], rfields[2].split(",")
            mnt = _unescape(fields[4])
            if fstype == "cgroup2":
                if not v2 or mnt == "/sys/fs/cgroup":
                    v2 = mnt
            elif fstype == "cgroup":
                for o in opts:
                    # every hierarchy, as runc joins them all: controllers (also the ones
                    # hoist sets nothing in: net_cls, perf_event...) and named ones
                    # (name=systemd) alike; the rest of the options are mount options
                    if o not in _V1_MOUNT_OPTIONS and "=" not in o.replace("name=", "") \
                            and o not in v1:
                        v1[o] = mnt
    if v1:
        return Layout(v1=v1, v2=v2, unified=False)
    if v2:
        return Layout(v1={}, v2=v2, unified=True)
    raise Unavailable("no cgroup hierarchy is mounted")


def _own_cgroups(path: str = "/proc/self/cgroup") -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    out: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                _, ctrls, p = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(",") if ctrls else [""]:
                    out[c] = p
    except OSError:
        pass
    return out


def prime_migrations() -> None:
    """Take the kernel's cgroup migration lock once, moving this process to the cgroup
    it is already in, so that the container's init joins its cgroups moments later
    without waiting.

    Every cgroup.procs write takes cgroup_threadgroup_rwsem for writing; when it was
    idle that costs an RCU grace period (1-25 ms, more on a busy machine), and later
    writers inside the window do not pay again. Called on a spare thread as a start
    begins, the wait overlaps the work before init's join. A cgroup we cannot write
    (a delegated or read-only hierarchy) just means no priming."""
    try:
        layout = host_layout()
        own = _own_cgroups()
        if layout.v2 and "" in own:
            target = os.path.join(layout.v2, own[""].lstrip("/"), "cgroup.procs")
        else:
            ctrl, mnt = next(iter(layout.v1.items()))
            target = os.path.join(mnt, own.get(ctrl, "/").lstrip("/"), "cgroup.procs")
        with open(target, "w") as f:
            f.write(str(os.getpid()))
    except (OSError, StopIteration, Unavailable):
        pass


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def read_int(path: str, default: int = 0) -> int:
    try:
        v = _read(path)
    except OSError:
        return default
    if v == "max":
        return 0
    try:
        return int(v.split()[0])
    except (ValueError, IndexError):
        return default


def read_kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                try:
                    out[k] = int(v)
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def io_v1(path: str) -> tuple[tuple[int, int, str, int], ...]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and ":" in parts[0]:
                    ma, mi = parts[0].split(":")
                    out.append((int(ma), int(mi), parts[1], int(parts[2])))
    except (OSError, ValueError):
        pass
    return tuple(out)


def _io_v2(path: str) -> tuple[tuple[int, int, str, int], ...]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if not parts or ":" not in parts[0]:
                    continue
                ma, mi = parts[0].split(":")
                kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
                out.append((int(ma), int(mi), "read", int(kv.get("rbytes", 0))))
                out.append((int(ma), int(mi), "write", int(kv.get("wbytes", 0))))
    except (OSError, ValueError):
        pass
    return tuple(out)


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def system_cpu_ns() -> int:
    """Host cpu time in ns from /proc/stat, as docker's system_cpu_usage."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return 0
    ticks = sum(int(x) for x in parts[1:8])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], the conversion runc uses."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(w: int) -> int:
    if w == 0:
        return 0
    return 1 + (w - 10) * 9999 // 990


class Cgroup:
    """One container's cgroup (all hierarchies). Paths are computed, nothing touched
    until ``create``."""

    def __init__(self, cgroups_path: str, layout: Layout,
                 own: Mapping[str, str] | None = None) -> None:
        if not cgroups_path:
            raise InvalidArgument("empty cgroupsPath")
        norm = os.path.normpath("/" + cgroups_path.lstrip("/"))
        if ".." in cgroups_path.split("/") or norm == "/":
            raise InvalidArgument(f"invalid cgroupsPath {cgroups_path!r}")
        self.path = cgroups_path
        self.layout = layout
        own = _own_cgroups() if own is None and not cgroups_path.startswith("/") else (own or {})
        # Absolute paths are relative to each hierarchy's root; relative ones to the
        # caller's own cgroup there (the OCI rule).
        def under(mnt: str, ctrl: str) -> str:
            rel = norm if cgroups_path.startswith("/") else os.path.join(own.get(ctrl, "/"), cgroups_path)
            return os.path.normpath(mnt + "/" + rel.lstrip("/"))
        self.v1: dict[str, str] = {c: under(m, c) for c, m in layout.v1.items()}
        self.v2 = under(layout.v2, "") if layout.v2 else ""

    # -- paths -------------------------------------------------------------------------
    def _dirs(self) -> list[str]:
        dirs = list(dict.fromkeys(self.v1.values()))
        if self.v2:
            dirs.append(self.v2)
        return dirs

    def procs_files(self) -> list[str]:
        """Every cgroup.procs a new member must be written to (the init writes "0")."""
        return [os.path.join(d, "cgroup.procs") for d in self._dirs()]

    def _f(self, ctrl: str, name: str) -> str:
        if self.layout.unified:
            return os.path.join(self.v2, name)
        return os.path.join(self.v1[ctrl], name)

    def has(self, ctrl: str) -> bool:
        if self.layout.unified:
            return True
        return ctrl in self.v1

    # -- lifecycle ---------------------------------------------------------------------
    def create(self) -> None:
        for ctrl, d in self.v1.items():
            self._mkdirs(self.layout.v1[ctrl], d, cpuset=ctrl == "cpuset")
        if self.v2:
            self._mkdirs(self.layout.v2, self.v2, cpuset=False, enable=self.layout.unified)

    def _mkdirs(self, mnt: str, d: str, cpuset: bool, enable: bool = False) -> None:
        if not cpuset and not enable:
            # The common case: the parents exist already and need nothing; one mkdir.
            try:
                os.mkdir(d, 0o755)
                return
            except FileNotFoundError:
                pass
            except FileExistsError:
                return
        rel = os.path.relpath(d, mnt)
        cur = mnt
        for part in rel.split("/"):
            parent, cur = cur, os.path.join(cur, part)
            if enable:
                self._enable_controllers(parent)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                pass
            if cpuset:
                # A new v1 cpuset is empty and refuses members: inherit the parent's.
                # Checked on existing levels too: another runtime may have made the
                # directory an instant ago and not filled it yet.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    try:
                        if not _read(os.path.join(cur, name)):
                            _write(os.path.join(cur, name), _read(os.path.join(parent, name)))
                    except OSError:
                        pass

    @staticmethod
    def _enable_controllers(parent: str) -> None:
        try:
            avail = set(_read(os.path.join(parent, "cgroup.controllers")).split())
            on = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
        except OSError:
            return
        want = [c for c in V2_CONTROLLERS if c in avail and c not in on]
        if not want:
            return
        try:
            _write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in want))
        except OSError:
            # One controller may be refused (e.g. cpu with realtime tasks): enable the rest.
            for c in want:
                try:
                    _write(os.path.join(parent, "cgroup.subtree_control"), "+" + c)
                except OSError:
                    pass

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            _write(f, str(pid))

    def pids(self) -> list[int]:
        src = self.v2 if self.layout.unified else (self.v1.get("pids") or self.v1.get("memory")
                                                   or self.v2 or next(iter(self.v1.values()), ""))
        try:
            with open(os.path.join(src, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs())

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if self.layout.unified:
            _write(os.path.join(self.v2, "cgroup.freeze"), "1" if frozen else "0")
            want_key, want = "frozen", 1 if frozen else 0
            for _ in range(2000):
                ev = read_kv(os.path.join(self.v2, "cgroup.events"))
                if ev.get(want_key, want) == want:
                    return
                time.sleep(0.001)
            return
        if "freezer" not in self.v1:
            raise Unavailable("the freezer cgroup controller is not mounted")
        state = os.path.join(self.v1["freezer"], "freezer.state")
        target = "FROZEN" if frozen else "THAWED"
        for _ in range(2000):
            _write(state, target)
            if _read(state) == target:
                return
            time.sleep(0.001)
        raise Unavailable(f"cgroup {self.path} did not reach {target}")

    def frozen(self) -> bool:
        if self.layout.unified:
            return read_kv(os.path.join(self.v2, "cgroup.events")).get("frozen", 0) == 1
        try:
            return _read(os.path.join(self.v1["freezer"], "freezer.state")) == "FROZEN"
        except (KeyError, OSError):
            return False

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove every directory; kill leftovers first (thawing so SIGKILL lands)."""
        deadline = time.monotonic() + timeout
        for d in self._dirs():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    if self.frozen():
                        self.kill_all()
                        self.thaw()
                    self.kill_all()
                    time.sleep(0.005)

    # -- resources ---------------------------------------------------------------------
    def apply(self, resources: Mapping[str, Any] | None) -> None:
        """Write OCI linux.resources. Unknown or absent fields change nothing."""
        if not resources:
            return
        if self.layout.unified:
            self._apply_v2(resources)
        else:
            self._apply_v1(resources)

    def _apply_v1(self, r: Mapping[str, Any]) -> None:
        mem = r.get("memory") or {}
        if mem and self.has("memory"):
            limit, swap = mem.get("limit"), mem.get("swap")
            pairs = []
            if limit is not None:
                pairs.append(("memory.limit_in_bytes", int(limit)))
            if swap is not None and os.path.exists(self._f("memory", "memory.memsw.limit_in_bytes")):
                pairs.append(("memory.memsw.limit_in_bytes", int(swap)))
            # memsw must stay >= limit at every step: raise memsw first when growing.
            if len(pairs) == 2 and pairs[1][1] != -1:
                cur = read_int(self._f("memory", "memory.limit_in_bytes"))
                if pairs[1][1] > cur or cur == 0:
                    pairs.reverse()
            for name, v in pairs:
                _write(self._f("memory", name), str(v))
            if mem.get("reservation") is not None:
                _write(self._f("memory", "memory.soft_limit_in_bytes"), str(int(mem["reservation"])))
            if mem.get("swappiness") is not None and 0 <= int(mem["swappiness"]) <= 100:
                try:
                    _write(self._f("memory", "memory.swappiness"), str(int(mem["swappiness"])))
                except OSError:
                    pass
            if mem.get("disableOOMKiller"):
                _write(self._f("memory", "memory.oom_control"), "1")
        cpu = r.get("cpu") or {}
        if cpu:
            if cpu.get("shares") and self.has("cpu"):
                _write(self._f("cpu", "cpu.shares"), str(int(cpu["shares"])))
            if cpu.get("period") and self.has("cpu"):
                _write(self._f("cpu", "cpu.cfs_period_us"), str(int(cpu["period"])))
            if cpu.get("quota") is not None and self.has("cpu"):
                q = int(cpu["quota"])
                _write(self._f("cpu", "cpu.cfs_quota_us"), str(q if q > 0 else -1))
            if cpu.get("cpus") and self.has("cpuset"):
                _write(self._f("cpuset", "cpuset.cpus"), str(cpu["cpus"]))
            if cpu.get("mems") and self.has("cpuset"):
                _write(self._f("cpuset", "cpuset.mems"), str(cpu["mems"]))
        pids = r.get("pids") or {}
        if "limit" in pids and self.has("pids"):
            lim = int(pids["limit"])
            _write(self._f("pids", "pids.max"), str(lim) if lim > 0 else "max")
        if r.get("devices") and self.has("devices"):
            for rule in r["devices"]:
                _write(self._f("devices", "devices.allow" if rule.get("allow") else "devices.deny"),
                       device_rule(rule))
        blk = r.get("blockIO") or {}
        if blk.get("weight") and self.has("blkio"):
            try:
                _write(self._f("blkio", "blkio.weight"), str(int(blk["weight"])))
            except OSError:
                pass  # cfq/bfq absent: the kernel has no weight file to honour

    def _apply_v2(self, r: Mapping[str, Any]) -> None:
        d = self.v2
        mem = r.get("memory") or {}
        if mem:
            limit, swap = mem.get("limit"), mem.get("swap")
            if limit is not None:
                _write(os.path.join(d, "memory.max"), "max" if int(limit) <= 0 else str(int(limit)))
            if swap is not None and os.path.exists(os.path.join(d, "memory.swap.max")):
                # OCI swap is memory+swap; v2 wants the swap part alone.
                s = int(swap)
                if s == -1:
                    v = "max"
                elif limit is not None and int(limit) > 0:
                    v = str(max(s - int(limit), 0))
                else:
                    v = str(s)
                _write(os.path.join(d, "memory.swap.max"), v)
            if mem.get("reservation") is not None:
                _write(os.path.join(d, "memory.low"), str(int(mem["reservation"])))
        cpu = r.get("cpu") or {}
        if cpu:
            if cpu.get("shares"):
                _write(os.path.join(d, "cpu.weight"), str(shares_to_weight(int(cpu["shares"]))))
            if cpu.get("quota") is not None or cpu.get("period"):
                q = cpu.get("quota")
                period = int(cpu.get("period") or 100000)
                quota = "max" if q is None or int(q) <= 0 else str(int(q))
                _write(os.path.join(d, "cpu.max"), f"{quota} {period}")
            if cpu.get("cpus"):
                _write(os.path.join(d, "cpuset.cpus"), str(cpu["cpus"]))
            if cpu.get("mems"):
                _write(os.path.join(d, "cpuset.mems"), str(cpu["mems"]))
        pids = r.get("pids") or {}
        if "limit" in pids:
            lim = int(pids["limit"])
            _write(os.path.join(d, "pids.max"), str(lim) if lim > 0 else "max")
        blk = r.get("blockIO") or {}
        if blk.get("weight") and os.path.exists(os.path.join(d, "io.weight")):
            _write(os.path.join(d, "io.weight"), f"default {blkio_to_io_weight(int(blk['weight']))}")
        for k, v in (r.get("unified") or {}).items():
            if "/" in k or k.startswith("."):
                raise InvalidArgument(f"invalid unified cgroup key {k!r}")
            _write(os.path.join(d, k), str(v))

    # -- stats -------------------------------------------------------------------------
    def stats(self) -> CgroupStats:
        if self.layout.unified:
            return self._stats_v2()
        return self._stats_v1()

    def _stats_v1(self) -> CgroupStats:
        g = self._f
        mstat = read_kv(g("memory", "memory.stat")) if self.has("memory") else {}
        limit = read_int(g("memory", "memory.limit_in_bytes")) if self.has("memory") else 0
        if limit >= 0x7FFFFFFFFFFFF000:  # the kernel's "unlimited", page-rounded LONG_MAX
            limit = 0
        oom = 0
        if self.has("memory"):
            oom = read_kv(g("memory", "memory.oom_control")).get("oom_kill", 0)
        percpu: tuple[int, ...] = ()
        total = user = system = 0
        if self.has("cpuacct"):
            total = read_int(g("cpuacct", "cpuacct.usage"))
            try:
                percpu = tuple(int(x) for x in _read(g("cpuacct", "cpuacct.usage_percpu")).split())
            except (OSError, ValueError):
                percpu = ()
            st = read_kv(g("cpuacct", "cpuacct.stat"))
            tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            user, system = st.get("user", 0) * tick, st.get("system", 0) * tick
        cst = read_kv(g("cpu", "cpu.stat")) if self.has("cpu") else {}
        return CgroupStats(
            memory_usage=read_int(g("memory", "memory.usage_in_bytes")) if self.has("memory") else 0,
            memory_limit=limit,
            memory_max_usage=read_int(g("memory", "memory.max_usage_in_bytes")) if self.has("memory") else 0,
            memory_stat=mstat,
            cpu_total_ns=total, cpu_user_ns=user, cpu_system_ns=system, cpu_percpu_ns=percpu,
            system_cpu_ns=system_cpu_ns(), online_cpus=os.cpu_count() or 0,
            throttled_periods=cst.get("nr_throttled", 0), throttled_ns=cst.get("throttled_time", 0),
            pids_current=read_int(g("pids", "pids.current")) if self.has("pids") else 0,
            pids_limit=read_int(g("pids", "pids.max")) if self.has("pids") else 0,
            oom_kills=oom,
            io_service_bytes=io_v1(g("blkio", "blkio.throttle.io_service_bytes_recursive"))
            if self.has("blkio") else (),
        )

    def _stats_v2(self) -> CgroupStats:
        d = self.v2
        cst = read_kv(os.path.join(d, "cpu.stat"))
        return CgroupStats(
            memory_usage=read_int(os.path.join(d, "memory.current")),
            memory_limit=read_int(os.path.join(d, "memory.max")),
            memory_max_usage=read_int(os.path.join(d, "memory.peak")),
            memory_stat=read_kv(os.path.join(d, "memory.stat")),
            cpu_total_ns=cst.get("usage_usec", 0) * 1000,
            cpu_user_ns=cst.get("user_usec", 0) * 1000,
            cpu_system_ns=cst.get("system_usec", 0) * 1000,
            system_cpu_ns=system_cpu_ns(), online_cpus=os.cpu_count() or 0,
            throttled_periods=cst.get("nr_throttled", 0),
            throttled_ns=cst.get("throttled_usec", 0) * 1000,
            pids_current=read_int(os.path.join(d, "pids.current")),
            pids_limit=read_int(os.path.join(d, "pids.max")),
            oom_kills=read_kv(os.path.join(d, "memory.events")).get("oom_kill", 0),
            io_service_bytes=_io_v2(os.path.join(d, "io.stat")),
        )


def device_rule(rule: Mapping[str, Any]) -> str:
    """OCI device cgroup rule -> the devices.allow/deny line ("c 1:3 rwm")."""
    t = rule.get("type") or "a"
    if t not in ("a", "b", "c"):
        raise InvalidArgument(f"invalid device rule type {t!r}")
    if t == "a":
        return "a"
    ma, mi = rule.get("major"), rule.get("minor")
    ma_s = "*" if ma is None or ma == -1 else str(int(ma))
    mi_s = "*" if mi is None or mi == -1 else str(int(mi))
    access = rule.get("access") or "rwm"
    if set(access) - set("rwm"):
        raise InvalidArgument(f"invalid device access {access!r}")
    return f"{t} {ma_s}:{mi_s} {access}"


_layout: Layout | None = None


def host_layout() -> Layout:
    global _layout
    if _layout is None:
        _layout = detect_layout()
    return _layout


def open_cgroup(cgroups_path: str, layout: Layout | None = None) -> Cgroup:
    return Cgroup(cgroups_path, layout or host_layout())
