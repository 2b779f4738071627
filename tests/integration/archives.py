"""Builders for image archives and layers, honest and hostile, used by the tests."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Iterable


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name: str, data: bytes = b"", mode: int = 0o644, **kw) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def link_entry(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    ti.linkname = target
    return ti, None


def dir_entry(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = mode
    return ti, None


def config_for(layers: list[bytes], **extra) -> bytes:
    diff_ids = []
    for layer in layers:
        raw = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
        diff_ids.append(sha(raw))
    doc = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
           "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    doc.update(extra)
    return json.dumps(doc).encode()


def docker_archive(layers: list[bytes], tags: list[str] | None = None, *, config: bytes | None = None,
                   manifest: bytes | None = None, extra: list[tuple[tarfile.TarInfo, bytes | None]] = ()) -> bytes:
    """The legacy layout ``docker save`` of Docker 20.10 writes."""
    config = config if config is not None else config_for(layers)
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    entries = []
    names = []
    for i, layer in enumerate(layers):
        d = hashlib.sha256(layer + bytes([i])).hexdigest()
        entries.append(dir_entry(d))
        entries.append(file_entry(f"{d}/layer.tar", layer))
        names.append(f"{d}/layer.tar")
    entries.append(file_entry(cfg_name, config))
    if manifest is None:
        manifest = json.dumps([{"Config": cfg_name, "RepoTags": tags or [], "Layers": names}]).encode()
    entries.append(file_entry("manifest.json", manifest))
    entries.extend(extra)
    return tar_bytes(entries)


def oci_archive(layers: list[bytes], tag: str | None = None, *, config: bytes | None = None,
                layer_media_type: str = "application/vnd.oci.image.layer.v1.tar",
                corrupt_blob: str | None = None) -> bytes:
    config = config if config is not None else config_for(layers)
    blobs = {sha(config): config}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                           "size": len(config)},
                "layers": []}
    for layer in layers:
        blobs[sha(layer)] = layer
        manifest["layers"].append({"mediaType": layer_media_type, "digest": sha(layer), "size": len(layer)})
    mraw = json.dumps(manifest).encode()
    blobs[sha(mraw)] = mraw
    desc = {"mediaType": manifest["mediaType"], "digest": sha(mraw), "size": len(mraw)}
    if tag:
        desc["annotations"] = {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[-1]}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]}
    entries = [file_entry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), dir_entry("blobs"), dir_entry("blobs/sha256")]
    for d, data in blobs.items():
        if corrupt_blob == d:
            data = data[:-1] + bytes([data[-1] ^ 1])
        entries.append(file_entry("blobs/sha256/" + d[7:], data))
    entries.append(file_entry("index.json", json.dumps(index).encode()))
    return tar_bytes(entries)


def simple_layer(files: dict[str, bytes] | None = None) -> bytes:
    files = files or {"hello.txt": b"hello\n"}
    return tar_bytes([file_entry(n, d) for n, d in files.items()])
