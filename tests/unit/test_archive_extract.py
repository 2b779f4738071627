"""Layer extraction: hostile archives must never touch anything outside ``dest``.

Hostile archives are built with :mod:`tarfile` (writing only) so the parser under test is
not also the one producing its input. Every hostile test plants a victim directory beside
``dest`` and checks afterwards that nothing outside ``dest`` changed or appeared.
"""
from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from hoist.archive import ExtractStats, extract_layer, safe_remove_tree, open_root
from hoist.archive import extract as extract_mod
from hoist.errors import (InvalidContent, SizeLimitExceeded, Unavailable, UnsafeArchive)
from _support import user_xattrs_work

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (chown, mknod, trusted.* xattrs)")
needs_nonroot = pytest.mark.skipif(ROOT, reason="checks the unprivileged fallback")

CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")  # cap_net_bind_service+ep


# --------------------------------------------------------------------------- builders


def _info(name: str, typ: bytes, mode: int, mtime: int = 1_600_000_000, **kw: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.mode = mode
    ti.mtime = mtime
    for key, value in kw.items():
        setattr(ti, key, value)
    return ti


def F(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> tuple:
    ti = _info(name, tarfile.REGTYPE, mode, **kw)
    ti.size = len(data)
    return ti, data


def D(name: str, mode: int = 0o755, **kw: object) -> tuple:
    return _info(name, tarfile.DIRTYPE, mode, **kw), None


def L(name: str, target: str, **kw: object) -> tuple:
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw), None


def H(name: str, target: str, **kw: object) -> tuple:
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw), None


def DEV(name: str, typ: bytes = tarfile.CHRTYPE, major: int = 1, minor: int = 3,
        mode: int = 0o666) -> tuple:
    return _info(name, typ, mode, devmajor=major, devminor=minor), None


def PAX(member: tuple, **records: str) -> tuple:
    member[0].pax_headers = dict(records)
    return member


def make_tar(*members: tuple, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def xattr_value(raw: bytes) -> str:
    """tarfile takes PAX values as str; surrogateescape carries arbitrary bytes."""
    return raw.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- site


def snapshot(root: Path, skip: str | None = None) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if skip is not None and (rel == skip or rel.startswith(skip + "/")):
                continue
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                content: object = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            else:
                content = st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_mtime_ns, content)
    return out


@dataclass
class Site:
    base: Path
    dest: Path
    victim: Path
    before: dict[str, tuple]

    def extract(self, data: bytes, **kw: object) -> ExtractStats:
        kw.setdefault("whiteouts", "apply")
        return extract_layer(io.BytesIO(data), str(self.dest), **kw)  # type: ignore[arg-type]

    def assert_outside_untouched(self) -> None:
        assert snapshot(self.base, skip="dest") == self.before
        assert sorted(os.listdir(self.base)) == ["dest", "victim"]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_bytes(b"precious")
    (victim / "sub").mkdir()
    (victim / "sub" / "deep").write_bytes(b"deep")
    return Site(tmp_path, dest, victim, snapshot(tmp_path, skip="dest"))


# --------------------------------------------------------------------------- basics


def test_extracts_a_normal_layer(site: Site) -> None:
    data = make_tar(
        D("./"),
        D("./etc/", mode=0o755, mtime=1_000),
        F("./etc/hostname", b"box\n", mode=0o644, mtime=2_000),
        F("./bin/tool", b"#!/bin/sh\n", mode=0o755),          # parent dir implied
        L("./bin/sh", "/usr/bin/dash"),
        H("./etc/hostname2", "./etc/hostname"),
        D("./tmp/", mode=0o1777),
    )
    stats = site.extract(data, whiteouts="overlay")
    assert stats == ExtractStats(entries=7, bytes=len(b"box\n") + len(b"#!/bin/sh\n"))
    d = site.dest
    assert (d / "etc/hostname").read_bytes() == b"box\n"
    assert os.stat(d / "etc/hostname").st_mtime_ns == 2_000 * 10**9
    # The directory's mtime survives the children written after it.
    assert os.stat(d / "etc").st_mtime_ns == 1_000 * 10**9
    assert stat.S_IMODE(os.stat(d / "bin/tool").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(d / "bin").st_mode) == 0o755   # implicit parent
    assert os.readlink(d / "bin/sh") == "/usr/bin/dash"          # stored verbatim
    assert os.stat(d / "etc/hostname2").st_ino == os.stat(d / "etc/hostname").st_ino
    assert stat.S_IMODE(os.stat(d / "tmp").st_mode) == 0o1777
    site.assert_outside_untouched()


