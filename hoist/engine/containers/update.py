"""``docker update``: change a container's resource limits and restart policy.

The request is checked as dockerd checks it (the resource rules of container create, plus
the update-only conflicts with what is already set), written into the stored HostConfig,
and, when the container is running, applied to its live cgroup in OCI
``linux.resources`` shape, converted by the same code that generates the runtime spec.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ...errors import Conflict, HoistError, InvalidArgument
from ...runtime import spec as _spec
from .restart import RestartPolicy

if TYPE_CHECKING:
    from .service import ContainerService

MIN_MEMORY = _spec.MIN_MEMORY
INT_FIELDS = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "Memory",
              "MemorySwap", "MemoryReservation", "KernelMemory", "CpuRealtimePeriod",
              "CpuRealtimeRuntime")
STR_FIELDS = ("CpusetCpus", "CpusetMems")
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")

_MEMORY = ("Memory", "MemorySwap", "MemoryReservation")
_CPU = ("CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems")


@dataclass(frozen=True)
class Host:
    """What the daemon's host supports (dockerd's sysinfo), injectable for tests."""
    ncpu: int = field(default_factory=lambda: os.cpu_count() or 1)
    cpus: str = field(default_factory=lambda: _read("/sys/devices/system/cpu/online", "0"))
    mems: str = field(default_factory=lambda: _read("/sys/devices/system/node/online", "0"))
    swap_limit: bool = field(default_factory=_spec._swap_accounting)
    blkio_weight: bool = field(default_factory=lambda: any(os.path.exists(p) for p in (
        "/sys/fs/cgroup/blkio/blkio.weight", "/sys/fs/cgroup/blkio/blkio.bfq.weight",
        "/sys/fs/cgroup/io.weight", "/sys/fs/cgroup/io.bfq.weight")))


def _read(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or default
    except OSError:
        return default


@dataclass(frozen=True)
class Update:
    """A parsed request: only the fields it sets (dockerd treats 0 / "" as "unchanged")."""
    resources: Mapping[str, Any]
    restart: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()


def parse_update(body: Any, api: float = 1.47) -> Update:
    """The JSON body of ``POST /containers/{id}/update`` -> :class:`Update` (type checks,
    and the API-version rules of dockerd's router)."""
    if body is None:
        raise InvalidArgument("EOF")
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update config: not an object")
    res: dict[str, Any] = {}
    for k in INT_FIELDS:
        v = body.get(k)
        if v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidArgument(f"invalid value for {k}: {v!r} is not an integer")
        if v:
            res[k] = v
    for k in STR_FIELDS:
        v = body.get(k)
        if v is None:
            continue
        if not isinstance(v, str):
            raise InvalidArgument(f"invalid value for {k}: {v!r} is not a string")
        if v:
            res[k] = v
    if api >= 1.42:
        res.pop("KernelMemory", None)  # removed from the API in 1.42: ignored
    pids = body.get("PidsLimit")
    if pids is not None and api >= 1.40:
        if not isinstance(pids, int) or isinstance(pids, bool):
            raise InvalidArgument(f"invalid value for PidsLimit: {pids!r} is not an integer")
        res["PidsLimit"] = pids if pids > 0 else 0  # 0 and any negative mean unlimited
    restart = body.get("RestartPolicy")
    if restart is not None and not isinstance(restart, dict):
        raise InvalidArgument("invalid value for RestartPolicy: not an object")
    if restart and restart.get("Name"):
        count = restart.get("MaximumRetryCount") or 0
        if not isinstance(count, int) or isinstance(count, bool):
            raise InvalidArgument(f"invalid value for RestartPolicy.MaximumRetryCount: {count!r}")
        restart = {"Name": str(restart["Name"]), "MaximumRetryCount": count}
    else:
        restart = None
    return Update(res, restart)


def _cpuset_ok(requested: str, available: str, what: str) -> None:
    try:
        want = set(_spec.parse_cpuset(requested, what))
    except InvalidArgument:
        raise InvalidArgument(f"Invalid value {requested} for cpuset {what}: invalid format: "
                              f"{requested}") from None
    try:
        have = set(_spec.parse_cpuset(available, what))
    except InvalidArgument:
        return  # an unreadable host list checks nothing
    if not want <= have:
        label = "CPUs" if what == "cpus" else "memory nodes"
        raise InvalidArgument(f"Requested {label} are not available - requested {requested}, "
                              f"available: {available}")


def validate(upd: Update, host: Host) -> Update:
    """dockerd's resource checks for an update (create's rules, minus "Memoryswap needs
    Memory"); returns the update with discarded fields dropped and the warnings."""
    r = dict(upd.resources)
    warnings: list[str] = []
    if upd.restart is not None:
        RestartPolicy.from_api(upd.restart)  # raises dockerd's messages
    mem, swap, resv = r.get("Memory", 0), r.get("MemorySwap", 0), r.get("MemoryReservation", 0)
    if mem and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if mem > 0 and swap != -1 and not host.swap_limit:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is "
                        "not mounted. Memory limited without swap.")
        r["MemorySwap"] = swap = -1
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap < -1:
        raise InvalidArgument("invalid memory swap limit")
    if 0 < resv < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if mem > 0 and resv > 0 and mem < resv:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if r.get("KernelMemory", 0) > 0:
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in "
                        "a future release.")
    nano, period, quota = r.get("NanoCpus", 0), r.get("CpuPeriod", 0), r.get("CpuQuota", 0)
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > host.ncpu * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only "
                              f"{host.ncpu} CPUs available")
    if r.get("CpuShares", 0) < 0:
        raise InvalidArgument("invalid CPU shares: must be positive")
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.get("CpusetCpus"):
        _cpuset_ok(r["CpusetCpus"], host.cpus, "cpus")
    if r.get("CpusetMems"):
        _cpuset_ok(r["CpusetMems"], host.mems, "mems")
    weight = r.get("BlkioWeight", 0)
    if weight > 0 and not host.blkio_weight:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")
        r.pop("BlkioWeight")
    elif weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    return Update(r, upd.restart, tuple(warnings))


