"""Pure parts of cp/export/diff: path rules, the stat header, change computation on
temp trees, and archive extraction into a rootfs that is full of hostile symlinks."""
from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
import time

import pytest

from hoist.engine.containers.changes import ADDED, DELETED, MODIFIED, compute_changes
from hoist.engine.containers.fsops import (ExtractError, _extract, _resolve_target,
                                           open_resolved)
from hoist.engine.containers.pathstat import (MODE_DIR, MODE_SYMLINK, PathStat, clean_path,
                                              decode_stat, encode_stat, go_base,
                                              go_file_mode, go_time, split_path)
from hoist.errors import InvalidContent, NotFound, UnsafeArchive

ROOT = os.geteuid() == 0


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize("given, want", [
    ("/", "/"), (".", "/."), ("/tmp/", "/tmp/"), ("/tmp/.", "/tmp/."), ("tmp/./", "/tmp/./"),
    ("../../etc/passwd", "/etc/passwd"), ("/a/b/../c", "/a/c"), ("/a/..", "/"),
    ("//x//y/", "/x/y/"), ("/tmp/..", "/"), ("etc", "/etc"),
])
def test_clean_path_keeps_docker_trailing_rules(given, want):
    assert clean_path(given) == want


def test_split_and_base_like_go():
    assert split_path("/tmp/") == ("/tmp/", "")
    assert split_path("/tmp/x") == ("/tmp/", "x")
    assert split_path("/tmp/.") == ("/tmp/", ".")
    assert go_base("/") == "/" and go_base("/tmp/") == "tmp" and go_base("/a/.") == "."


def test_go_file_mode_bits():
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFDIR | 0o1777) == (1 << 31) | (1 << 20) | 0o777
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFBLK | 0o660) == (1 << 26) | 0o660
    assert go_file_mode(stat.S_IFIFO | 0o644) == (1 << 25) | 0o644
    assert go_file_mode(stat.S_IFSOCK | 0o755) == (1 << 24) | 0o755
    assert go_file_mode(stat.S_IFREG | 0o2644) == (1 << 22) | 0o644