def test_on_member_sees_every_entry(site: Site) -> None:
    seen: list[str] = []
    site.extract(make_tar(D("a/"), F("a/b", b"x"), L("c", "a")),
                 on_member=lambda e: seen.append(e.name))
    assert seen == ["a/", "a/b", "c"]  # raw archive names


def test_long_and_unicode_names(site: Site) -> None:
    long_dir = "d" * 120
    long_name = f"{long_dir}/{'f' * 200}"
    site.extract(make_tar(F(long_name, b"pax"), F("ünïcødé", b"u")))
    site.extract(make_tar(F("g" * 150, b"gnu"), fmt=tarfile.GNU_FORMAT))
    assert (site.dest / long_name).read_bytes() == b"pax"
    assert (site.dest / "ünïcødé").read_bytes() == b"u"
    assert (site.dest / ("g" * 150)).read_bytes() == b"gnu"


def test_empty_stream_is_an_empty_layer(site: Site) -> None:
    assert site.extract(b"") == ExtractStats(0, 0)
    assert os.listdir(site.dest) == []


# --------------------------------------------------------------------------- hostile names


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "../victim/file",
                                  "./../victim/new", "a/b/../../../victim/x"])
def test_dotdot_names_are_refused(site: Site, name: str) -> None:
    with pytest.raises(UnsafeArchive, match=r"\.\."):
        site.extract(make_tar(F(name, b"pwned")))
    site.assert_outside_untouched()


def test_absolute_names_are_refused(site: Site) -> None:
    target = str(site.victim / "file")
    for member in (F(target, b"pwned"), D(str(site.victim / "newdir")), L(str(site.victim / "l"), "x")):
        with pytest.raises(UnsafeArchive, match="absolute"):
            site.extract(make_tar(member))
    assert (site.victim / "file").read_bytes() == b"precious"
    site.assert_outside_untouched()


def test_nul_in_name_is_refused(site: Site) -> None:
    with pytest.raises(UnsafeArchive, match="NUL"):
        site.extract(make_tar(PAX(F("x", b"1"), path="a\x00b")))
    site.assert_outside_untouched()


def test_overlong_name_is_refused(site: Site) -> None:
    name = "/".join(["n" * 200] * 25)  # > 4096 bytes
    with pytest.raises(UnsafeArchive, match="longer than"):
        site.extract(make_tar(F(name, b"1")))
    site.assert_outside_untouched()


# --------------------------------------------------------------------------- symlinks


def test_write_through_absolute_symlink_is_refused(site: Site) -> None:
    data = make_tar(L("evil", str(site.victim)), F("evil/file", b"pwned"))
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(data)
    assert os.readlink(site.dest / "evil") == str(site.victim)
    site.assert_outside_untouched()


def test_write_through_relative_symlink_is_refused(site: Site) -> None:
    data = make_tar(L("evil", "../../victim"), F("evil/new", b"pwned"))
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(data, whiteouts="overlay")
    site.assert_outside_untouched()


def test_directory_through_nested_symlink_is_refused(site: Site) -> None:
    data = make_tar(D("a/"), L("a/evil", str(site.victim)), D("a/evil/sub/x/"),
                    F("a/evil/sub/x/f", b"pwned"))
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(data)
    site.assert_outside_untouched()


