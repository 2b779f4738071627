"""Bootstrap real images from a Debian mirror (slow, needs network and root).

Opt in with HOIST_TEST_DEBOOTSTRAP=1; the mirror is the one the host's apt uses.
"""
from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from hoist.errors import Unavailable
from hoist.image import bootstrap as B

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("HOIST_TEST_DEBOOTSTRAP") != "1",
                       reason="set HOIST_TEST_DEBOOTSTRAP=1 to bootstrap from a Debian mirror"),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap needs root")
def test_bootstrap_debian_bookworm(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    lines: list[str] = []
    started = time.monotonic()
    try:
        result = B.bootstrap_rootfs("debian:bookworm", str(root), log=lines.append)
    except Unavailable as e:
        if "apt-get install debootstrap" in str(e):
            pytest.skip(str(e))
        raise
    print(f"debian bookworm bootstrapped in {time.monotonic() - started:.0f}s")

    assert result.reference == "debian:bookworm"
    assert result.config["config"]["Cmd"] == ["bash"]
    assert result.config["created"].endswith("Z")
    assert "debian:bookworm" in result.created_by
    assert any(line.startswith("I: ") for line in lines)  # tool output was streamed

    # bin is a symlink to usr/bin on bookworm; relative, so it resolves inside root.
    assert os.access(root / "bin" / "bash", os.X_OK)
    assert (root / "etc" / "debian_version").read_text().startswith("12.")

    assert os.listdir(root / "dev") == []
    for rel in ("proc", "sys"):
        assert (root / rel).is_dir() and os.listdir(root / rel) == []
    assert not any(os.scandir(root / "var" / "lib" / "apt" / "lists" / "partial"))
    assert [n for n in os.listdir(root / "var" / "lib" / "apt" / "lists")] == ["partial"]
    assert not [n for n in os.listdir(root / "var" / "cache" / "apt" / "archives")
                if n.endswith(".deb")]
    for rel in ("etc/hostname", "etc/resolv.conf"):
        p = root / rel
        assert not p.exists() or p.read_text() == "", rel
    for dirpath, _dirs, files in os.walk(root / "var" / "log"):
        for n in files:
            assert os.lstat(os.path.join(dirpath, n)).st_size == 0, n
    # No device nodes, fifos or sockets anywhere in the layer.
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            mode = os.lstat(os.path.join(dirpath, n)).st_mode
            assert not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)
                        or stat.S_ISSOCK(mode)), os.path.join(dirpath, n)
    # Nothing of the bootstrap stays mounted.
    assert B.mounts_under(str(root), B._read_mountinfo()) == []

    out = subprocess.run(["chroot", str(root), "/bin/bash", "-c", "echo ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"


def test_busybox_from_downloaded_package(tmp_path, monkeypatch):
    """The path for hosts without busybox-static installed: apt-get download + dpkg-deb -x."""
    monkeypatch.setattr(B, "_installed_package", lambda package: None)
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    result = B.bootstrap_rootfs("busybox", str(downloaded))
    out = subprocess.run([str(downloaded / "bin" / "sh"), "-c", "echo ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"
    assert result.created_by.startswith("hoist image bootstrap busybox (busybox-static ")
    assert os.path.samefile(downloaded / "bin" / "ls", downloaded / "bin" / "busybox")
