"""Linux capabilities: names, numbers, Docker's default set and --cap-add/--cap-drop.

The numbers are the kernel's (include/uapi/linux/capability.h); they matter when a
runtime builds the 64-bit masks itself and when tests read CapEff from /proc.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidArgument

__all__ = ["CAPABILITIES", "DEFAULT_CAPS", "all_caps", "cap_mask", "has_cap", "normalize_cap",
           "own_bounding_set", "tweak_caps"]

# Kernel capability name -> bit number, in kernel order.
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# What an unprivileged Docker container gets (Docker's documented default set).
# Mask: 0x00000000a80425fb.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


def _last_cap() -> int:
    # Like Docker, "all" means all the running kernel knows: asking runc to raise a
    # capability the kernel lacks would fail the container start.
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return max(CAPABILITIES.values())


def own_bounding_set() -> int | None:
    """The calling process's capability bounding set (None if unreadable)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def has_cap(name: str) -> bool:
    """Whether the calling process has ``name`` in its effective set."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAPABILITIES[name] & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def all_caps() -> list[str]:
    """Every capability this kernel supports and the engine itself holds, in kernel
    order (what --privileged gets). A daemon running with a reduced bounding set (in a
    container, say) cannot hand out more than it has: the runtime would fail to start
    the container."""
    last = _last_cap()
    bounding = own_bounding_set()
    return [name for name, bit in CAPABILITIES.items()
            if bit <= last and (bounding is None or bounding >> bit & 1)]


def normalize_cap(name: str) -> str:
    """``sys_admin``/``CAP_SYS_ADMIN``/``Sys_Admin`` -> ``CAP_SYS_ADMIN``; ``all`` -> ``ALL``."""
    if not isinstance(name, str):
        raise InvalidArgument(f"invalid capability: {name!r}")
    up = name.strip().upper()
    if up == "ALL":
        return "ALL"
    if not up.startswith("CAP_"):
        up = "CAP_" + up
    if up not in CAPABILITIES:
        raise InvalidArgument(f'unknown capability: "{up}"')
    return up


def _normalize_all(names: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for n in names or ():
        c = normalize_cap(n)
        if c not in out:
            out.append(c)
    return out


def tweak_caps(cap_add: Iterable[str] | None, cap_drop: Iterable[str] | None,
               privileged: bool = False, base: Iterable[str] = DEFAULT_CAPS) -> list[str]:
    """Docker's rules: privileged gets everything; ``ALL`` in add means every cap but the
    dropped ones; ``ALL`` in drop means only the added ones; otherwise the base set minus
    drops plus adds (an add wins over a drop of the same cap)."""
    if privileged:
        return all_caps()
    adds = _normalize_all(cap_add)
    drops = _normalize_all(cap_drop)
    if "ALL" in adds:
        return [c for c in all_caps() if c not in drops]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    caps = [c for c in base if c not in drops]
    for c in adds:
        if c not in caps:
            caps.append(c)
    return caps


def cap_mask(caps: Iterable[str]) -> int:
    """The kernel bit mask for a list of capability names (as shown in CapEff)."""
    mask = 0
    for c in caps:
        mask |= 1 << CAPABILITIES[c]
    return mask