def test_symlink_in_dest_from_lower_layer_is_not_followed(site: Site) -> None:
    os.symlink(str(site.victim), site.dest / "lib")  # planted by an earlier layer
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(make_tar(F("lib/file", b"pwned")))
    site.assert_outside_untouched()


def test_regular_file_replaces_symlink_instead_of_writing_through_it(site: Site) -> None:
    data = make_tar(L("link", str(site.victim / "file")), F("link", b"mine"))
    site.extract(data)
    assert not os.path.islink(site.dest / "link")
    assert (site.dest / "link").read_bytes() == b"mine"
    site.assert_outside_untouched()


def test_directory_replaces_symlink_instead_of_following_it(site: Site) -> None:
    data = make_tar(L("d", str(site.victim)), D("d/", mode=0o700), F("d/x", b"mine"))
    site.extract(data)
    assert (site.dest / "d").is_dir() and not (site.dest / "d").is_symlink()
    assert (site.dest / "d/x").read_bytes() == b"mine"
    site.assert_outside_untouched()


def test_symlink_targets_are_data(site: Site) -> None:
    site.extract(make_tar(L("abs", "/etc/shadow"), L("rel", "../../../../x"), L("dot", ".")))
    assert os.readlink(site.dest / "abs") == "/etc/shadow"
    assert os.readlink(site.dest / "rel") == "../../../../x"
    site.assert_outside_untouched()


# --------------------------------------------------------------------------- hardlinks


@pytest.mark.parametrize("target", ["../victim/file", "/etc/passwd", "a/../../victim/file"])
def test_hardlink_escapes_are_refused(site: Site, target: str) -> None:
    with pytest.raises(UnsafeArchive):
        site.extract(make_tar(H("link", target)))
    assert not os.path.lexists(site.dest / "link")
    site.assert_outside_untouched()


def test_hardlink_to_absolute_victim_path_is_refused(site: Site) -> None:
    with pytest.raises(UnsafeArchive, match="absolute"):
        site.extract(make_tar(H("link", str(site.victim / "file"))))
    assert os.stat(site.victim / "file").st_nlink == 1
    site.assert_outside_untouched()


def test_hardlink_through_symlinked_directory_is_refused(site: Site) -> None:
    data = make_tar(L("evil", str(site.victim)), H("link", "evil/file"))
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(data)
    assert os.stat(site.victim / "file").st_nlink == 1
    site.assert_outside_untouched()


@pytest.mark.parametrize("members,reason", [
    ((L("sym", str(Path("/nonexistent"))), H("link", "sym")), "not a regular file"),
    ((D("dir/"), H("link", "dir")), "not a regular file"),
    ((H("link", "missing"),), "does not exist"),
    ((H("link", "."),), "root"),
])
def test_hardlink_targets_must_be_existing_regular_files(site: Site, members: tuple,
                                                        reason: str) -> None:
    with pytest.raises(UnsafeArchive, match=reason):
        site.extract(make_tar(*members))
    site.assert_outside_untouched()


def test_hardlink_to_symlink_pointing_outside_is_refused(site: Site) -> None:
    data = make_tar(L("sym", str(site.victim / "file")), H("link", "sym"))
    with pytest.raises(UnsafeArchive, match="not a regular file"):
        site.extract(data)
    assert os.stat(site.victim / "file").st_nlink == 1
    site.assert_outside_untouched()


def test_hardlink_replacing_its_own_target_ancestor_is_refused(site: Site) -> None:
    data = make_tar(D("a/"), F("a/f", b"x"), H("a", "a/f"))
    with pytest.raises(UnsafeArchive, match="removed"):
        site.extract(data)
    site.assert_outside_untouched()


# --------------------------------------------------------------------------- replacement


