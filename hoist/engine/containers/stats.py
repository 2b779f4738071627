"""`docker top` and `docker stats` for hoistd, shaped as dockerd (API v1.47) shapes them.

top: the host's ``ps`` (``-ef`` unless the client sends ps_args), narrowed with
``-q <pids>`` to the container's cgroup and filtered again on the PID column, because
dockerd retries without ``-q`` when an option refuses it and the filter is what keeps
other processes out.

stats: one sample is the cgroup's counters (hoist.runtime.cgroups), a few files that
CgroupStats does not carry (nr_periods, failcnt, io_serviced) and the interface
counters of the container's network namespace. ``frame`` turns a sample into Docker's
stats JSON; ``chain`` links a frame to the previous one (preread, precpu_stats) as
dockerd's per-request loop does. Everything that shapes JSON is pure, so it is tested
against fake CgroupStats.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from ...errors import Conflict, HoistError
from ...runtime.cgroups import CgroupStats, io_v1, read_int, read_kv


class Containers(Protocol):
    """The part of ContainerService that top and stats use."""
    store: Any

    def get(self, ref: str) -> dict[str, Any]: ...     # NotFound for an unknown ref
    def cgroup(self, ref: str) -> Any: ...             # Conflict when not running


PS_DEFAULT_ARGS = "-ef"
# Go's \s (RE2) is ASCII [\t\n\f\r ]; dockerd rejects "key=PID..." column renames that
# would fake the PID column it filters on.
_WS = "\t\n\f\r "
_PS_RENAME = re.compile(rf"[{_WS}]+([^{_WS}]*)=[{_WS}]*(PID[^{_WS}]*)")
_U64_MAX = (1 << 64) - 1
ZERO_TIME = "0001-01-01T00:00:00Z"


# ---------------------------------------------------------------------------- top

def validate_ps_args(ps_args: str) -> None:
    for key, value in _PS_RENAME.findall(ps_args):
        if key != "pid":
            raise HoistError(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    """strings.FieldsFunc on ASCII whitespace: a non-ASCII space stays inside a field."""
    return [f for f in re.split(f"[{_WS}]+", line) if f]


def ps_pids_arg(pids: Iterable[int]) -> str:
    return "-q" + ",".join(str(p) for p in pids)


def parse_ps_output(output: str, pids: Iterable[int]) -> dict[str, Any]:
    """Titles from the header; the rows whose PID is one of ``pids``. Thread rows
    (PID "-", as ``-m`` prints them) follow the process row they belong to. Columns past
    the last title are joined into the last one (the command line)."""
    wanted = set(pids)
    lines = output.split("\n")
    titles = _fields(lines[0])
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise HoistError("Couldn't find PID field in ps output") from None
    procs: list[list[str]] = []
    keep_threads = False

    def add(fields: list[str]) -> None:
        n = len(titles)
        procs.append(fields[:n - 1] + [" ".join(fields[n - 1:])])

    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if keep_threads:
                add(fields)
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise HoistError(f"Unexpected pid '{fields[pid_index]}': strconv.Atoi: parsing "
                             f"\"{fields[pid_index]}\": invalid syntax") from None
        keep_threads = pid in wanted
        if keep_threads:
            add(fields)
    return {"Titles": titles, "Processes": procs}


def run_ps(args: list[str], pids: list[int]) -> str:
    """``ps args -q pids``; some options (f, for one) refuse -q, so retry without it as
    dockerd does. A failure reports ps's first stderr line (Go's exit text if none)."""
    p = subprocess.run(["ps", *args, ps_pids_arg(pids)], capture_output=True)
    if p.returncode == 0:
        return p.stdout.decode(errors="replace")
    p = subprocess.run(["ps", *args], capture_output=True)
    if p.returncode == 0:
        return p.stdout.decode(errors="replace")
    first = p.stderr.split(b"\n", 1)[0].decode(errors="replace")
    if not first:
        first = f"exit status {p.returncode}" if p.returncode > 0 else f"signal: {-p.returncode}"
    raise HoistError(f"ps: {first}")


def top(svc: Containers, ref: str, ps_args: str) -> dict[str, Any]:
    ps_args = ps_args or PS_DEFAULT_ARGS
    validate_ps_args(ps_args)
    doc = svc.get(ref)
    if doc["State"].get("Restarting"):
        raise Conflict(f"Container {doc['Id']} is restarting, wait until the container is running")
    pids = svc.cgroup(doc["Id"]).pids()  # Conflict "Container <id> is not running"
    # dockerd splits on single spaces (not Fields): "a  b" passes an empty argument
    result = parse_ps_output(run_ps(ps_args.split(" "), pids), pids)
    svc.publish_event(doc, "top")
    return result


# ---------------------------------------------------------------------------- stats

@dataclass(frozen=True)
class Sample:
    """One reading of a running container. ``networks``: interface -> counters of
    /proc/<pid>/net/dev (lo left out); None when dockerd would report none (host
    network, networking disabled)."""
    read_ns: int
    cgroup: CgroupStats
    unified: bool                          # cgroup v2 holds the controllers
    machine_memory: int                    # MemTotal: docker's limit when unlimited
    nr_periods: int = 0                    # cpu.stat nr_periods
    failcnt: int = 0                       # v1 memory.failcnt, v2 memory.events "oom"
    io_serviced: tuple[tuple[int, int, str, int], ...] = ()
    networks: Mapping[str, Mapping[str, int]] | None = field(default=None)


def go_time(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped)."""
    if ns <= 0:
        return ZERO_TIME
    sec, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def _zero_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
               "io_time_recursive", "sectors_recursive")

