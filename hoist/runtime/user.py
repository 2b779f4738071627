"""Resolve ``Config.User`` against the container's own /etc/passwd and /etc/group.

Follows runc's rules, which Docker uses: ``name``, ``uid``, ``name:group``, ``uid:gid``
(and mixes). A numeric user without a passwd entry is fine (gid 0 unless given); a name
without one is an error. When no group is given, the user's supplementary groups are
the groups in /etc/group that list the user's name. Files are read with
:mod:`.rootfs`, never through a symlink that leaves the container's root.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidArgument
from .rootfs import read_file_in_root

__all__ = ["ResolvedUser", "PasswdEntry", "GroupEntry", "parse_passwd", "parse_group",
           "resolve_user", "MAX_ID"]

MAX_ID = (1 << 31) - 1
_RANGE_MSG = f"uids and gids must be in range 0-{MAX_ID}"


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _num(s: str) -> int | None:
    s = s.strip()
    if not s.isdigit():
        return None
    return int(s)


def _lines(data: bytes | None) -> Iterable[list[str]]:
    if not data:
        return
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        yield line.split(":")


def parse_passwd(data: bytes | None) -> list[PasswdEntry]:
    out = []
    for f in _lines(data):
        f += [""] * (7 - len(f))
        uid, gid = _num(f[2]), _num(f[3])
        if uid is None:
            continue  # malformed lines are skipped, as libc does
        out.append(PasswdEntry(f[0], uid, gid or 0, f[5]))
    return out


def parse_group(data: bytes | None) -> list[GroupEntry]:
    out = []
    for f in _lines(data):
        f += [""] * (4 - len(f))
        gid = _num(f[2])
        if gid is None:
            continue
        members = tuple(m.strip() for m in f[3].split(",") if m.strip())
        out.append(GroupEntry(f[0], gid, members))
    return out


def _check_range(n: int) -> int:
    if n < 0 or n > MAX_ID:
        raise InvalidArgument(_RANGE_MSG)
    return n


def resolve_user(rootfs: str, user: str, group_add: Iterable[str] = ()) -> ResolvedUser:
    """``user`` as in ``docker run --user``; ``group_add`` as ``--group-add`` values."""
    user = (user or "").strip()
    user_arg, _, group_arg = user.partition(":")
    try:
        passwd = read_file_in_root(rootfs, "/etc/passwd")
        group = read_file_in_root(rootfs, "/etc/group")
    except OSError as e:
        raise InvalidArgument(f"unable to read users of the container: {e}") from None
    users = parse_passwd(passwd)
    groups = parse_group(group)

    uid, gid, home = 0, 0, "/"
    uid_num = _num(user_arg) if user_arg else None
    if user_arg and uid_num is None and not _valid_name(user_arg):
        raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
    if not user_arg:
        match = next((u for u in users if u.uid == 0), None)
    elif uid_num is not None:
        match = next((u for u in users if u.uid == uid_num), None)
    else:
        match = next((u for u in users if u.name == user_arg), None)
    matched_name = ""
    if match is not None:
        matched_name = match.name
        uid, gid, home = match.uid, match.gid, match.home or "/"
    elif user_arg:
        if uid_num is None:
            raise InvalidArgument(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(uid_num)

    sgids: list[int] = []
    if group_arg:
        gid_num = _num(group_arg)
        g = next((g for g in groups if g.name == group_arg
                  or (gid_num is not None and g.gid == gid_num)), None)
        if g is not None:
            gid = g.gid
        elif gid_num is None:
            raise InvalidArgument(
                f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _check_range(gid_num)
    elif matched_name:
        sgids = [g.gid for g in groups if matched_name in g.members]

    for extra in group_add or ():
        extra = str(extra).strip()
        num = _num(extra)
        g = next((g for g in groups if g.name == extra), None)
        if g is not None:
            sgids.append(g.gid)
        elif num is not None:
            sgids.append(_check_range(num))
        else:
            raise InvalidArgument(
                f"Unable to find group {extra}: no matching entries in group file")
    seen: list[int] = []
    for g in sgids:
        if g not in seen:
            seen.append(g)
    return ResolvedUser(uid, gid, tuple(seen), home)


def _valid_name(name: str) -> bool:
    # Names with control characters or separators can never match a passwd line.
    return not any(c in name for c in ":\n\r\0") and name.isprintable()
