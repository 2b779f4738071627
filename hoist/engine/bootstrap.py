"""Turn a bootstrapped root filesystem into a registered image (no registry involved)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Callable

from ..archive.create import write_tar_from_dir
from ..image import reference as R
from ..image import types as T
from ..image.bootstrap import bootstrap_rootfs
from .archives import make_manifest
from .store import ImageStore


class _HashingWriter:
    def __init__(self, writer: object) -> None:
        self._w = writer

    def write(self, data: bytes) -> int:
        self._w.write(data)  # type: ignore[attr-defined]
        return len(data)

    def flush(self) -> None:
        pass


def bootstrap_image(store: ImageStore, name: str, log: Callable[[str], None] = lambda s: None) -> str:
    workdir = tempfile.mkdtemp(prefix="bootstrap-", dir=store.paths.tmp)
    try:
        rootfs = os.path.join(workdir, "rootfs")
        os.mkdir(rootfs, 0o755)
        result = bootstrap_rootfs(name, rootfs, log=log)
        ref = R.parse(result.reference)
        log(f"Packing {ref.familiar} as a layer")
        with store.gc_lock.shared(), store.db.lease() as lease:
            with store.content.writer() as w:
                # overlay whiteouts cannot occur in a fresh rootfs; "none" keeps the tree as is.
                write_tar_from_dir(rootfs, _HashingWriter(w), whiteouts="none")  # type: ignore[arg-type]
                layer = w.commit()
            lease.add("blob", str(layer.digest))
            doc = dict(result.config)
            doc["rootfs"] = {"type": "layers", "diff_ids": [str(layer.digest)]}
            doc["history"] = [{"created": doc.get("created", ""), "created_by": result.created_by}]
            cfg_raw = json.dumps(doc).encode()
            cfg = store.content.put(cfg_raw)
            lease.add("blob", str(cfg.digest))
            manifest = make_manifest(T.DOCKER_MANIFEST, T.Descriptor(T.DOCKER_CONFIG, cfg.digest, cfg.size),
                                     [T.Descriptor(T.DOCKER_LAYER, layer.digest, layer.size)])
            image_id = store.register(manifest, T.ImageConfig.parse(cfg_raw), tags=[str(ref)])
        store.events.publish("image", "tag", image_id, name=ref.familiar)
        log(f"Tagged {ref.familiar} as {image_id}")
        return image_id
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