# The memory.stat keys dockerd copies (containerd's metrics), missing ones as 0.
_V1_MEM_KEYS = ("cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin",
                "pgpgout", "pgfault", "pgmajfault", "inactive_anon", "active_anon",
                "inactive_file", "active_file", "unevictable", "hierarchical_memory_limit",
                "hierarchical_memsw_limit")
_V1_MEM_TOTALS = ("cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin",
                  "pgpgout", "pgfault", "pgmajfault", "inactive_anon", "active_anon",
                  "inactive_file", "active_file", "unevictable")
_V2_MEM_KEYS = ("anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped",
                "file_dirty", "file_writeback", "anon_thp", "inactive_anon", "active_anon",
                "inactive_file", "active_file", "unevictable", "slab_reclaimable",
                "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
                "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan",
                "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed",
                "thp_fault_alloc", "thp_collapse_alloc")


def empty_frame(name: str, cid: str) -> dict[str, Any]:
    """What dockerd sends for a container that is not running: Go's zero StatsJSON."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {k: None for k in _BLKIO_KEYS}, "num_procs": 0, "storage_stats": {},
            "cpu_stats": _zero_cpu(), "precpu_stats": _zero_cpu(), "memory_stats": {},
            "name": name, "id": cid}


def _entries(rows: Iterable[tuple[int, int, str, int]]) -> list[dict[str, Any]]:
    return [{"major": ma, "minor": mi, "op": op, "value": v} for ma, mi, op, v in rows]


def _omit_zero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def frame(name: str, cid: str, s: Sample | None) -> dict[str, Any]:
    """Docker's stats JSON for one sample (keys in dockerd's order; Go's omitempty
    fields left out when zero). preread/precpu_stats are zero until ``chain``."""
    if s is None:
        return empty_frame(name, cid)
    c = s.cgroup
    out = empty_frame(name, cid)
    out["read"] = go_time(s.read_ns)
    if s.unified:
        # containerd reads v2's "max" as the largest uint64; v1's as 0 (omitted)
        pids = _omit_zero({"current": c.pids_current, "limit": c.pids_limit or _U64_MAX})
        blkio: dict[str, Any] = {k: None for k in _BLKIO_KEYS}
        blkio["io_service_bytes_recursive"] = _entries(c.io_service_bytes) or None
        mem_stats = {k: int(c.memory_stat.get(k, 0)) for k in sorted(_V2_MEM_KEYS)}
        max_usage = 0  # v2 has no max_usage in docker's stats
    else:
        pids = _omit_zero({"current": c.pids_current, "limit": c.pids_limit})
        blkio = {k: [] for k in _BLKIO_KEYS}
        blkio["io_service_bytes_recursive"] = _entries(c.io_service_bytes)
        blkio["io_serviced_recursive"] = _entries(s.io_serviced)
        keys = list(_V1_MEM_KEYS) + ["total_" + k for k in _V1_MEM_TOTALS]
        mem_stats = {k: int(c.memory_stat.get(k, 0)) for k in sorted(keys)}
        max_usage = c.memory_max_usage
    usage: dict[str, Any] = {"total_usage": c.cpu_total_ns}
    if c.cpu_percpu_ns:
        usage["percpu_usage"] = list(c.cpu_percpu_ns)
    usage["usage_in_kernelmode"] = c.cpu_system_ns
    usage["usage_in_usermode"] = c.cpu_user_ns
    cpu: dict[str, Any] = {"cpu_usage": usage}
    cpu.update(_omit_zero({"system_cpu_usage": c.system_cpu_ns, "online_cpus": c.online_cpus}))
    cpu["throttling_data"] = {"periods": s.nr_periods, "throttled_periods": c.throttled_periods,
                              "throttled_time": c.throttled_ns}
    limit = c.memory_limit
    if s.machine_memory and (limit <= 0 or limit > s.machine_memory):
        limit = s.machine_memory
    memory = _omit_zero({"usage": c.memory_usage, "max_usage": max_usage})
    memory["stats"] = mem_stats
    memory.update(_omit_zero({"failcnt": s.failcnt, "limit": limit}))
    out.update(pids_stats=pids, blkio_stats=blkio, cpu_stats=cpu, memory_stats=memory)
    if s.networks:
        out["networks"] = {ifname: dict(v) for ifname, v in s.networks.items()}
    return out


def chain(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Give ``current`` the previous frame's read time and cpu figures (zero for the
    first frame), as dockerd does per request."""
    out = dict(current)
    out["preread"] = previous["read"] if previous else ZERO_TIME
    out["precpu_stats"] = previous["cpu_stats"] if previous else _zero_cpu()
    return out