def test_later_entries_replace_earlier_ones(site: Site) -> None:
    data = make_tar(F("a", b"one"), H("b", "a"), F("a", b"two", mode=0o600))
    site.extract(data)
    assert (site.dest / "a").read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(site.dest / "a").st_mode) == 0o600
    # The old inode (still linked as b) was replaced, not rewritten in place.
    assert (site.dest / "b").read_bytes() == b"one"


def test_directory_replaced_by_file(site: Site) -> None:
    data = make_tar(D("d/"), F("d/x", b"1"), D("d/sub/"), L("d/sub/l", str(site.victim)),
                    F("d", b"file now"))
    site.extract(data)
    assert (site.dest / "d").read_bytes() == b"file now"
    site.assert_outside_untouched()


def test_file_replaced_by_directory_and_existing_dir_updated(site: Site) -> None:
    data = make_tar(F("d", b"x"), D("d/", mode=0o700), F("d/y", b"y"), D("d/", mode=0o750))
    site.extract(data)
    assert (site.dest / "d").is_dir()
    assert (site.dest / "d/y").read_bytes() == b"y"
    assert stat.S_IMODE(os.stat(site.dest / "d").st_mode) == 0o750


def test_root_entry_and_dot_slash_prefix(site: Site) -> None:
    before = os.stat(site.dest)
    site.extract(make_tar(D(".", mode=0o700), D("./", mode=0o700), F("./x", b"1"), F(".//y/./z", b"2")))
    assert stat.S_IMODE(os.stat(site.dest).st_mode) == stat.S_IMODE(before.st_mode)
    assert (site.dest / "x").read_bytes() == b"1"
    assert (site.dest / "y/z").read_bytes() == b"2"


# --------------------------------------------------------------------------- devices, modes, xattrs


@pytest.mark.parametrize("member", [DEV("null"), DEV("sda", tarfile.BLKTYPE, 8, 0),
                                    (_info("fifo", tarfile.FIFOTYPE, 0o644), None)])
def test_devices_refused_when_not_allowed(site: Site, member: tuple) -> None:
    with pytest.raises(UnsafeArchive, match="device"):
        site.extract(make_tar(member), allow_devices=False)
    assert os.listdir(site.dest) == []
    site.assert_outside_untouched()


