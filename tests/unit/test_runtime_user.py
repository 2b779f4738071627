"""User lookup inside a rootfs, and the chroot-like path walking it relies on."""
from __future__ import annotations

import errno
import os

import pytest

from hoist.errors import InvalidArgument
from hoist.runtime.rootfs import mkdirs_in_root, open_in_root, open_root, read_file_in_root
from hoist.runtime.user import ResolvedUser, parse_group, parse_passwd, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
app:x:1000:1001:App:/home/app:/bin/sh
broken:x:notanumber:1::/:
"""
GROUP = """root:x:0:
wheel:x:10:root,app
app:x:1001:
audio:x:29:app
staff:x:50:
"""


def _rootfs(tmp_path, passwd=PASSWD, group=GROUP):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    if passwd is not None:
        (root / "etc" / "passwd").write_text(passwd)
    if group is not None:
        (root / "etc" / "group").write_text(group)
    return root


def test_parsers_skip_comments_and_garbage():
    users = parse_passwd(PASSWD.encode())
    assert [u.name for u in users] == ["root", "daemon", "app"]
    assert users[2].uid == 1000 and users[2].gid == 1001 and users[2].home == "/home/app"
    groups = parse_group(GROUP.encode())
    assert groups[1].members == ("root", "app")


@pytest.mark.parametrize("spec, expected", [
    ("", ResolvedUser(0, 0, (10,), "/root")),
    ("root", ResolvedUser(0, 0, (10,), "/root")),
    ("0", ResolvedUser(0, 0, (10,), "/root")),
    ("app", ResolvedUser(1000, 1001, (10, 29), "/home/app")),
    ("1000", ResolvedUser(1000, 1001, (10, 29), "/home/app")),
    ("app:staff", ResolvedUser(1000, 50, (), "/home/app")),
    ("app:50", ResolvedUser(1000, 50, (), "/home/app")),
    ("app:777", ResolvedUser(1000, 777, (), "/home/app")),
    ("4242", ResolvedUser(4242, 0, (), "/")),
    ("4242:4343", ResolvedUser(4242, 4343, (), "/")),
    ("4242:wheel", ResolvedUser(4242, 10, (), "/")),
])
def test_resolve_forms(tmp_path, spec, expected):
    assert resolve_user(str(_rootfs(tmp_path)), spec) == expected


def test_group_add_names_and_numbers_deduplicated(tmp_path):
    u = resolve_user(str(_rootfs(tmp_path)), "app", ["staff", "3000", "wheel"])
    assert u.additional_gids == (10, 29, 50, 3000)


def test_unknown_user_message(tmp_path):
    with pytest.raises(InvalidArgument) as e:
        resolve_user(str(_rootfs(tmp_path)), "nobody")
    assert str(e.value) == "unable to find user nobody: no matching entries in passwd file"


def test_unknown_group(tmp_path):
    with pytest.raises(InvalidArgument, match="unable to find group nogroup: no matching "
                                              "entries in group file"):
        resolve_user(str(_rootfs(tmp_path)), "app:nogroup")


def test_unknown_group_add(tmp_path):
    with pytest.raises(InvalidArgument, match="Unable to find group ghosts"):
        resolve_user(str(_rootfs(tmp_path)), "app", ["ghosts"])


def test_out_of_range_ids(tmp_path):
    root = str(_rootfs(tmp_path))
    with pytest.raises(InvalidArgument, match="range"):
        resolve_user(root, "4294967296")
    with pytest.raises(InvalidArgument, match="range"):
        resolve_user(root, "1:99999999999")


def test_no_passwd_file(tmp_path):
    root = _rootfs(tmp_path, passwd=None, group=None)
    assert resolve_user(str(root), "") == ResolvedUser(0, 0, (), "/")
    assert resolve_user(str(root), "55:66") == ResolvedUser(55, 66, (), "/")
    with pytest.raises(InvalidArgument, match="unable to find user app"):
        resolve_user(str(root), "app")


def test_absolute_symlink_stays_inside(tmp_path):
    """/etc/passwd -> /host/secret must read <rootfs>/host/secret, not the host file."""
    host_secret = tmp_path / "secret-passwd"
    host_secret.write_text("evil:x:666:666::/:/bin/sh\n")
    root = _rootfs(tmp_path, passwd=None)
    os.symlink(str(host_secret), root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        resolve_user(str(root), "evil")
    # The same path inside the rootfs is what gets read.
    inside = root / str(host_secret).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("good:x:7:8::/g:/bin/sh\n")
    assert resolve_user(str(root), "good") == ResolvedUser(7, 8, (), "/g")


def test_dotdot_symlink_cannot_climb_out(tmp_path):
    # The rootfs is nested deep, so enough ".." would reach the host's /etc/passwd.
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    root = _rootfs(deep, passwd=None)
    os.symlink("../../../../../../../../../../etc/passwd", root / "etc" / "passwd")
    # /etc/passwd of the host has root; inside, ".." stops at the rootfs' root, so the
    # link resolves to <rootfs>/etc/passwd: itself -> a loop, never the host file.
    with pytest.raises(InvalidArgument):
        resolve_user(str(root), "root")


def test_dotdot_symlink_resolves_relative_to_root(tmp_path):
    root = _rootfs(tmp_path, passwd=None)
    (root / "real").mkdir()
    (root / "real" / "pw").write_text("inner:x:5:5::/:/bin/sh\n")
    os.symlink("../../../../../real/pw", root / "etc" / "passwd")
    assert resolve_user(str(root), "inner").uid == 5


def test_symlinked_directory_component(tmp_path):
    root = tmp_path / "rootfs"
    (root / "data" / "etc").mkdir(parents=True)
    (root / "data" / "etc" / "passwd").write_text("viadir:x:9:9::/:/bin/sh\n")
    os.symlink("/data/etc", root / "etc")
    assert resolve_user(str(root), "viadir").uid == 9
    # /etc -> /etc resolves inside the rootfs to itself: a loop, never the host's /etc.
    root2 = tmp_path / "rootfs2"
    root2.mkdir()
    os.symlink("/etc", root2 / "etc")
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        resolve_user(str(root2), "root")


def test_symlink_loop(tmp_path):
    root = _rootfs(tmp_path, passwd=None)
    os.symlink("/etc/passwd2", root / "etc" / "passwd")
    os.symlink("/etc/passwd", root / "etc" / "passwd2")
    with pytest.raises(InvalidArgument, match="unable to read users"):
        resolve_user(str(root), "root")


def test_fifo_passwd_does_not_block(tmp_path):
    root = _rootfs(tmp_path, passwd=None)
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="unable to read users"):
        resolve_user(str(root), "root")


def test_open_in_root_basics(tmp_path):
    root = tmp_path / "r"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    os.symlink("b/f", root / "a" / "lnk")
    rfd = open_root(str(root))
    try:
        for path in ("/a/b/f", "a/b/f", "/a/./b//f", "/../a/b/f", "/a/b/../b/f", "/a/lnk"):
            fd = open_in_root(rfd, path)
            try:
                assert os.read(fd, 10) == b"x", path
            finally:
                os.close(fd)
        with pytest.raises(OSError) as e:
            open_in_root(rfd, "/a/lnk", os.O_RDONLY | os.O_NOFOLLOW)
        assert e.value.errno == errno.ELOOP
        with pytest.raises(FileNotFoundError):
            open_in_root(rfd, "/a/missing")
        fd = open_in_root(rfd, "/a/new", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"new")
        os.close(fd)
        assert (root / "a" / "new").read_text() == "new"
        fd = open_in_root(rfd, "/a/b/..", os.O_RDONLY | os.O_DIRECTORY)
        assert sorted(os.listdir(fd)) == ["b", "lnk", "new"]
        os.close(fd)
    finally:
        os.close(rfd)


def test_read_file_in_root_limits(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (root / "big").write_bytes(b"x" * 100)
    assert read_file_in_root(str(root), "/big") == b"x" * 100
    assert read_file_in_root(str(root), "/nope") is None
    assert read_file_in_root(str(root), "/big/child") is None
    with pytest.raises(OSError):
        read_file_in_root(str(root), "/big", limit=10)
    (root / "d").mkdir()
    with pytest.raises(OSError):
        read_file_in_root(str(root), "/d")


def test_mkdirs_in_root(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "abs")          # absolute link to a host path
    os.symlink("../../../../missing/x", root / "dangling")
    os.symlink("loop", root / "loop")
    rfd = open_root(str(root))
    try:
        fd = mkdirs_in_root(rfd, "/a/b/c", 0o750)
        os.close(fd)
        assert (root / "a" / "b" / "c").is_dir()
        assert (root / "a" / "b" / "c").stat().st_mode & 0o777 == 0o750
        os.close(mkdirs_in_root(rfd, "/a/b/c"))  # idempotent
        os.close(mkdirs_in_root(rfd, "/abs/work"))
        assert (root / str(outside).lstrip("/") / "work").is_dir()
        assert not (outside / "work").exists()
        os.close(mkdirs_in_root(rfd, "/dangling/y"))
        assert (root / "missing" / "x" / "y").is_dir()
        os.close(mkdirs_in_root(rfd, "/a/../../../esc"))
        assert (root / "esc").is_dir() and not (tmp_path / "esc").exists()
        with pytest.raises(OSError):
            mkdirs_in_root(rfd, "/loop/z")
        (root / "file").write_text("")
        with pytest.raises(NotADirectoryError):
            mkdirs_in_root(rfd, "/file/z")
    finally:
        os.close(rfd)