def test_go_time_format(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert go_time(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
        assert go_time(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        assert go_time(1_700_000_000_000_000_001) == "2023-11-14T17:13:20.000000001-05:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_stat_header_round_trip_and_field_order():
    st = PathStat("x", 3, MODE_DIR | 0o755, "2023-11-14T22:13:20Z", "")
    raw = encode_stat(st)
    obj = json.loads(base64.b64decode(raw))
    assert list(obj) == ["name", "size", "mode", "mtime", "linkTarget"]
    assert obj["mode"] == 2147484141
    assert decode_stat(raw) == st and st.is_dir


# --------------------------------------------------------------------------- changes


def _mk(root, rel, data=b"x", mtime=1_000_000_000):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.utime(p, (mtime, mtime))


def _mkdir(root, rel, mtime=1_000_000_000):
    p = os.path.join(root, rel)
    os.makedirs(p, exist_ok=True)
    os.utime(p, (mtime, mtime))


def test_changes_added_modified_and_unchanged_dirs(tmp_path):
    low, up = tmp_path / "low", tmp_path / "up"
    _mk(low, "etc/passwd")
    _mk(low, "usr/bin/tool")
    _mkdir(low, "usr/bin")
    _mkdir(low, "usr")
    _mkdir(low, "etc")
    # upper: /etc/passwd rewritten (dir mtime changed), /usr/bin/new added below a
    # /usr copied up unchanged, /data brand new.
    _mk(up, "etc/passwd", b"changed")
    _mkdir(up, "etc", mtime=2_000_000_000)
    _mk(up, "usr/bin/new")
    _mkdir(up, "usr/bin", mtime=2_000_000_000)
    _mkdir(up, "usr")
    _mk(up, "data/sub/f")
    got = [(c.path, c.kind) for c in compute_changes(str(up), [str(low)])]
    assert got == [("/data", ADDED), ("/data/sub", ADDED), ("/data/sub/f", ADDED),
                   ("/etc", MODIFIED), ("/etc/passwd", MODIFIED),
                   ("/usr/bin", MODIFIED), ("/usr/bin/new", ADDED)]


def test_changes_parent_of_add_reported_even_if_dir_unchanged(tmp_path):
    low, up = tmp_path / "low", tmp_path / "up"
    _mk(low, "tmp/old")
    _mkdir(low, "tmp")
    _mk(up, "tmp/new")
    _mkdir(up, "tmp")  # same mtime/mode/size as below
    got = [(c.path, c.kind) for c in compute_changes(str(up), [str(low)])]
    assert got == [("/tmp", MODIFIED), ("/tmp/new", ADDED)]


def test_changes_hide_runtime_mount_points(tmp_path):
    low, up = tmp_path / "low", tmp_path / "up"
    _mk(low, "etc/passwd")
    for f in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
        _mk(up, f, b"")
    _mkdir(up, "etc", mtime=2_000_000_000)
    _mkdir(up, "proc")
    assert compute_changes(str(up), [str(low)]) == []
    _mk(up, "etc/new")
    got = [(c.path, c.kind) for c in compute_changes(str(up), [str(low)])]
    assert got == [("/etc", MODIFIED), ("/etc/new", ADDED)]


def test_changes_layer_order_symlinks_not_followed(tmp_path):
    base, top, up = tmp_path / "base", tmp_path / "top", tmp_path / "up"
    _mk(base, "a/f")
    os.makedirs(top)
    os.symlink("/", top / "a")  # a layer replaced dir a by a symlink to "/"
    _mk(up, "a/etc/passwd")     # would exist on the host if the link were followed
    got = [(c.path, c.kind) for c in compute_changes(str(up), [str(top), str(base)])]
    assert got == [("/a", MODIFIED), ("/a/etc", ADDED), ("/a/etc/passwd", ADDED)]


@pytest.mark.skipif(not ROOT, reason="overlay whiteouts need root")
def test_changes_whiteouts_and_opaque_dirs(tmp_path):
    low, up = tmp_path / "low", tmp_path / "up"
    _mk(low, "etc/shadow")
    _mk(low, "home/u/.profile")
    _mk(low, "home/keep")
    _mkdir(low, "etc")
    os.makedirs(up / "etc")
    os.mknod(up / "etc" / "shadow", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    _mk(low, "var/spool/mail/m")
    os.makedirs(up / "home")
    os.setxattr(up / "home", "trusted.overlay.opaque", b"y")
    _mk(up, "home/keep", b"new")
    # rm -rf /var; mkdir -p /var/spool: both opaque in the upper
    os.makedirs(up / "var" / "spool")
    os.setxattr(up / "var", "trusted.overlay.opaque", b"y")
    os.setxattr(up / "var" / "spool", "trusted.overlay.opaque", b"y")
    got = [(c.path, c.kind) for c in compute_changes(str(up), [str(low)])]
    assert sorted(got) == [("/etc", MODIFIED), ("/etc/shadow", DELETED),
                           ("/home", MODIFIED), ("/home/keep", MODIFIED), ("/home/u", DELETED),
                           ("/var/spool", MODIFIED), ("/var/spool/mail", DELETED)]


# --------------------------------------------------------------------------- rootfs


@pytest.fixture
def rootfs(tmp_path):
    """A container rootfs full of links that point out of it, plus a host 'secret'."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    root = tmp_path / "rootfs"
    for d in ("etc", "tmp", "data"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:container\n")
    (root / "secret").write_text("container secret\n")
    os.symlink("/", root / "etc" / "evil")
    os.symlink("../../../../../../..", root / "tmp" / "up")
    os.symlink(str(host), root / "data" / "hostlink")  # absolute host path
    return root, host


def _tar(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for m in members:
            if isinstance(m, tuple) and m[0] == "sym":
                ti = tarfile.TarInfo(m[1])
                ti.type, ti.linkname = tarfile.SYMTYPE, m[2]
                tf.addfile(ti)
            elif isinstance(m, tuple) and m[0] == "dir":
                ti = tarfile.TarInfo(m[1])
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                name, data = m
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def _put(root, dest, tar, no_overwrite=False):
    rfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        dfd = open_resolved(rfd, dest, os.O_RDONLY | os.O_DIRECTORY)
        try:
            from hoist.engine.containers.fsops import _container_path_of
            _extract(tar, dfd, rfd, _container_path_of(rfd, dfd), no_overwrite, None)
        finally:
            os.close(dfd)
    finally:
        os.close(rfd)


def _read_target(root, path):
    rfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        t = _resolve_target(rfd, path, "c")
        try:
            if t.name == "." or not stat.S_ISREG(os.stat(t.name, dir_fd=t.dir_fd,
                                                         follow_symlinks=False).st_mode):
                return t, None
            fd = os.open(t.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=t.dir_fd)
            try:
                return t, os.read(fd, 100)
            finally:
                os.close(fd)
        finally:
            os.close(t.dir_fd)
    finally:
        os.close(rfd)


def test_stat_and_read_resolve_inside_the_root(rootfs):
    root, host = rootfs
    t, data = _read_target(root, "/etc/evil/secret")
    assert data == b"container secret\n"
    t, data = _read_target(root, "/tmp/up/etc/passwd")
    assert data == b"root:x:0:0:container\n"
    t, _ = _read_target(root, "/etc/evil")
    assert t.stat.mode & MODE_SYMLINK and t.stat.link_target == "/"
    t, _ = _read_target(root, "/tmp/up")
    assert t.stat.link_target == "/"
    with pytest.raises(NotFound):
        _read_target(root, "/data/hostlink/secret")  # the host dir does not exist inside
    t, _ = _read_target(root, "/etc/evil/.")
    assert t.name == "." and t.stat.name == "."


def test_extract_through_container_links_stays_inside(rootfs):
    root, host = rootfs
    _put(root, "/etc/evil", _tar(("pwned", b"1")))
    _put(root, "/tmp/up/tmp", _tar(("pwned2", b"2")))
    assert (root / "pwned").read_bytes() == b"1"
    assert (root / "tmp" / "pwned2").read_bytes() == b"2"
    with pytest.raises(FileNotFoundError):
        _put(root, "/data/hostlink", _tar(("pwned3", b"3")))
    assert sorted(os.listdir(host)) == ["secret"]


def test_extract_refuses_dotdot_and_absolute_names(rootfs):
    root, host = rootfs
    for bad in ("../../host/x", "/abs", "a/../../x"):
        with pytest.raises(UnsafeArchive):
            _put(root, "/data", _tar((bad, b"x")))
    assert sorted(os.listdir(host)) == ["secret"]


def test_extract_archive_symlinks_are_contained(rootfs):
    root, host = rootfs
    # An absolute link, a ".." chain and a link to the host dir by its host path, each
    # followed by a file written "through" it.
    _put(root, "/data", _tar(("sym", "l1", "/"), ("l1/tmp/via-abs", b"a"),
                             ("sym", "l2", "../../../../../.."), ("l2/tmp/via-rel", b"b")))
    assert (root / "tmp" / "via-abs").read_bytes() == b"a"
    assert (root / "tmp" / "via-rel").read_bytes() == b"b"
    with pytest.raises((FileNotFoundError, UnsafeArchive, InvalidContent, ExtractError)):
        _put(root, "/data", _tar(("sym", "l3", str(host)), ("l3/pwned", b"c")))
    assert sorted(os.listdir(host)) == ["secret"]
    assert os.readlink(root / "data" / "l1") == "/"  # the link itself is kept as data


def test_extract_no_overwrite_dir_non_dir(rootfs):
    root, _ = rootfs
    with pytest.raises(ExtractError, match="cannot overwrite directory"):
        _put(root, "/", _tar(("etc", b"x")), no_overwrite=True)
    with pytest.raises(ExtractError, match="cannot overwrite non-directory"):
        _put(root, "/", _tar(("dir", "secret")), no_overwrite=True)
    _put(root, "/", _tar(("dir", "etc"), ("etc/new", b"n")), no_overwrite=True)
    assert (root / "etc" / "new").read_bytes() == b"n"
    _put(root, "/", _tar(("secret", b"replaced")))
    assert (root / "secret").read_bytes() == b"replaced"


def test_extract_compressed_and_whiteout_names_are_plain_files(rootfs):
    import gzip
    import lzma
    root, _ = rootfs
    raw = _tar((".wh.passwd", b"w"), ("z", b"zz")).getvalue()
    for i, comp in enumerate((gzip.compress, lzma.compress)):
        _put(root, "/etc", io.BytesIO(comp(raw)))
    assert (root / "etc" / "passwd").exists()  # not treated as a whiteout
    assert (root / "etc" / ".wh.passwd").read_bytes() == b"w"
    assert (root / "etc" / "z").read_bytes() == b"zz"