def merge_host_config(hc: Mapping[str, Any], upd: Update) -> dict[str, Any]:
    """The HostConfig after the update, or Conflict for what clashes with what is set
    (dockerd's UpdateContainer). Input untouched."""
    out = copy.deepcopy(dict(hc))
    r = upd.resources

    def cur(k: str) -> int:
        return int(out.get(k) or 0)

    if r.get("NanoCpus", 0) > 0 and cur("CpuPeriod") > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if r.get("NanoCpus", 0) > 0 and cur("CpuQuota") > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if r.get("CpuPeriod", 0) > 0 and cur("NanoCpus") > 0:
        raise Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if r.get("CpuQuota", 0) > 0 and cur("NanoCpus") > 0:
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if r.get("Memory"):
        # dockerd stores MemorySwap = 2 x Memory at create when only -m was given; a
        # container created here keeps 0, which means that same effective limit.
        swap = cur("MemorySwap") or 2 * cur("Memory")
        if r["Memory"] > swap and not r.get("MemorySwap"):
            raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
    for k, v in r.items():
        out[k] = None if k == "PidsLimit" and v <= 0 else v
    if upd.restart is not None:
        if upd.restart["Name"] != "no" and out.get("AutoRemove"):
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for "
                           "the container")
        out["RestartPolicy"] = dict(upd.restart)
    return out


def oci_resources(hc: Mapping[str, Any], upd: Update) -> dict[str, Any]:
    """OCI ``linux.resources`` for the parts of ``hc`` (the updated HostConfig) that the
    update touched, via the spec generator's conversion."""
    full = _spec._resources(hc, bool(hc.get("Privileged")))
    r = upd.resources
    out: dict[str, Any] = {}
    if any(k in r for k in _MEMORY) and full.get("memory"):
        out["memory"] = full["memory"]
    if any(k in r for k in _CPU) and full.get("cpu"):
        out["cpu"] = full["cpu"]
    if "PidsLimit" in r:
        out["pids"] = {"limit": r["PidsLimit"] if r["PidsLimit"] > 0 else 0}
    if "BlkioWeight" in r and full.get("blockIO"):
        out["blockIO"] = full["blockIO"]
    return out


def _apply_live(apply: Callable[[str, dict[str, Any]], None], cid: str,
                res: dict[str, Any]) -> None:
    # cgroup v1 wants memsw >= limit after every write: lift the swap limit first when it
    # becomes unlimited, so raising the memory limit past the old memsw cannot fail.
    if (res.get("memory") or {}).get("swap") == -1:
        apply(cid, {"memory": {"swap": -1}})
    apply(cid, res)


def _restart_policy_live(svc: "ContainerService", cid: str, policy: Mapping[str, Any]) -> None:
    """As dockerd's UpdateMonitor: a started container's restart manager follows the new
    policy at its next exit, not only after the next start."""
    svc.set_restart_policy(cid, RestartPolicy.from_api(policy))


def update(svc: "ContainerService", ref: str, body: Any, api: float = 1.47,
           host: Host | None = None,
           apply: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Serve ``POST /containers/{ref}/update``: the response body (``{"Warnings": ...}``)."""
    upd = validate(parse_update(body, api), host or Host())
    cid = svc.resolve(ref)
    with svc._lock:
        doc = svc._load(cid)
        if doc["State"].get("Dead"):
            raise Conflict(f"Cannot update container {cid}: container is marked for removal "
                           f"and cannot be \"update\"")
        old = doc["HostConfig"]
        try:
            new = merge_host_config(old, upd)
        except HoistError as e:
            raise type(e)(f"Cannot update container {cid}: {e.message}") from None
        doc["HostConfig"] = new
        svc._save(doc)
        if doc["State"]["Running"]:
            try:
                resources = oci_resources(new, upd)
                if resources:
                    _apply_live(apply or (lambda c, res: svc.cgroup(c).apply(res)), cid, resources)
            except (HoistError, OSError, ValueError) as e:
                doc["HostConfig"] = old  # as dockerd: a failed live update changes nothing
                svc._save(doc)
                msg = e.message if isinstance(e, HoistError) else str(e)
                raise HoistError(f"Cannot update container {cid}: {msg}") from None
    if upd.restart is not None:
        _restart_policy_live(svc, cid, upd.restart)
    svc.publish_event(doc, "update")
    return {"Warnings": list(upd.warnings) or None}
