"""OCI ``linux.seccomp`` -> a loaded filter, through libseccomp (ctypes).

(Named seccomp_filter, not seccomp: branch spec owns hoist/runtime/seccomp.py, which
renders the profile; this module compiles and loads what it rendered.)

``compile_filter`` builds the libseccomp context in the parent (the monitor) and exports
the BPF program; the forked child only installs it (one seccomp(2) call). Generating
the program for Docker's default profile takes ~8 ms, so programs are cached by the
profile's hash, in memory and (given a directory) on disk: the next container with the
same profile pays a file read.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import hashlib
import json
import os
from typing import Any, Mapping

from .. import linux

from ..errors import InvalidArgument, Unavailable

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}


_ATTR_CTL_OPTIMIZE = 8
# Bumped whenever the generated program changes for the same profile (disk cache key).
_PROGRAM_VERSION = b"hoist-seccomp-2\0"


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib: Any = None


def _libseccomp() -> Any:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise Unavailable(f"libseccomp is not installed (apt-get install libseccomp2): {e}") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def _action(name: str, errno_ret: int | None, default_errno: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if name == "SCMP_ACT_ERRNO":
        e = errno_ret if errno_ret is not None else (default_errno if default_errno is not None
                                                     else _errno.EPERM)
        return ACT_ERRNO | (int(e) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        e = errno_ret if errno_ret is not None else _errno.EPERM
        return ACT_TRACE | (int(e) & 0xFFFF)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return ACT_TRAP
    if name == "SCMP_ACT_LOG":
        return ACT_LOG
    raise InvalidArgument(f"seccomp: unsupported action {name!r}")


class Filter:
    """A compiled BPF program (not yet loaded). Load it in the process it confines;
    no_new_privs, when wanted, is set by the caller (the runtime orders it with setuid)."""

    def __init__(self, prog: bytes, flags: int = 0) -> None:
        self.prog = prog
        self.flags = flags

    def load(self) -> None:
        linux.seccomp_set_filter(self.prog, self.flags)

    def release(self) -> None:
        pass


_cache: dict[str, bytes] = {}


def compile_filter(spec: Mapping[str, Any], cache_dir: str | None = None) -> Filter:
    flags = 0
    for f in spec.get("flags") or []:
        if f == "SECCOMP_FILTER_FLAG_LOG":
            flags |= linux.SECCOMP_FILTER_FLAG_LOG
        elif f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW":
            flags |= linux.SECCOMP_FILTER_FLAG_SPEC_ALLOW
        elif f != "SECCOMP_FILTER_FLAG_TSYNC":  # one thread: nothing to synchronise
            raise InvalidArgument(f"seccomp: unsupported flag {f!r}")
    key = hashlib.sha256(_PROGRAM_VERSION + json.dumps(spec, sort_keys=True).encode()).hexdigest()
    prog = _cache.get(key)
    path = os.path.join(cache_dir, key + ".bpf") if cache_dir else ""
    if prog is None and path:
        try:
            with open(path, "rb") as fh:
                prog = fh.read()
            if not prog or len(prog) % 8:
                prog = None
        except OSError:
            prog = None
    if prog is None:
        ctx = _build(spec)
        try:
            prog = _export(ctx)
        finally:
            _libseccomp().seccomp_release(ctx)
        if path:
            try:
                os.makedirs(cache_dir or "", 0o700, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "wb") as fh:
                    fh.write(prog)
                os.replace(tmp, path)
            except OSError:
                pass  # a cache, never a reason to fail
    _cache[key] = prog
    return Filter(prog, flags)


def _export(ctx: int) -> bytes:
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        rc = _libseccomp().seccomp_export_bpf(ctx, w)
        os.close(w)
        w = -1
        if rc < 0:
            raise InvalidArgument(f"seccomp: cannot generate the filter: {_errno.errorcode.get(-rc, -rc)}")
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
        return out
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)


def _build(spec: Mapping[str, Any]) -> int:
    """The libseccomp context for an OCI linux.seccomp object."""
    lib = _libseccomp()
    default_errno = spec.get("defaultErrnoRet")
    default = _action(spec.get("defaultAction") or "SCMP_ACT_ALLOW", None, default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgument("seccomp: seccomp_init failed")
    # A binary tree of syscall numbers instead of a linear list: the kernel loads it
    # about twice as fast (its per-syscall allow cache is computed by running the
    # filter once per syscall). libseccomp < 2.5 lacks the attribute: linear it is.
    lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)
    try:
        native = lib.seccomp_arch_native()
        for arch in spec.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise InvalidArgument(f"seccomp: unknown architecture {arch!r}")
            if token == native:
                continue
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -_errno.EEXIST:
                raise InvalidArgument(f"seccomp: cannot add architecture {arch!r}")
        for rule in spec.get("syscalls") or []:
            act = _action(rule.get("action") or "", rule.get("errnoRet"), default_errno)
            if act == default:
                continue  # libseccomp refuses rules equal to the default; they add nothing
            args = rule.get("args") or []
            cmps = []
            for a in args:
                op = _OPS.get(a.get("op", ""))
                if op is None:
                    raise InvalidArgument(f"seccomp: unknown operator {a.get('op')!r}")
                cmps.append(_ArgCmp(int(a.get("index", 0)), op, int(a.get("value", 0)) & (2**64 - 1),
                                    int(a.get("valueTwo", 0)) & (2**64 - 1)))
            # Several conditions on one argument are alternatives (runc's reading of the
            # spec): one rule each; otherwise all conditions in one rule (AND).
            indexes = [c.arg for c in cmps]
            groups = [[c] for c in cmps] if len(set(indexes)) != len(indexes) else [cmps]
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:
                    continue  # unknown to this kernel/arch: nothing to filter
                for g in groups:
                    arr = (_ArgCmp * len(g))(*g) if g else None
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(g), arr)
                    if rc < 0:
                        raise InvalidArgument(f"seccomp: rule for {name!r} rejected: "
                                              f"{_errno.errorcode.get(-rc, -rc)}")
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx
