"""Checks an OCI runtime spec (plain data) before a runtime acts on it.

Each check is a small function ``spec -> list of problems``; :func:`validate` runs them
all and raises one InvalidArgument naming every problem, so a caller fixes everything
in one go. The checks are about what would make a runtime misbehave or escape (paths
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
_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "no change" to the kernel, never a real id
_RLIM_MAX = (1 << 64) - 1
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")


def _obj(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad_path(p: Any) -> str:
    """Why ``p`` is not a clean absolute path, or "" when it is."""
    if not isinstance(p, str) or not p.startswith("/"):
        return "is not an absolute path"
    if "\0" in p:
        return "contains a NUL byte"
    if ".." in p.split("/"):
        return "contains '..'"
    return ""


def check_required(spec: Mapping[str, Any]) -> list[str]:
    out = []
    if not isinstance(spec.get("ociVersion"), str) or not spec.get("ociVersion"):
        out.append("ociVersion is missing")
    root = spec.get("root")
    if not isinstance(root, Mapping) or not isinstance(root.get("path"), str) or not root["path"]:
        out.append("root.path is missing")
    proc = spec.get("process")
    if not isinstance(proc, Mapping):
        out.append("process is missing")
    else:
        args = proc.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            out.append("process.args must be a non-empty list of strings")
        if not isinstance(proc.get("cwd"), str):
            out.append("process.cwd is missing")
        env = proc.get("env", [])
        if not isinstance(env, list) or not all(isinstance(e, str) and "=" in e for e in env):
            out.append("process.env entries must be KEY=value strings")
    if not isinstance(spec.get("linux"), Mapping):
        out.append("linux is missing")
    return out


def check_process(spec: Mapping[str, Any]) -> list[str]:
    proc = _obj(spec.get("process"))
    out = []
    cwd = proc.get("cwd")
    if isinstance(cwd, str) and not cwd.startswith("/"):
        out.append(f"process.cwd {cwd!r} is not an absolute path")
    user = _obj(proc.get("user"))
    for key in ("uid", "gid"):
        v = user.get(key, 0)
        if not _is_int(v) or not 0 <= v <= _MAX_ID:
            out.append(f"process.user.{key} {v!r} is not a valid id")
    for g in user.get("additionalGids") or []:
        if not _is_int(g) or not 0 <= g <= _MAX_ID:
            out.append(f"process.user.additionalGids: {g!r} is not a valid id")
    adj = proc.get("oomScoreAdj", 0)
    if not _is_int(adj) or not -1000 <= adj <= 1000:
        out.append(f"process.oomScoreAdj {adj!r} is out of range -1000..1000")
    return out


def check_capabilities(spec: Mapping[str, Any]) -> list[str]:
    caps = _obj(_obj(spec.get("process")).get("capabilities"))
    out = []
    for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        for c in caps.get(kind) or []:
            if c not in CAPABILITIES:
                out.append(f"process.capabilities.{kind}: unknown capability {c!r}")
    return out


def check_rlimits(spec: Mapping[str, Any]) -> list[str]:
    out = []
    seen: set[str] = set()
    for r in _obj(spec.get("process")).get("rlimits") or []:
        r = _obj(r)
        t = r.get("type")
        if t not in RLIMITS:
            out.append(f"process.rlimits: unknown type {t!r}")
            continue
        if t in seen:
            out.append(f"process.rlimits: {t} given twice")
        seen.add(t)
        soft, hard = r.get("soft"), r.get("hard")
        if not (_is_int(soft) and _is_int(hard) and 0 <= soft <= _RLIM_MAX
                and 0 <= hard <= _RLIM_MAX):
            out.append(f"process.rlimits: {t} needs non-negative soft and hard values")
        elif soft > hard:
            out.append(f"process.rlimits: {t} soft limit {soft} exceeds hard limit {hard}")
    return out


def check_mounts(spec: Mapping[str, Any]) -> list[str]:
    out = []
    mounts = spec.get("mounts") or []
    if not isinstance(mounts, list):
        return ["mounts must be a list"]
    for i, m in enumerate(mounts):
        m = _obj(m)
        dest = m.get("destination")
        why = _bad_path(dest)
        if why:
            out.append(f"mounts[{i}].destination {dest!r} {why}")
        typ = m.get("type")
        if dest in ("/proc", "/sys") and typ not in ({"/proc": "proc", "/sys": "sysfs"}[dest],
                                                     "bind"):
            out.append(f"mounts[{i}]: {dest} must be mounted with type "
                       f"{ {'/proc': 'proc', '/sys': 'sysfs'}[dest]!r}, not {typ!r}")
        if typ == "bind":
            why = _bad_path(m.get("source"))
            if why:
                out.append(f"mounts[{i}].source {m.get('source')!r} {why}")
        opts = m.get("options", [])
        if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
            out.append(f"mounts[{i}].options must be a list of strings")
    return out


def check_namespaces(spec: Mapping[str, Any]) -> list[str]:
    out = []
    seen: set[str] = set()
    for ns in _obj(spec.get("linux")).get("namespaces") or []:
        ns = _obj(ns)
        t = ns.get("type")
        if t not in NAMESPACES:
            out.append(f"linux.namespaces: unknown type {t!r}")
            continue
        if t in seen:
            out.append(f"linux.namespaces: {t} given twice")
        seen.add(t)
        if "path" in ns and _bad_path(ns["path"]):
            out.append(f"linux.namespaces: {t} path {ns['path']!r} {_bad_path(ns['path'])}")
    return out


def check_hostname(spec: Mapping[str, Any]) -> list[str]:
    out = []
    own_uts = any(_obj(ns).get("type") == "uts" and "path" not in _obj(ns)
                  for ns in _obj(spec.get("linux")).get("namespaces") or [])
    for key in ("hostname", "domainname"):
        v = spec.get(key)
        if v is None or v == "":
            continue
        if not own_uts:
            out.append(f"{key} can only be set with a new uts namespace")
        if not isinstance(v, str) or not _HOSTNAME.match(v):
            out.append(f"{key} {v!r} is not a valid host name")
    return out


def check_paths(spec: Mapping[str, Any]) -> list[str]:
    linux = _obj(spec.get("linux"))
    out = []
    for key in ("maskedPaths", "readonlyPaths"):
        for p in linux.get(key) or []:
            why = _bad_path(p)
            if why:
                out.append(f"linux.{key}: {p!r} {why}")
    for i, d in enumerate(linux.get("devices") or []):
        d = _obj(d)
        why = _bad_path(d.get("path"))
        if why:
            out.append(f"linux.devices[{i}].path {d.get('path')!r} {why}")
        if d.get("type") not in ("c", "b", "u", "p"):
            out.append(f"linux.devices[{i}]: unknown type {d.get('type')!r}")
    return out


def check_cgroups_path(spec: Mapping[str, Any]) -> list[str]:
    p = _obj(spec.get("linux")).get("cgroupsPath")
    if p is None or p == "":
        return []
    if not isinstance(p, str):
        return ["linux.cgroupsPath must be a string"]
    if ":" in p:  # systemd's "slice:prefix:name" form
        return [] if re.fullmatch(r"[\w.@-]*:[\w.@-]+:[\w.@-]+", p) else [
            f"linux.cgroupsPath {p!r} is not a valid systemd cgroup path"]
    why = _bad_path(p)
    if why:
        return [f"linux.cgroupsPath {p!r} {why}"]
    if p.rstrip("/") == "":
        return ["linux.cgroupsPath must not be the root cgroup"]
    return []


def check_resources(spec: Mapping[str, Any]) -> list[str]:
    res = _obj(_obj(spec.get("linux")).get("resources"))
    out = []
    for i, d in enumerate(res.get("devices") or []):
        d = _obj(d)
        if not isinstance(d.get("allow"), bool):
            out.append(f"linux.resources.devices[{i}].allow must be a boolean")
        if d.get("type", "a") not in ("a", "c", "b"):
            out.append(f"linux.resources.devices[{i}]: unknown type {d.get('type')!r}")
        access = d.get("access", "rwm")
        if not isinstance(access, str) or not access or set(access) - set("rwm"):
            out.append(f"linux.resources.devices[{i}]: invalid access {access!r}")
    mem = _obj(res.get("memory"))
    limit, swap = mem.get("limit"), mem.get("swap")
    if limit is not None and (not _is_int(limit) or limit < -1):
        out.append(f"linux.resources.memory.limit {limit!r} is invalid")
    if (_is_int(limit) and _is_int(swap) and limit > 0 and swap != -1 and swap < limit):
        out.append("linux.resources.memory.swap must not be below memory.limit")
    pids = _obj(res.get("pids"))
    if "limit" in pids and not _is_int(pids["limit"]):
        out.append("linux.resources.pids.limit must be an integer")
    return out


def check_seccomp(spec: Mapping[str, Any]) -> list[str]:
    sc = _obj(spec.get("linux")).get("seccomp")
    if sc is None:
        return []
    sc = _obj(sc)
    out = []
    if sc.get("defaultAction") not in ACTIONS:
        out.append(f"linux.seccomp.defaultAction {sc.get('defaultAction')!r} is unknown")
    for a in sc.get("architectures") or []:
        if a not in ARCHES:
            out.append(f"linux.seccomp.architectures: unknown {a!r}")
    for i, call in enumerate(sc.get("syscalls") or []):
        call = _obj(call)
        names = call.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n
                                                               for n in names):
            out.append(f"linux.seccomp.syscalls[{i}].names must list system calls")
        if call.get("action") not in ACTIONS:
            out.append(f"linux.seccomp.syscalls[{i}].action {call.get('action')!r} is unknown")
        for arg in call.get("args") or []:
            arg = _obj(arg)
            if arg.get("op") not in OPERATORS:
                out.append(f"linux.seccomp.syscalls[{i}]: unknown operator {arg.get('op')!r}")
            if not _is_int(arg.get("index")) or not 0 <= arg["index"] <= 5:
                out.append(f"linux.seccomp.syscalls[{i}]: argument index must be 0-5")
    return out


def check_sysctl(spec: Mapping[str, Any]) -> list[str]:
    out = []
    for k, v in _obj(_obj(spec.get("linux")).get("sysctl")).items():
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", str(k)) or ".." in k:
            out.append(f"linux.sysctl: invalid entry {k!r}")
    return out


CHECKS: tuple[Check, ...] = (
    check_required, check_process, check_capabilities, check_rlimits, check_mounts,
    check_namespaces, check_hostname, check_paths, check_cgroups_path, check_resources,
    check_seccomp, check_sysctl,
)


def problems(spec: Any) -> list[str]:
    """Every problem found in ``spec`` (empty when it is fine)."""
    if not isinstance(spec, Mapping):
        return ["the spec must be a JSON object"]
    out: list[str] = []
    for check in CHECKS:
        out.extend(check(spec))
    return out


def validate(spec: Any) -> None:
    """Raise InvalidArgument naming every problem of ``spec``."""
    found = problems(spec)
    if found:
        raise InvalidArgument("invalid runtime spec: " + "; ".join(found))
