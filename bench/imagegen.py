"""Make a docker-archive (legacy `docker save` layout) of N layers of random bytes, so
every engine loads exactly the same input. Random data keeps compression honest."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile


class _RandomStream:
    """``size`` bytes of random data, read in any chunk size (tarfile's fileobj)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def _layer_tar(path: str, index: int, size: int) -> str:
    """A layer holding one file of ``size`` random bytes; returns its sha256 (diff ID)."""
    h = hashlib.sha256()

    class _Tee(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, b):
            h.update(b)
            return self.f.write(b)

    with open(path, "wb") as raw:
        tee = _Tee(raw)
        with tarfile.open(fileobj=tee, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            d = tarfile.TarInfo(f"layer{index}")
            d.type = tarfile.DIRTYPE
            d.mode = 0o755
            tar.addfile(d)
            ti = tarfile.TarInfo(f"layer{index}/data.bin")
            ti.size = size
            ti.mode = 0o644

            tar.addfile(ti, _RandomStream(size))
    return "sha256:" + h.hexdigest()


def make_archive(out: str, tag: str, layers: int = 3, layer_size: int = 100 * 1024 * 1024) -> None:
    work = out + ".d"
    os.makedirs(work, exist_ok=True)
    diff_ids, names = [], []
    for i in range(layers):
        p = os.path.join(work, f"layer{i}.tar")
        diff_ids.append(_layer_tar(p, i, layer_size))
        names.append(p)
    config = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
              "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(layers)]}
    cfg = json.dumps(config).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, p in enumerate(names):
            tar.add(p, arcname=f"{diff_ids[i][7:]}/layer.tar")
        _add_bytes(tar, cfg_name, cfg)
        manifest = [{"Config": cfg_name, "RepoTags": [tag],
                     "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    for p in names:
        os.unlink(p)
    os.rmdir(work)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    tar.addfile(ti, io.BytesIO(data))
