"""Check an OCI runtime spec as plain data, before any runtime sees it.

Each check is a small function ``(spec) -> list[str]`` of problems; :func:`validate`
runs them all and raises one InvalidArgument naming every problem, so a bad spec (from
hoist's generator or handed in by someone else) is reported completely, not one problem
per attempt. The checks are about what would make a runtime misbehave or escape (paths
with "..", unknown namespaces/capabilities/seccomp actions, negative ids), not style.
A spec from :func:`hoist.runtime.spec.generate` always passes.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidArgument
from .capabilities import CAPABILITIES
from .seccomp import ACTIONS, ARCHES, OPERATORS

__all__ = ["validate", "problems", "CHECKS", "NAMESPACES", "RLIMITS"]

Check = Callable[[Mapping[str, Any]], list[str]]

NAMESPACES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"})
RLIMITS = frozenset("RLIMIT_" + n for n in (
    "AS", "CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE", "NICE", "NOFILE",
    "NPROC", "RSS", "RTPRIO", "RTTIME", "SIGPENDING", "STACK"))
_CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "no change" to the kernel, never a real id
_U64 = (1 << 64) - 1
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _obj(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _linux(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return _obj(spec.get("linux"))


def _abs_clean(path: Any) -> bool:
    return (isinstance(path, str) and path.startswith("/") and ".." not in path.split("/")
            and "\0" not in path)


def check_required(spec: Mapping[str, Any]) -> list[str]:
    errs = []
    version = spec.get("ociVersion")
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d+\.\d+(-[\w.]+)?", version):
        errs.append("ociVersion must be a 1.x semantic version")
    root = spec.get("root")
    if not isinstance(root, Mapping) or not isinstance(root.get("path"), str) or not root["path"]:
        errs.append("root.path is required")
    elif "readonly" in root and not isinstance(root["readonly"], bool):
        errs.append("root.readonly must be a boolean")
    proc = spec.get("process")
    if not isinstance(proc, Mapping):
        errs.append("process is required")
    else:
        args = proc.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            errs.append("process.args must be a non-empty list of strings")
        cwd = proc.get("cwd")
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            errs.append("process.cwd must be an absolute path")
        env = proc.get("env", [])
        if not isinstance(env, list) or not all(
                isinstance(e, str) and "=" in e and "\0" not in e for e in env):
            errs.append("process.env entries must be NAME=value strings")
        if "terminal" in proc and not isinstance(proc["terminal"], bool):
            errs.append("process.terminal must be a boolean")
    if not isinstance(spec.get("linux"), Mapping):
        errs.append("linux is required")
    return errs


def check_user(spec: Mapping[str, Any]) -> list[str]:
    user = _obj(_obj(spec.get("process")).get("user"))
    errs = []
    for key in ("uid", "gid"):
        v = user.get(key, 0)
        if not _is_int(v) or not 0 <= v <= _MAX_ID:
            errs.append(f"process.user.{key} must be a non-negative integer, not {v!r}")
    gids = user.get("additionalGids", [])
    if not isinstance(gids, list) or not all(_is_int(g) and 0 <= g <= _MAX_ID for g in gids):
        errs.append("process.user.additionalGids must be non-negative integers")
    if "umask" in user and (not _is_int(user["umask"]) or not 0 <= user["umask"] <= 0o777):
        errs.append("process.user.umask must be between 0 and 0777")
    return errs


def check_capabilities(spec: Mapping[str, Any]) -> list[str]:
    caps = _obj(spec.get("process")).get("capabilities")
    if caps is None:
        return []
    if not isinstance(caps, Mapping):
        return ["process.capabilities must be an object"]
    errs = []
    for key, names in caps.items():
        if key not in _CAP_SETS:
            errs.append(f"process.capabilities.{key}: unknown capability set")
            continue
        if not isinstance(names, list):
            errs.append(f"process.capabilities.{key} must be a list")
            continue
        for n in names:
            if n not in CAPABILITIES:
                errs.append(f"process.capabilities.{key}: unknown capability {n!r}")
    return errs


def check_rlimits(spec: Mapping[str, Any]) -> list[str]:
    rl = _obj(spec.get("process")).get("rlimits", [])
    if not isinstance(rl, list):
        return ["process.rlimits must be a list"]
    errs: list[str] = []
    seen: set[str] = set()
    for r in rl:
        if not isinstance(r, Mapping):
            errs.append("process.rlimits entries must be objects")
            continue
        t = r.get("type")
        if t not in RLIMITS:
            errs.append(f"process.rlimits: unknown rlimit {t!r}")
            continue
        if t in seen:
            errs.append(f"process.rlimits: {t} given twice")
        seen.add(t)
        soft, hard = r.get("soft"), r.get("hard")
        if not (_is_int(soft) and _is_int(hard) and 0 <= soft <= _U64 and 0 <= hard <= _U64):
            errs.append(f"process.rlimits {t}: soft and hard must be unsigned integers")
        elif soft > hard:
            errs.append(f"process.rlimits {t}: soft limit {soft} exceeds hard limit {hard}")
    return errs


def check_process_misc(spec: Mapping[str, Any]) -> list[str]:
    proc = _obj(spec.get("process"))
    errs = []
    adj = proc.get("oomScoreAdj", 0)
    if not _is_int(adj) or not -1000 <= adj <= 1000:
        errs.append(f"process.oomScoreAdj {adj!r} is out of range -1000..1000")
    if "noNewPrivileges" in proc and not isinstance(proc["noNewPrivileges"], bool):
        errs.append("process.noNewPrivileges must be a boolean")
    return errs


def check_mounts(spec: Mapping[str, Any]) -> list[str]:
    mounts = spec.get("mounts", [])
    if not isinstance(mounts, list):
        return ["mounts must be a list"]
    errs = []
    for i, m in enumerate(mounts):
        if not isinstance(m, Mapping):
            errs.append(f"mounts[{i}] must be an object")
            continue
        dest = m.get("destination")
        if not _abs_clean(dest):
            errs.append(f"mounts[{i}]: destination {dest!r} must be an absolute path "
                        f"without '..'")
        opts = m.get("options", [])
        if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
            errs.append(f"mounts[{i}]: options must be a list of strings")
            opts = []
        typ = m.get("type")
        is_bind = typ == "bind" or "bind" in opts or "rbind" in opts
        if dest == "/proc" and typ != "proc":
            errs.append("mounts: /proc must be of type proc")
        if dest == "/sys" and typ != "sysfs" and not is_bind:
            errs.append("mounts: /sys must be of type sysfs")
        if is_bind and not _abs_clean(m.get("source")):
            errs.append(f"mounts[{i}] ({dest}): bind source must be an absolute path "
                        f"without '..'")
        if not is_bind and not typ:
            errs.append(f"mounts[{i}] ({dest}): type is required")
    return errs


def check_namespaces(spec: Mapping[str, Any]) -> list[str]:
    ns = _linux(spec).get("namespaces", [])
    if not isinstance(ns, list):
        return ["linux.namespaces must be a list"]
    errs: list[str] = []
    seen: set[str] = set()
    for n in ns:
        t = n.get("type") if isinstance(n, Mapping) else None
        if t not in NAMESPACES:
            errs.append(f"linux.namespaces: unknown namespace type {t!r}")
            continue
        if t in seen:
            errs.append(f"linux.namespaces: {t} given twice")
        seen.add(t)
        path = n.get("path")
        if path is not None and not _abs_clean(path):
            errs.append(f"linux.namespaces: {t} path must be absolute")
    if "mount" not in seen:
        errs.append("linux.namespaces: a mount namespace is required")
    return errs


def check_hostname(spec: Mapping[str, Any]) -> list[str]:
    own_uts = any(_obj(n).get("type") == "uts" and "path" not in _obj(n)
                  for n in _linux(spec).get("namespaces") or [] if isinstance(n, Mapping))
    errs = []
    for key in ("hostname", "domainname"):
        v = spec.get(key)
        if v is None or v == "":
            continue
        if not own_uts:
            errs.append(f"{key} requires a new uts namespace")
        if not isinstance(v, str) or not _HOSTNAME.match(v):
            errs.append(f"invalid {key} {v!r}")
    return errs


def check_paths(spec: Mapping[str, Any]) -> list[str]:
    linux = _linux(spec)
    errs = []
    for key in ("maskedPaths", "readonlyPaths"):
        v = linux.get(key, [])
        if not isinstance(v, list):
            errs.append(f"linux.{key} must be a list")
            continue
        for p in v:
            if not _abs_clean(p):
                errs.append(f"linux.{key}: {p!r} must be an absolute path")
    for i, d in enumerate(linux.get("devices") or []):
        if not isinstance(d, Mapping) or not _abs_clean(d.get("path")) \
                or d.get("type") not in ("c", "b", "u", "p"):
            errs.append(f"linux.devices[{i}]: bad device {d!r}")
    return errs


def check_cgroups_path(spec: Mapping[str, Any]) -> list[str]:
    p = _linux(spec).get("cgroupsPath")
    if p is None:
        return []
    if not isinstance(p, str) or not p:
        return ["linux.cgroupsPath must be a non-empty string"]
    if ":" in p:  # systemd's slice:prefix:name
        return [] if re.fullmatch(r"[\w.@-]*:[\w.@-]*:[\w.@-]+", p) else [
            f"linux.cgroupsPath {p!r} is not a valid systemd cgroup path"]
    if not _abs_clean(p) or "//" in p or p.rstrip("/") == "":
        return [f"linux.cgroupsPath {p!r} must be an absolute path below the root, "
                f"without '..'"]
    return []


def check_devices(spec: Mapping[str, Any]) -> list[str]:
    res = _obj(_linux(spec).get("resources"))
    errs = []
    for i, d in enumerate(res.get("devices") or []):
        if not isinstance(d, Mapping) or not isinstance(d.get("allow"), bool):
            errs.append(f"linux.resources.devices[{i}] needs a boolean 'allow'")
            continue
        if d.get("type", "a") not in ("a", "c", "b"):
            errs.append(f"linux.resources.devices[{i}]: unknown type {d.get('type')!r}")
        access = d.get("access", "rwm")
        if not isinstance(access, str) or not re.fullmatch(r"[rwm]{1,3}", access):
            errs.append(f"linux.resources.devices[{i}]: bad access {access!r}")
        for k in ("major", "minor"):
            if d.get(k) is not None and (not _is_int(d[k]) or d[k] < 0):
                errs.append(f"linux.resources.devices[{i}]: {k} must be a non-negative integer")
    return errs


def check_resources(spec: Mapping[str, Any]) -> list[str]:
    res = _obj(_linux(spec).get("resources"))
    errs = [f"linux.resources.{k} must be an object" for k in ("memory", "cpu", "pids", "blockIO")
            if res.get(k) is not None and not isinstance(res[k], Mapping)]
    mem = _obj(res.get("memory"))
    lim, swap = mem.get("limit"), mem.get("swap")
    if lim is not None and (not _is_int(lim) or lim < -1):
        errs.append("linux.resources.memory.limit must be an integer")
    if swap is not None and (not _is_int(swap) or swap < -1):
        errs.append("linux.resources.memory.swap must be an integer")
    if _is_int(lim) and _is_int(swap) and lim > 0 and swap != -1 and swap < lim:
        errs.append("linux.resources.memory.swap (memory+swap) must not be below limit")
    cpu = _obj(res.get("cpu"))
    for k in ("shares", "period", "quota", "realtimeRuntime", "realtimePeriod"):
        if k in cpu and not _is_int(cpu[k]):
            errs.append(f"linux.resources.cpu.{k} must be an integer")
    for k in ("cpus", "mems"):
        if k in cpu and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", str(cpu[k])):
            errs.append(f"linux.resources.cpu.{k}: bad cpuset {cpu[k]!r}")
    pids = res.get("pids")
    if pids is not None and not _is_int(_obj(pids).get("limit")):
        errs.append("linux.resources.pids.limit must be an integer")
    return errs


def check_seccomp(spec: Mapping[str, Any]) -> list[str]:
    sc = _linux(spec).get("seccomp")
    if sc is None:
        return []
    if not isinstance(sc, Mapping):
        return ["linux.seccomp must be an object"]
    errs = []
    if sc.get("defaultAction") not in ACTIONS:
        errs.append(f"linux.seccomp: unknown defaultAction {sc.get('defaultAction')!r}")
    for a in sc.get("architectures") or []:
        if a not in ARCHES:
            errs.append(f"linux.seccomp: unknown architecture {a!r}")
    for i, call in enumerate(sc.get("syscalls") or []):
        if not isinstance(call, Mapping):
            errs.append(f"linux.seccomp.syscalls[{i}] must be an object")
            continue
        names = call.get("names")
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and re.fullmatch(r"\w+", n) for n in names):
            errs.append(f"linux.seccomp.syscalls[{i}]: names must be system call names")
        if call.get("action") not in ACTIONS:
            errs.append(f"linux.seccomp.syscalls[{i}]: unknown action {call.get('action')!r}")
        for a in call.get("args") or []:
            a = _obj(a)
            if a.get("op") not in OPERATORS:
                errs.append(f"linux.seccomp.syscalls[{i}]: unknown operator {a.get('op')!r}")
            if not _is_int(a.get("index")) or not 0 <= a["index"] <= 5:
                errs.append(f"linux.seccomp.syscalls[{i}]: argument index must be 0-5")
    return errs


def check_sysctl(spec: Mapping[str, Any]) -> list[str]:
    sysctl = _linux(spec).get("sysctl") or {}
    if not isinstance(sysctl, Mapping):
        return ["linux.sysctl must be an object"]
    return [f"linux.sysctl: bad entry {k!r}" for k, v in sysctl.items()
            if not isinstance(k, str) or not re.fullmatch(r"[\w.-]+", k) or ".." in k
            or not isinstance(v, str)]


CHECKS: tuple[Check, ...] = (
    check_required, check_user, check_capabilities, check_rlimits, check_process_misc,
    check_mounts, check_namespaces, check_hostname, check_paths, check_cgroups_path,
    check_devices, check_resources, check_seccomp, check_sysctl,
)


def problems(spec: Any) -> list[str]:
    """Every problem found in ``spec`` (empty when it is fine)."""
    if not isinstance(spec, Mapping):
        return ["the spec must be an object"]
    out: list[str] = []
    for check in CHECKS:
        try:
            out.extend(check(spec))
        except (AttributeError, TypeError, KeyError) as e:
            # A field of the wrong shape deeper down: report it instead of crashing.
            out.append(f"{check.__name__}: malformed spec ({e})")
    return out


def validate(spec: Any) -> None:
    """Raise InvalidArgument naming every problem of ``spec``; return if there is none."""
    found = problems(spec)
    if found:
        raise InvalidArgument("invalid runtime spec: " + "; ".join(found))
