"""Seccomp profiles -> OCI ``linux.seccomp`` for one container.

Two inputs: hoist's built-in default rules (:mod:`.seccomp_default`) and a profile in
Docker's JSON format (what ``docker run --security-opt seccomp=file.json`` sends: the
CLI puts the file's *contents* into SecurityOpt). Both become :class:`Rule` lists and go
through one renderer, which keeps a rule only if its capability/architecture/kernel
conditions hold for this container — the OCI form has no conditions.
"""
from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidArgument
from .seccomp_default import (DEFAULT_ACTION, DEFAULT_ERRNO, DEFAULT_RULES, SUB_ARCHES, Arg,
                              Rule)

__all__ = ["ACTIONS", "OPERATORS", "ARCHES", "native_arch", "kernel_version", "render",
           "default_seccomp", "parse_docker_profile", "docker_profile_seccomp"]

ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
})
OPERATORS = frozenset({
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
})
ARCHES = frozenset({
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
})

# uname machine -> (Go architecture name used in profiles' arch conditions, seccomp arch)
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "i686": ("386", "SCMP_ARCH_X86"),
}


def native_arch() -> tuple[str, str]:
    """(Go arch name, SCMP_ARCH_*) of this machine."""
    m = platform.machine()
    return _MACHINES.get(m, (m, "SCMP_ARCH_" + m.upper()))


def kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _applies(rule: Rule, caps: frozenset[str], goarch: str, kernel: tuple[int, int]) -> bool:
    if rule.caps and not all(c in caps for c in rule.caps):
        return False
    if rule.not_caps and any(c in caps for c in rule.not_caps):
        return False
    if rule.arches and goarch not in rule.arches:
        return False
    if goarch in rule.not_arches:
        return False
    if rule.min_kernel is not None and kernel < rule.min_kernel:
        return False
    return True


