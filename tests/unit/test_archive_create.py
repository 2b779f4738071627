"""Layer creation: deterministic PAX tars that Docker (Go archive/tar) and GNU tar accept.

Output is checked with :mod:`tarfile` as an independent reader, and round-tripped through
our own extraction.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from hoist.archive import compressor, extract_layer, open_decompressed, write_tar_from_dir
from hoist.archive import tarstream
from hoist.errors import InvalidArgument, NotFound
from _support import user_xattrs_work

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (chown, mknod, trusted.* xattrs)")

CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")
T0 = 1_600_000_000


def tar_of(root: Path, **kw: object) -> bytes:
    buf = io.BytesIO()
    write_tar_from_dir(str(root), buf, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return tf.getmembers()


def by_name(data: bytes) -> dict[str, tarfile.TarInfo]:
    return {m.name: m for m in members(data)}


def read_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def tree_state(root: Path) -> dict[str, tuple]:
    """Everything a layer carries, per path, plus hardlink grouping."""
    out: dict[str, tuple] = {}
    inode_first: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                content: object = Path(path).read_bytes()
                link_group = inode_first.setdefault((st.st_dev, st.st_ino), rel)
            elif stat.S_ISLNK(st.st_mode):
                content, link_group = os.readlink(path), None
            else:
                content, link_group = st.st_rdev if not stat.S_ISDIR(st.st_mode) else None, None
            xattrs: dict[str, bytes] = {}
            if not stat.S_ISLNK(st.st_mode):
                try:
                    xattrs = {n: os.getxattr(path, n, follow_symlinks=False)
                              for n in os.listxattr(path, follow_symlinks=False)
                              if n.startswith("user.") or n == "security.capability"}
                except OSError:
                    pass
            mtime = st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                        st.st_gid, mtime, content, link_group, tuple(sorted(xattrs.items())))
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "etc").mkdir()
    (root / "etc/passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    (root / "etc/empty").write_bytes(b"")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # > one copy chunk
    os.chmod(root / "bin/tool", 0o4755)
    os.link(root / "bin/tool", root / "bin/tool-again")
    os.symlink("/etc/passwd", root / "bin/abs-link")
    os.symlink("../etc", root / "bin/rel-link")
    (root / "long" / ("d" * 120)).mkdir(parents=True)
    (root / "long" / ("d" * 120) / ("f" * 200)).write_bytes(b"long")
    (root / "ünï").write_bytes(b"unicode")
    os.mkfifo(root / "fifo")
    os.chmod(root / "fifo", 0o640)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(T0 * 10**9, T0 * 10**9 + 123),
                     follow_symlinks=False)
    os.utime(root / "etc", (T0 + 5, T0 + 5))
    return root


# --------------------------------------------------------------------------- format


def test_entries_names_types_and_order(tree: Path) -> None:
    data = tar_of(tree)
    ms = members(data)
    names = [m.name for m in ms]
    assert names == sorted(names, key=lambda n: [c.encode() for c in n.split("/")])
    assert not any(n.startswith(("./", "/")) for n in names)
    m = by_name(data)
    assert m["etc"].isdir() and m["etc"].mtime == T0 + 5
    assert m["etc/passwd"].isreg() and m["etc/passwd"].mtime == T0   # whole seconds
    assert read_member(data, "etc/passwd") == (tree / "etc/passwd").read_bytes()
    assert m["bin/tool"].isreg() and m["bin/tool"].mode == 0o4755
    assert read_member(data, "bin/tool") == (tree / "bin/tool").read_bytes()
    # The second name of an inode (in walk order) becomes a hardlink entry.
    assert m["bin/tool-again"].islnk() and m["bin/tool-again"].linkname == "bin/tool"
    assert m["bin/abs-link"].issym() and m["bin/abs-link"].linkname == "/etc/passwd"
    assert m["bin/rel-link"].linkname == "../etc"
    assert m["fifo"].isfifo() and m["fifo"].mode == 0o640
    long_name = "long/" + "d" * 120 + "/" + "f" * 200
    assert read_member(data, long_name) == b"long"
    assert read_member(data, "ünï") == b"unicode"
    # Directories carry a trailing slash in the raw header, as Docker writes them.
    assert b"etc/\x00" in data


def test_output_is_deterministic(tree: Path) -> None:
    first = tar_of(tree)
    os.utime(tree / "etc/passwd", ns=(T0 * 10**9 + 999, T0 * 10**9 + 555))  # sub-second only
    assert tar_of(tree) == first


def test_sendfile_and_buffered_paths_agree(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:          # BufferedWriter over FileIO: sendfile path
        assert tarstream._sendfile_fd(f) is not None
        write_tar_from_dir(str(tree), f)
    assert out.read_bytes() == tar_of(tree)  # BytesIO: read/write path


def test_gnu_tar_accepts_output(tree: Path, tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar not installed")
    out = tmp_path / "out.tar"
    out.write_bytes(tar_of(tree))
    listing = subprocess.run(["tar", "-tf", str(out)], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    assert "bin/tool" in listing and "etc/" in listing
    dest = tmp_path / "gnu"
    dest.mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(dest)], check=True)
    assert (dest / "bin/tool").read_bytes() == (tree / "bin/tool").read_bytes()


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(str(victim), root / "link")
    m = by_name(tar_of(root))
    assert list(m) == ["link"] and m["link"].issym()


def test_sockets_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "f").write_bytes(b"1")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        assert list(by_name(tar_of(root))) == ["f"]
    finally:
        sock.close()


def test_paths_selects_subtrees(tree: Path) -> None:
    data = tar_of(tree, paths=["bin", "./etc/passwd", "bin/tool", "etc/passwd"])
    names = [m.name for m in members(data)]
    assert names[0] == "bin" and "etc/passwd" in names
    assert "etc" not in names and "fifo" not in names
    assert len(names) == len(set(names))
    with pytest.raises(NotFound):
        tar_of(tree, paths=["nope"])
    with pytest.raises(InvalidArgument):
        tar_of(tree, paths=["../x"])
    with pytest.raises(InvalidArgument):
        tar_of(tree, paths=["bin/rel-link/passwd"])   # through a symlink


def test_user_xattrs_written_trusted_not(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    if not user_xattrs_work(root):
        pytest.skip("file system lacks user xattrs")
    (root / "f").write_bytes(b"1")
    os.setxattr(root / "f", "user.bin", b"\xff\x00raw")
    (root / "d").mkdir()
    os.setxattr(root / "d", "user.d", b"dir")
    if ROOT:
        os.setxattr(root / "f", "trusted.secret", b"no")
    m = by_name(tar_of(root, whiteouts="none"))
    pax = m["f"].pax_headers
    assert pax["SCHILY.xattr.user.bin"].encode("utf-8", "surrogateescape") == b"\xff\x00raw"
    assert m["d"].pax_headers["SCHILY.xattr.user.d"] == "dir"
    assert not any("trusted" in k for k in pax)


@needs_root
def test_capabilities_owners_and_devices(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "ping").write_bytes(b"\x7fELF")
    os.chown(root / "ping", 1000, 1001)
    os.setxattr(root / "ping", "security.capability", CAP_NET_BIND)
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "sda", stat.S_IFBLK | 0o660, os.makedev(8, 0))
    (root / "big").write_bytes(b"")
    os.chown(root / "big", 3_000_000, 3_000_001)   # beyond ustar's octal uid field
    m = by_name(tar_of(root))
    assert (m["ping"].uid, m["ping"].gid) == (1000, 1001)
    cap = m["ping"].pax_headers["SCHILY.xattr.security.capability"]
    assert cap.encode("utf-8", "surrogateescape") == CAP_NET_BIND
    assert m["null"].ischr() and (m["null"].devmajor, m["null"].devminor) == (1, 3)
    assert m["sda"].isblk() and (m["sda"].devmajor, m["sda"].devminor) == (8, 0)
    assert (m["big"].uid, m["big"].gid) == (3_000_000, 3_000_001)


@needs_root
def test_overlay_upperdir_becomes_oci_layer(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    os.mknod(upper / "deleted", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "opq").mkdir(mode=0o750)
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/new").write_bytes(b"n")
    (upper / "plain").mkdir()
    os.mknod(upper / "plain/gone", stat.S_IFCHR, os.makedev(0, 0))
    data = tar_of(upper)
    names = [m.name for m in members(data)]
    assert names == [".wh.deleted", "opq", "opq/.wh..wh..opq", "opq/new", "plain",
                     "plain/.wh.gone"]
    m = by_name(data)
    assert m[".wh.deleted"].isreg() and m[".wh.deleted"].size == 0
    assert m["opq/.wh..wh..opq"].isreg() and m["opq/.wh..wh..opq"].mode == 0o750
    assert not any("trusted" in k for k in m["opq"].pax_headers)
    # Without whiteout conversion the char device and the xattr-free dir stay as they are.
    m = by_name(tar_of(upper, whiteouts="none"))
    assert m["deleted"].ischr() and "opq/.wh..wh..opq" not in m


@needs_root
def test_overlay_round_trip_through_extraction(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    os.mknod(upper / "deleted", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "opq").mkdir()
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/new").write_bytes(b"n")
    data = tar_of(upper)
    dest = tmp_path / "dest"
    dest.mkdir()
    extract_layer(io.BytesIO(data), str(dest), whiteouts="overlay")
    assert stat.S_ISCHR(os.lstat(dest / "deleted").st_mode)
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert tar_of(dest) == data


# --------------------------------------------------------------------------- round trip


def test_round_trip_extract_create_extract(tree: Path, tmp_path: Path) -> None:
    if ROOT:
        os.chown(tree / "etc/passwd", 0, 42)
        os.chown(tree / "bin/abs-link", 7, 8, follow_symlinks=False)
        os.mknod(tree / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.utime(tree / "null", (T0, T0))
    if user_xattrs_work(tmp_path):
        os.setxattr(tree / "etc/passwd", "user.note", b"v")
    first = tar_of(tree)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    extract_layer(io.BytesIO(first), str(a), whiteouts="overlay")
    second = tar_of(a)
    extract_layer(io.BytesIO(second), str(b), whiteouts="overlay")
    assert second == first
    assert tree_state(a) == tree_state(b)
    # Same as the source except for sub-second mtimes, which layers don't carry.
    src = {k: v[:4] + (v[4] // 10**9 * 10**9 if v[4] else v[4],) + v[5:]
           for k, v in tree_state(tree).items()}
    assert tree_state(a) == src


def test_compressed_round_trip(tree: Path, tmp_path: Path) -> None:
    for kind in ("gzip", "zstd"):
        blob = io.BytesIO()
        with compressor(kind, blob) as out:
            write_tar_from_dir(str(tree), out)  # type: ignore[arg-type]
        dest = tmp_path / f"x-{kind}"
        dest.mkdir()
        blob.seek(0)
        with open_decompressed(blob, limit=64 << 20) as tar:
            extract_layer(tar, str(dest), whiteouts="apply")
        assert tree_state(dest)["bin/tool"][5] == (tree / "bin/tool").read_bytes()