@needs_root
def test_devices_created_as_root(site: Site) -> None:
    site.extract(make_tar(DEV("null", mode=0o666), DEV("sda", tarfile.BLKTYPE, 8, 0, 0o660),
                          (_info("fifo", tarfile.FIFOTYPE, 0o640), None)))
    st = os.lstat(site.dest / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = os.lstat(site.dest / "sda")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(8, 0)
    assert stat.S_ISFIFO(os.lstat(site.dest / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(site.dest / "fifo").st_mode) == 0o640


@needs_nonroot
def test_devices_skipped_without_root(site: Site) -> None:
    site.extract(make_tar(DEV("null"), (_info("fifo", tarfile.FIFOTYPE, 0o640), None)))
    assert not os.path.lexists(site.dest / "null")
    assert stat.S_ISFIFO(os.lstat(site.dest / "fifo").st_mode)


@needs_root
def test_setuid_and_ownership_preserved(site: Site) -> None:
    data = make_tar(F("su", b"\x7fELF", mode=0o4755, uid=1000, gid=1000),
                    F("sg", b"x", mode=0o2711, uid=0, gid=50),
                    D("sticky/", mode=0o1777, uid=12, gid=13),
                    L("lnk", "su", uid=1000, gid=1001))
    site.extract(data)
    st = os.stat(site.dest / "su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 1000)
    st = os.stat(site.dest / "sg")
    assert stat.S_IMODE(st.st_mode) == 0o2711 and st.st_gid == 50
    st = os.stat(site.dest / "sticky")
    assert stat.S_IMODE(st.st_mode) == 0o1777 and (st.st_uid, st.st_gid) == (12, 13)
    st = os.lstat(site.dest / "lnk")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


def test_setuid_bit_kept_without_root(site: Site) -> None:
    site.extract(make_tar(F("su", b"x", mode=0o4755)))
    assert stat.S_IMODE(os.stat(site.dest / "su").st_mode) == 0o4755


@needs_root
def test_security_capability_preserved_as_data(site: Site) -> None:
    data = make_tar(PAX(F("ping", b"\x7fELF", mode=0o755, uid=1000),
                        **{"SCHILY.xattr.security.capability": xattr_value(CAP_NET_BIND)}))
    site.extract(data)
    assert os.getxattr(site.dest / "ping", "security.capability") == CAP_NET_BIND


def test_user_xattrs_kept_and_host_xattrs_dropped(site: Site) -> None:
    if not user_xattrs_work(site.dest):
        pytest.skip("file system lacks user xattrs")
    data = make_tar(
        PAX(F("f", b"1"), **{"SCHILY.xattr.user.bin": xattr_value(b"\xff\x00raw"),
                             "SCHILY.xattr.trusted.overlay.opaque": "y",
                             "SCHILY.xattr.security.selinux": "system_u:object_r:shadow_t:s0",
                             "SCHILY.xattr.system.posix_acl_access": "x"}),
        PAX(D("d/"), **{"SCHILY.xattr.user.d": "dir", "SCHILY.xattr.trusted.overlay.opaque": "y"}),
    )
    site.extract(data)
    assert os.getxattr(site.dest / "f", "user.bin") == b"\xff\x00raw"
    assert os.getxattr(site.dest / "d", "user.d") == b"dir"
    names = set(os.listxattr(site.dest / "f")) | set(os.listxattr(site.dest / "d"))
    assert not any(n.startswith(("trusted.", "system.")) for n in names)
    assert "security.selinux" not in os.listxattr(site.dest / "f") or \
        os.getxattr(site.dest / "f", "security.selinux") != b"system_u:object_r:shadow_t:s0"


# --------------------------------------------------------------------------- whiteouts: escapes


@pytest.mark.parametrize("mode", ["apply", "overlay"])
@pytest.mark.parametrize("name", ["../.wh.victim", "a/../../.wh.victim"])
def test_whiteout_dotdot_escape_refused(site: Site, mode: str, name: str) -> None:
    with pytest.raises(UnsafeArchive, match=r"\.\."):
        site.extract(make_tar(F(name)), whiteouts=mode)
    site.assert_outside_untouched()


@pytest.mark.parametrize("mode", ["apply", "overlay"])
@pytest.mark.parametrize("name", [".wh..", ".wh...", "sub/.wh..", ".wh."])
def test_whiteout_of_dot_names_refused(site: Site, mode: str, name: str) -> None:
    with pytest.raises(UnsafeArchive, match="whiteout"):
        site.extract(make_tar(D("sub/"), F(name)), whiteouts=mode)
    site.assert_outside_untouched()


@pytest.mark.parametrize("wh", ["evil/.wh.file", "evil/.wh..wh..opq", "evil/sub/.wh.deep"])
def test_whiteout_through_symlink_refused_in_apply_mode(site: Site, wh: str) -> None:
    os.symlink(str(site.victim), site.dest / "evil")  # lower layer content
    with pytest.raises(UnsafeArchive, match="symlink"):
        site.extract(make_tar(F(wh)), whiteouts="apply")
    site.assert_outside_untouched()


def test_whiteout_of_symlink_removes_only_the_link(site: Site) -> None:
    os.symlink(str(site.victim), site.dest / "link")
    (site.dest / "d").mkdir()
    os.symlink(str(site.victim), site.dest / "d" / "inner")
    os.symlink(str(site.victim / "file"), site.dest / "d" / "f")
    site.extract(make_tar(F(".wh.link"), F(".wh.d")), whiteouts="apply")
    assert os.listdir(site.dest) == []
    site.assert_outside_untouched()


# --------------------------------------------------------------------------- whiteouts: apply


def _lower(dest: Path) -> None:
    for rel, content in {"d/old1": b"o1", "d/sub/old2": b"o2", "d/sub/keep": b"k",
                         "keep/other": b"x", "gone/deep/file": b"g", "file": b"f"}.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(content)


def test_apply_whiteouts_remove_files_and_trees(site: Site) -> None:
    _lower(site.dest)
    site.extract(make_tar(F(".wh.file"), F(".wh.gone"), F("d/sub/.wh.old2"), F(".wh.absent")),
                 whiteouts="apply")
    assert sorted(os.listdir(site.dest)) == ["d", "keep"]
    assert sorted(os.listdir(site.dest / "d/sub")) == ["keep"]
    site.assert_outside_untouched()


@pytest.mark.parametrize("marker_first", [True, False])
def test_apply_opaque_keeps_same_layer_entries(site: Site, marker_first: bool) -> None:
    _lower(site.dest)
    marker = [F("d/.wh..wh..opq")]
    layer = [F("d/new", b"n"), D("d/sub/"), F("d/sub/fresh", b"f"), D("d/newdir/"),
             F("d/newdir/x", b"x")]
    site.extract(make_tar(*(marker + layer if marker_first else layer + marker)),
                 whiteouts="apply")
    d = site.dest / "d"
    assert sorted(os.listdir(d)) == ["new", "newdir", "sub"]
    assert sorted(os.listdir(d / "sub")) == ["fresh"]   # lower d/sub/* hidden
    assert (d / "newdir/x").read_bytes() == b"x"
    assert (site.dest / "keep/other").read_bytes() == b"x"   # outside the opaque dir


def test_apply_whiteout_spares_same_layer_entry(site: Site) -> None:
    _lower(site.dest)
    site.extract(make_tar(F("file", b"new"), F(".wh.file")), whiteouts="apply")
    assert (site.dest / "file").read_bytes() == b"new"


def test_aufs_metadata_is_ignored(site: Site) -> None:
    site.extract(make_tar(D(".wh..wh.plnk/"), F(".wh..wh.aufs")), whiteouts="apply")
    assert os.listdir(site.dest) == []


# --------------------------------------------------------------------------- whiteouts: overlay


@needs_root
def test_overlay_whiteouts_become_char_devices_and_opaque_xattr(site: Site) -> None:
    data = make_tar(D("d/"), F("d/.wh..wh..opq"), F("d/kept", b"k"), F(".wh.gone"),
                    F("d/.wh.old"), DEV("literal", major=0, minor=0, mode=0))
    site.extract(data, whiteouts="overlay", allow_devices=False)
    st = os.lstat(site.dest / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    st = os.lstat(site.dest / "d/old")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert stat.S_ISCHR(os.lstat(site.dest / "literal").st_mode)
    assert os.getxattr(site.dest / "d", "trusted.overlay.opaque") == b"y"
    assert (site.dest / "d/kept").read_bytes() == b"k"
    assert not any(n.startswith(".wh.") for n in os.listdir(site.dest / "d"))
    site.assert_outside_untouched()


@needs_nonroot
def test_overlay_whiteouts_need_root(site: Site) -> None:
    with pytest.raises(Unavailable, match="root"):
        site.extract(make_tar(F(".wh.gone")), whiteouts="overlay")
    with pytest.raises(Unavailable, match="root"):
        site.extract(make_tar(F("d/.wh..wh..opq")), whiteouts="overlay")


# --------------------------------------------------------------------------- limits and corruption


def test_content_limit(site: Site) -> None:
    data = make_tar(F("a", b"x" * 600), F("b", b"y" * 600))
    site.extract(data, limit=1200)
    with pytest.raises(SizeLimitExceeded):
        site.extract(data, limit=1199)


def test_entry_count_limit(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_mod, "MAX_ENTRIES", 3)
    site.extract(make_tar(F("a"), F("b"), F("c")))
    with pytest.raises(SizeLimitExceeded, match="entries"):
        site.extract(make_tar(F("a"), F("b"), F("c"), F("d")))


@pytest.mark.parametrize("cut", [100, 512 + 100, 512 + 1024, 512 + 2048 - 1])
def test_truncated_archive(site: Site, cut: int) -> None:
    # header (512) + 2000 bytes of data (4 blocks) + end blocks
    data = make_tar(F("big", os.urandom(2000)), fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(InvalidContent, match="truncated"):
        site.extract(data[:cut])


def test_truncated_pax_header(site: Site) -> None:
    data = make_tar(F("x" * 300, b"1"))
    with pytest.raises(InvalidContent, match="truncated"):
        site.extract(data[:512 + 10])
    with pytest.raises(InvalidContent, match="truncated"):
        site.extract(data[:1024])   # PAX header complete, its entry missing


def test_truncation_inside_padding_is_detected(site: Site) -> None:
    # Padding after a member's data is skipped rather than read, yet must be present.
    data = make_tar(F("a", b"1" * 700), F("b", b"2"), fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(InvalidContent, match="truncated"):
        site.extract(data[:512 + 800])


def test_garbage_is_invalid(site: Site) -> None:
    with pytest.raises(InvalidContent, match="checksum"):
        site.extract(os.urandom(4096))
    bad = bytearray(make_tar(F("a", b"1")))
    bad[10] ^= 0xFF   # flip a byte in the name: checksum no longer matches
    with pytest.raises(InvalidContent, match="checksum"):
        site.extract(bytes(bad))


def test_zero_block_followed_by_data_is_invalid(site: Site) -> None:
    data = bytes(512) + make_tar(F("a", b"1"))
    with pytest.raises(InvalidContent):
        site.extract(data)


def test_malformed_pax_record_is_invalid(site: Site) -> None:
    data = bytearray(make_tar(PAX(F("a", b"1"), comment="hello")))
    idx = data.index(b"comment=hello")
    data[idx - 3: idx - 1] = b"99"  # record length now overruns the header
    # keep the header checksum valid: only the PAX *data* was modified
    with pytest.raises(InvalidContent, match="PAX"):
        site.extract(bytes(data))


def test_sparse_files_are_refused(site: Site) -> None:
    data = make_tar(PAX(F("s", b"1"), **{"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}))
    with pytest.raises(InvalidContent, match="sparse"):
        site.extract(data)


def test_extended_header_size_is_bounded(site: Site) -> None:
    data = make_tar(PAX(F("a", b"1"), comment="x" * (2 << 20)))
    with pytest.raises(InvalidContent, match="too large"):
        site.extract(data)


# --------------------------------------------------------------------------- helpers


def test_safe_remove_tree_does_not_follow_links(site: Site) -> None:
    tree = site.dest / "t"
    (tree / "a/b/c").mkdir(parents=True)
    (tree / "a/b/c/f").write_bytes(b"1")
    os.symlink(str(site.victim), tree / "a/escape")
    os.symlink(str(site.victim / "sub"), tree / "a/b/c/escape2")
    fd = open_root(str(site.dest))
    try:
        safe_remove_tree(fd, "t")
        safe_remove_tree(fd, "does-not-exist")
    finally:
        os.close(fd)
    assert os.listdir(site.dest) == []
    site.assert_outside_untouched()


def test_safe_remove_tree_handles_deep_trees(site: Site) -> None:
    fd = open_root(str(site.dest))
    try:
        cur = os.dup(fd)
        for _ in range(1500):  # deeper than Python's recursion limit
            os.mkdir("d", dir_fd=cur)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
            os.close(cur)
            cur = nxt
        os.close(cur)
        safe_remove_tree(fd, "d")
    finally:
        os.close(fd)
    assert os.listdir(site.dest) == []