def render(rules: Iterable[Rule], *, caps: Iterable[str], default_action: str = DEFAULT_ACTION,
           default_errno: int | None = DEFAULT_ERRNO, architectures: Iterable[str] | None = None,
           flags: Iterable[str] = (), arch: tuple[str, str] | None = None,
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a container with bounding set ``caps``."""
    goarch, scmp = arch or native_arch()
    kernel = kernel or kernel_version()
    capset = frozenset(caps)
    if architectures is None:
        architectures = [scmp, *SUB_ARCHES.get(scmp, ())]
    out: dict[str, Any] = {"defaultAction": default_action,
                           "architectures": list(architectures)}
    if default_errno is not None:
        out["defaultErrnoRet"] = default_errno
    if flags:
        out["flags"] = list(flags)
    syscalls = []
    for rule in rules:
        if not _applies(rule, capset, goarch, kernel):
            continue
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.args:
            entry["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two,
                              "op": a.op} for a in rule.args]
        if rule.errno is not None:
            entry["errnoRet"] = rule.errno
        syscalls.append(entry)
    out["syscalls"] = syscalls
    return out


def default_seccomp(caps: Iterable[str], arch: tuple[str, str] | None = None,
                    kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """Docker's default profile for a container with these capabilities."""
    return render(DEFAULT_RULES, caps=caps, arch=arch, kernel=kernel)


def _bad(msg: str) -> InvalidArgument:
    return InvalidArgument(f"invalid seccomp profile: {msg}")


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _bad(f"{what} must be a non-negative integer, got {v!r}")
    return v


def _strs(v: Any, what: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _bad(f"{what} must be a list of strings")
    return tuple(v)


def _filter(v: Any, what: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, int] | None]:
    if v is None:
        return (), (), None
    if not isinstance(v, Mapping):
        raise _bad(f"{what} must be an object")
    caps = _strs(v.get("caps"), f"{what}.caps")
    arches = _strs(v.get("arches"), f"{what}.arches")
    mk = v.get("minKernel")
    kernel = None
    if mk:
        m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", str(mk))
        if not m:
            raise _bad(f"invalid kernel version {mk!r}")
        kernel = (int(m.group(1)), int(m.group(2)))
    return caps, arches, kernel


def parse_docker_profile(text: str | bytes, arch: tuple[str, str] | None = None
                         ) -> tuple[list[Rule], str, int | None, list[str], list[str]]:
    """Docker's profile JSON -> (rules, defaultAction, defaultErrnoRet, architectures,
    flags). Unknown actions, operators and architectures are refused here, so a typo
    gives a clear error at create time instead of a runtime failure at start."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"not valid JSON: {e}") from None
    if not isinstance(doc, Mapping):
        raise _bad("must be a JSON object")
    goarch, scmp = arch or native_arch()
    default_action = doc.get("defaultAction")
    if default_action not in ACTIONS:
        raise _bad(f"unknown defaultAction {default_action!r}")
    default_errno = doc.get("defaultErrnoRet")
    if default_errno is not None:
        default_errno = _int(default_errno, "defaultErrnoRet")
    if doc.get("architectures") and doc.get("archMap"):
        raise _bad("'architectures' and 'archMap' were specified in the seccomp profile, "
                   "use either 'architectures' or 'archMap'")
    arches: list[str] = list(_strs(doc.get("architectures"), "architectures"))
    arch_map = doc.get("archMap") or []
    if not isinstance(arch_map, list):
        raise _bad("archMap must be a list")
    for entry in arch_map:
        if not isinstance(entry, Mapping):
            raise _bad("archMap entries must be objects")
        if entry.get("architecture") == scmp:
            arches = [scmp, *_strs(entry.get("subArchitectures"), "subArchitectures")]
    for a in arches:
        if a not in ARCHES:
            raise _bad(f"unknown architecture {a!r}")
    flags = list(_strs(doc.get("flags"), "flags"))
    calls = doc.get("syscalls") or []
    if not isinstance(calls, list):
        raise _bad("syscalls must be a list")
    rules: list[Rule] = []
    for i, call in enumerate(calls):
        if not isinstance(call, Mapping):
            raise _bad(f"syscalls[{i}] must be an object")
        name, names = call.get("name"), call.get("names")
        if name and names:
            raise _bad("'name' and 'names' were specified in the seccomp profile, "
                       "use either 'name' or 'names'")
        all_names = _strs(names, f"syscalls[{i}].names") or ((name,) if isinstance(name, str) and name else ())
        if not all_names:
            raise _bad(f"syscalls[{i}] names no system call")
        action = call.get("action")
        if action not in ACTIONS:
            raise _bad(f"unknown action {action!r} in syscalls[{i}]")
        args = []
        for a in call.get("args") or []:
            if not isinstance(a, Mapping):
                raise _bad(f"syscalls[{i}].args entries must be objects")
            op = a.get("op")
            if op not in OPERATORS:
                raise _bad(f"unknown operator {op!r} in syscalls[{i}]")
            index = _int(a.get("index", 0), "args.index")
            if index > 5:
                raise _bad(f"argument index {index} out of range 0-5 in syscalls[{i}]")
            args.append(Arg(index, _int(a.get("value", 0), "args.value"), op,
                            _int(a.get("valueTwo", 0), "args.valueTwo")))
        errno = call.get("errnoRet")
        if errno is not None:
            errno = _int(errno, "errnoRet")
        inc_caps, inc_arches, min_kernel = _filter(call.get("includes"), "includes")
        exc_caps, exc_arches, _ = _filter(call.get("excludes"), "excludes")
        rules.append(Rule(all_names, action, tuple(args), errno, inc_caps, exc_caps,
                          inc_arches, exc_arches, min_kernel))
    return rules, default_action, default_errno, arches, flags


def docker_profile_seccomp(text: str | bytes, caps: Iterable[str],
                           arch: tuple[str, str] | None = None,
                           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    rules, action, errno, arches, flags = parse_docker_profile(text, arch)
    return render(rules, caps=caps, default_action=action, default_errno=errno,
                  architectures=arches, flags=flags, arch=arch, kernel=kernel)
