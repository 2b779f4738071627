"""Conformance suite every snapshotter runs: unpack a chain of layers with whiteouts and
opaque directories, mount what ``mounts()`` describes, and compare the visible tree."""
from __future__ import annotations

import io
import os
import subprocess
import tempfile

import pytest

from archives import dir_entry, file_entry, tar_bytes
from hoist import linux
from hoist.snapshots.overlay import CopySnapshotter, OverlaySnapshotter, overlay_supported

KINDS = ["native"] + (["overlayfs"] if os.geteuid() == 0 else [])


@pytest.fixture(params=KINDS)
def snap(request, tmp_path):
    root = str(tmp_path / "snapshots")
    if request.param == "overlayfs":
        os.makedirs(root)
        if not overlay_supported(root):
            pytest.skip("overlayfs cannot be mounted here")
        return OverlaySnapshotter(root)
    return CopySnapshotter(root)


LAYERS = [
    tar_bytes([dir_entry("etc"), file_entry("etc/a", b"a1"), file_entry("etc/b", b"b1"),
               dir_entry("opq"), file_entry("opq/old", b"old"), dir_entry("gone"), file_entry("gone/x", b"x")]),
    tar_bytes([dir_entry("etc"), file_entry("etc/a", b"a2"), file_entry("etc/.wh.b"),
               file_entry(".wh.gone"), dir_entry("opq"), file_entry("opq/.wh..wh..opq"),
               file_entry("opq/new", b"new")]),
    tar_bytes([dir_entry("etc"), file_entry("etc/b", b"b3")]),
]

EXPECTED = {"etc": None, "etc/a": b"a2", "etc/b": b"b3", "opq": None, "opq/new": b"new"}


def _tree(root: str) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def _mounted_view(snap, chain: list[int]):
    mounts = snap.mounts(chain)
    assert len(mounts) == 1
    m = mounts[0]
    target = tempfile.mkdtemp()
    if os.geteuid() != 0:
        assert m.type == "bind"
        return m.source, lambda: os.rmdir(target)
    if m.type == "overlay":
        linux.mount("overlay", target, "overlay", linux.MS_RDONLY, ",".join(m.options))
    else:
        linux.mount(m.source, target, "", linux.MS_BIND | linux.MS_REC)
    def cleanup():
        linux.umount(target, linux.MNT_DETACH)
        os.rmdir(target)
    return target, cleanup


def test_chain_with_whiteouts_and_opaque_dirs(snap):
    keys = [11, 12, 13]
    parent = None
    for key, layer in zip(keys, LAYERS):
        snap.unpack(key, parent, io.BytesIO(layer), None)
        parent = key
    assert all(snap.exists(k) for k in keys)
    view, cleanup = _mounted_view(snap, keys)
    try:
        assert _tree(view) == EXPECTED
    finally:
        cleanup()
    # a prefix of the chain still shows the earlier state
    view, cleanup = _mounted_view(snap, keys[:1])
    try:
        assert _tree(view)["etc/a"] == b"a1" and "gone/x" in _tree(view)
    finally:
        cleanup()


def test_failed_unpack_leaves_nothing(snap):
    bad = tar_bytes([file_entry("ok", b"1"), file_entry("../escape", b"2")])
    with pytest.raises(Exception):
        snap.unpack(21, None, io.BytesIO(bad), None)
    assert not snap.exists(21)
    assert [n for n in os.listdir(snap.root) if not n.startswith(".")] == []
    snap.clean_temp()
    assert os.listdir(snap.root) == []


def test_remove(snap):
    snap.unpack(31, None, io.BytesIO(LAYERS[0]), None)
    snap.remove(31)
    assert not snap.exists(31) and snap.keys() == []