# ----------------------------------------------------------------- reading samples

# docker's NetworkStats name -> column of /proc/net/dev (after the "iface:" prefix)
_NET_COLUMNS = (("rx_bytes", 0), ("rx_packets", 1), ("rx_errors", 2), ("rx_dropped", 3),
                ("tx_bytes", 8), ("tx_packets", 9), ("tx_errors", 10), ("tx_dropped", 11))


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev -> docker's NetworkStats per interface, loopback left out
    (dockerd reports the container's endpoints, never lo)."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        ifname, sep, rest = line.partition(":")
        ifname = ifname.strip()
        if not sep or not ifname or ifname == "lo":
            continue
        try:
            nums = [int(x) for x in rest.split()]
        except ValueError:
            continue
        if len(nums) >= 12:
            out[ifname] = {k: nums[i] for k, i in _NET_COLUMNS}
    return out


_machine_memory = 0


def machine_memory() -> int:
    global _machine_memory
    if not _machine_memory:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        _machine_memory = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
    return _machine_memory


def _networks(doc: Mapping[str, Any]) -> dict[str, dict[str, int]] | None:
    if doc["Config"].get("NetworkDisabled") or \
            (doc.get("HostConfig") or {}).get("NetworkMode") == "host":
        return None
    pid = (doc.get("State") or {}).get("Pid") or 0
    if not pid:
        return None
    try:
        with open(f"/proc/{int(pid)}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return None


def sample(svc: Containers, ref: str) -> tuple[dict[str, Any], Sample | None]:
    """The container's doc and a sample, or None when it is not running (NotFound
    propagates: the container is gone)."""
    doc = svc.get(ref)
    if not doc["State"]["Running"] or doc["State"].get("Restarting"):
        return doc, None
    try:
        cg = svc.cgroup(doc["Id"])
    except Conflict:
        return doc, None
    read_ns = time.time_ns()
    st = cg.stats()
    if not cg.exists():  # it stopped while we read: zeros would be a lie
        return doc, None
    unified = cg.layout.unified
    if unified:
        nr_periods = read_kv(os.path.join(cg.v2, "cpu.stat")).get("nr_periods", 0)
        failcnt = read_kv(os.path.join(cg.v2, "memory.events")).get("oom", 0)
        io_serviced: tuple[tuple[int, int, str, int], ...] = ()
    else:
        nr_periods = read_kv(os.path.join(cg.v1["cpu"], "cpu.stat")).get("nr_periods", 0) \
            if "cpu" in cg.v1 else 0
        failcnt = read_int(os.path.join(cg.v1["memory"], "memory.failcnt")) \
            if "memory" in cg.v1 else 0
        io_serviced = io_v1(os.path.join(cg.v1["blkio"], "blkio.throttle.io_serviced")) \
            if "blkio" in cg.v1 else ()
    return doc, Sample(read_ns=read_ns, cgroup=st, unified=unified,
                       machine_memory=machine_memory(), nr_periods=nr_periods,
                       failcnt=failcnt, io_serviced=io_serviced, networks=_networks(doc))


def current_frame(svc: Containers, ref: str) -> dict[str, Any]:
    doc, s = sample(svc, ref)
    return frame(doc["Name"], doc["Id"], s)
