"""Snapshotters: overlayfs (one directory per layer) and a copying fallback.

Each snapshot lives at ``<root>/<key>/fs`` where ``key`` is a small integer, so a deep
chain of lowerdirs still fits in the one page the kernel allows for mount options.
A snapshot is unpacked into a temporary directory and renamed into place, so a crash
or a hostile layer never leaves a half-written snapshot under its key.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import BinaryIO

from ..archive import extract_layer
from .base import Mount


class _DirSnapshotter:
    name = "dir"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.chmod(root, 0o700)

    def path(self, key: int) -> str:
        return os.path.join(self.root, str(int(key)), "fs")

    def exists(self, key: int) -> bool:
        return os.path.isdir(self.path(key))

    def remove(self, key: int) -> None:
        target = os.path.join(self.root, str(int(key)))
        if os.path.exists(target):
            # Rename first so a crash mid-delete never leaves a half tree under its key.
            doomed = tempfile.mkdtemp(prefix=".rm-", dir=self.root)
            os.rename(target, os.path.join(doomed, "x"))
            shutil.rmtree(doomed, ignore_errors=True)

    def clean_temp(self) -> None:
        for name in os.listdir(self.root):
            if name.startswith((".rm-", ".new-")):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def keys(self) -> list[int]:
        return sorted(int(n) for n in os.listdir(self.root) if n.isdigit())

    def _publish(self, tmp: str, key: int) -> None:
        target = os.path.join(self.root, str(int(key)))
        if os.path.exists(target):
            self.remove(key)
        os.rename(tmp, target)

    def _new_tmp(self) -> str:
        tmp = tempfile.mkdtemp(prefix=".new-", dir=self.root)
        os.mkdir(os.path.join(tmp, "fs"), 0o755)
        return tmp


class OverlaySnapshotter(_DirSnapshotter):
    name = "overlayfs"

    # overlay layers do not depend on their parents' contents, so a layer can be
    # extracted before its place in a chain is known (while the rest of an archive is
    # still arriving) and adopted under its key later.
    independent_layers = True

    def unpack(self, key: int, parent_key: int | None, layer_tar: BinaryIO,
               limit: int | None) -> int:
        tmp, size = self.extract_detached(layer_tar, limit)
        self.adopt(tmp, key)
        return size

    def extract_detached(self, layer_tar: BinaryIO, limit: int | None) -> tuple[str, int]:
        tmp = self._new_tmp()
        try:
            stats = extract_layer(layer_tar, os.path.join(tmp, "fs"), whiteouts="overlay", limit=limit)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp, stats.bytes

    def adopt(self, tmp: str, key: int) -> None:
        try:
            self._publish(tmp, key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def discard(self, tmp: str) -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    def mounts(self, chain: list[int]) -> list[Mount]:
        if len(chain) == 1:
            return [Mount("bind", self.path(chain[0]), ("ro", "rbind"))]
        lower = ":".join(self.path(k) for k in reversed(chain))
        return [Mount("overlay", "overlay", (f"lowerdir={lower}",))]


class CopySnapshotter(_DirSnapshotter):
    """Where overlayfs is missing: each snapshot is a full copy of its parent with the
    layer applied (whiteouts delete). Slower and bigger, but works on any filesystem."""

    name = "native"
    independent_layers = False

    def unpack(self, key: int, parent_key: int | None, layer_tar: BinaryIO,
               limit: int | None) -> int:
        tmp = self._new_tmp()
        try:
            fs = os.path.join(tmp, "fs")
            if parent_key is not None:
                os.rmdir(fs)
                # cp -a keeps owners, modes, xattrs, devices and hardlinks; --reflink
                # makes it nearly free on filesystems that can share extents.
                subprocess.run(["cp", "-a", "--reflink=auto", self.path(parent_key), fs],
                               check=True, capture_output=True)
            stats = extract_layer(layer_tar, fs, whiteouts="apply", limit=limit)
            self._publish(tmp, key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return stats.bytes

    def mounts(self, chain: list[int]) -> list[Mount]:
        return [Mount("bind", self.path(chain[-1]), ("ro", "rbind"))]


def overlay_supported(probe_dir: str) -> bool:
    """True when we can actually mount an overlay here (kernel, privileges, fs type)."""
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return False
    except OSError:
        return False
    if os.geteuid() != 0:
        return False
    from .. import linux

    base = tempfile.mkdtemp(prefix=".probe-", dir=probe_dir)
    try:
        for d in ("l1", "l2", "u", "w", "m"):
            os.mkdir(os.path.join(base, d))
        opts = f"lowerdir={base}/l1:{base}/l2,upperdir={base}/u,workdir={base}/w"
        try:
            linux.mount("overlay", f"{base}/m", "overlay", 0, opts)
        except OSError:
            return False
        linux.umount(f"{base}/m", linux.MNT_DETACH)
        return True
    finally:
        shutil.rmtree(base, ignore_errors=True)


def open_snapshotter(root: str, preferred: str | None) -> OverlaySnapshotter | CopySnapshotter:
    os.makedirs(root, mode=0o700, exist_ok=True)
    kind = preferred or ("overlayfs" if overlay_supported(root) else "native")
    return OverlaySnapshotter(root) if kind == "overlayfs" else CopySnapshotter(root)
