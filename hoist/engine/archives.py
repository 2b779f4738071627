"""``docker save`` / ``docker load`` archives: the legacy docker-archive (Docker 20.10),
the OCI-layout archive Docker 25+ writes (index.json + manifest.json), and plain OCI
layout tarballs. Archives are hostile input: names are checked, every blob is hashed
while it streams into the content store, and the image only becomes visible once all of
it has been verified and unpacked.
"""
from __future__ import annotations

import json
import posixpath
import platform
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable

from ..archive import detect, open_decompressed
from ..archive.tarstream import DIRECTORY, HARDLINK, REGULAR, SYMLINK, TarReader
from ..archive.tarwriter import TarPlan
from ..content.store import BlobInfo
from ..digest import Digest, is_digest
from ..errors import DigestMismatch, InvalidArgument, InvalidContent, UnsafeArchive
from ..image import reference as R
from ..image import types as T
from .images import ImageService, familiar
from .store import ImageStore

_SMALL = T.MAX_MANIFEST_SIZE + 1
_MEMORY_BUDGET = 256 * 1024 * 1024

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class _Mem:
    data: bytes


@dataclass(frozen=True, slots=True)
class _Blob:
    info: BlobInfo


@dataclass(frozen=True, slots=True)
class _Link:
    target: str


def _clean_name(name: str) -> str:
    if "\0" in name or name.startswith("/"):
        raise UnsafeArchive(f"invalid archive entry name {name!r}")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchive(f"archive entry {name!r} points outside the archive")
    return norm


class _ArchiveFiles:
    """The files of an image archive, read in one streaming pass."""

    def __init__(self, store: ImageStore, lease: Any) -> None:
        self.store = store
        self.lease = lease
        self.files: dict[str, _Mem | _Blob | _Link] = {}
        self._memory = 0
        self.prepared: list[str] = []

    def read(self, stream: BinaryIO) -> None:
        raw = open_decompressed(stream, self.store.max_layer_size * 4)
        tar = TarReader(raw)
        for m in tar:
            name = _clean_name(m.name)
            if m.type == DIRECTORY or name == ".":
                continue
            if m.type in (SYMLINK, HARDLINK):
                target = m.linkname if m.type == HARDLINK else \
                    posixpath.join(posixpath.dirname(name), m.linkname)
                self.files[name] = _Link(_clean_name(target))
                continue
            if m.type != REGULAR:
                continue  # devices or fifos have no meaning in an image archive
            expected = _blob_name_digest(name)
            if m.size <= _SMALL and self._memory + m.size <= _MEMORY_BUDGET:
                data = tar.read()
                if expected is not None and Digest.of_bytes(data, expected.algorithm) != expected:
                    raise DigestMismatch(f"digest mismatch: archive blob {name} does not match its name")
                self._memory += m.size
                self.files[name] = _Mem(data)
            else:
                try:
                    info = self.store.content.ingest(tar, expected, m.size)
                except DigestMismatch:
                    raise DigestMismatch(f"digest mismatch: archive blob {name} does not match its name") from None
                self.lease.add("blob", str(info.digest))
                self.files[name] = _Blob(info)
                self.store.prepare(info.digest)
                self.prepared.append(str(info.digest))
        tar.drain()

    def _resolve(self, name: str) -> _Mem | _Blob:
        name = _clean_name(name)
        for _ in range(16):
            f = self.files.get(name)
            if f is None:
                raise InvalidContent(f"image archive has no file {name!r}")
            if not isinstance(f, _Link):
                return f
            name = f.target
        raise InvalidContent(f"too many levels of links at {name!r}")

    def has(self, name: str) -> bool:
        return name in self.files

    def small(self, name: str, limit: int = T.MAX_MANIFEST_SIZE) -> bytes:
        f = self._resolve(name)
        if isinstance(f, _Blob):
            return self.store.content.read(f.info.digest, limit)
        if len(f.data) > limit:
            raise InvalidContent(f"{name} is larger than {limit} bytes")
        return f.data

    def to_store(self, name: str) -> BlobInfo:
        """Make sure the file is in the content store (under the lease) and describe it."""
        f = self._resolve(name)
        if isinstance(f, _Blob):
            return f.info
        info = self.store.content.put(f.data)
        self.lease.add("blob", str(info.digest))
        return info

    def blob_by_digest(self, d: Digest) -> BlobInfo:
        info = self.to_store(f"blobs/{d.algorithm}/{d.hex}")
        if info.digest != d:
            raise DigestMismatch(f"blob {d} does not match its content")
        return info


def _blob_name_digest(name: str) -> Digest | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return Digest.parse(f"{parts[1]}:{parts[2]}")
        except InvalidArgument:
            raise InvalidContent(f"archive blob name {name!r} is not a valid digest") from None
    return None


def _host_platform() -> T.Platform:
    m = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)
    return T.Platform(arch, "linux")


def _layer_media_type(store: ImageStore, info: BlobInfo, oci: bool) -> str:
    with store.content.open(info.digest) as f:
        kind = detect(f.read(8))
    if kind == "gzip":
        return T.OCI_LAYER_GZIP if oci else T.DOCKER_LAYER_GZIP
    if kind == "zstd":
        return T.OCI_LAYER_ZSTD
    if kind != "none":
        raise InvalidContent(f"layer {info.digest} uses unsupported compression {kind}")
    return T.OCI_LAYER if oci else T.DOCKER_LAYER


class ArchiveService:
    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.store = images.store

    # ----------------------------------------------------------------- load

    def load(self, stream: BinaryIO, progress: Progress = lambda s: None) -> list[str]:
        """Load every image in the archive. Returns the "Loaded image..." lines."""
        with self.store.gc_lock.shared(), self.store.db.lease() as lease:
            files = _ArchiveFiles(self.store, lease)
            try:
                return self._load(files, stream, progress)
            finally:
                self.store.discard_prepared(files.prepared)

    def _load(self, files: "_ArchiveFiles", stream: BinaryIO, progress: Progress) -> list[str]:
        files.read(stream)
        if files.has("index.json"):
            found = self._from_oci(files)
        elif files.has("manifest.json"):
            found = self._from_docker_manifest(files)
        else:
            raise InvalidContent("invalid image archive: it has neither manifest.json nor index.json")
        if not found:
            raise InvalidContent("invalid image archive: it contains no images")
        lines: list[str] = []
        for manifest, config, tags in found:
            old = {t: self._current(t) for t in tags}
            image_id = self.store.register(manifest, config, tags=tags)
            for t in tags:
                if old[t] and old[t] != image_id:
                    lines.append(f"The image {familiar(t)} already exists, renaming the old one with "
                                 f"ID {old[t]} to empty string")
            self.store.events.publish("image", "load", image_id, name=image_id)
            for t in tags:
                self.store.events.publish("image", "tag", image_id, name=familiar(t))
                lines.append(f"Loaded image: {familiar(t)}")
            if not tags:
                lines.append(f"Loaded image ID: {image_id}")
            for ln in lines[-max(1, len(tags)):]:
                progress(ln)
        return lines

    def _current(self, tag: str) -> str | None:
        r = self.store.db.one("SELECT image_id FROM tags WHERE name=?", (tag,))
        return r["image_id"] if r else None

    def _from_docker_manifest(self, files: _ArchiveFiles) -> list[tuple[T.Manifest, T.ImageConfig, list[str]]]:
        doc = T.strict_json(files.small("manifest.json"), "manifest.json")
        if not isinstance(doc, list):
            raise InvalidContent("invalid manifest.json: not a list")
        out = []
        for entry in doc:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                    or not isinstance(entry.get("Layers"), list):
                raise InvalidContent("invalid manifest.json entry")
            cfg_info = files.to_store(entry["Config"])
            config = T.ImageConfig.parse(files.small(entry["Config"], T.MAX_CONFIG_SIZE))
            layers = []
            for lp in entry["Layers"]:
                if not isinstance(lp, str):
                    raise InvalidContent("invalid manifest.json: layer path is not a string")
                info = files.to_store(lp)
                layers.append(T.Descriptor(_layer_media_type(self.store, info, False), info.digest, info.size))
            manifest = make_manifest(T.DOCKER_MANIFEST, T.Descriptor(T.DOCKER_CONFIG, cfg_info.digest, cfg_info.size),
                                      layers)
            tags = [str(R.parse(t)) for t in (entry.get("RepoTags") or []) if isinstance(t, str)]
            out.append((manifest, config, tags))
        return out

    def _from_oci(self, files: _ArchiveFiles) -> list[tuple[T.Manifest, T.ImageConfig, list[str]]]:
        index = T.Index.parse(files.small("index.json"))
        repo_tags: dict[str, list[str]] = {}
        if files.has("manifest.json"):
            try:
                for e in T.strict_json(files.small("manifest.json"), "manifest.json") or []:
                    if isinstance(e, dict) and isinstance(e.get("Config"), str):
                        cfg_name = _clean_name(e["Config"])
                        repo_tags.setdefault(cfg_name.split("/")[-1], []).extend(
                            str(R.parse(t)) for t in (e.get("RepoTags") or []) if isinstance(t, str))
            except InvalidArgument as e:
                raise InvalidContent(f"invalid tag in manifest.json: {e}") from None
        out = []
        seen: set[str] = set()
        for desc in index.manifests:
            manifest = self._pick_manifest(files, desc)
            if manifest is None:
                continue
            cfg_info = files.blob_by_digest(manifest.config.digest)
            config = T.ImageConfig.parse(self.store.content.read(cfg_info.digest, T.MAX_CONFIG_SIZE))
            for layer in manifest.layers:
                files.blob_by_digest(layer.digest)
            tags = list(repo_tags.get(manifest.config.digest.hex, []))
            ann = dict(desc.annotations)
            name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name", "")
            if name:
                try:
                    ref = R.parse(name)
                    if ref.tag and str(ref) not in tags:
                        tags.append(str(ref))
                except InvalidArgument:
                    pass  # a bare tag annotation ("latest") names no repository
            key = str(manifest.digest)
            if key in seen:
                continue
            seen.add(key)
            out.append((manifest, config, tags))
        return out

    def _pick_manifest(self, files: _ArchiveFiles, desc: T.Descriptor, depth: int = 0) -> T.Manifest | None:
        if depth > 4:
            raise InvalidContent("image index nests too deeply")
        raw_info = files.blob_by_digest(desc.digest)
        raw = self.store.content.read(raw_info.digest, T.MAX_MANIFEST_SIZE)
        if desc.media_type in T.INDEX_TYPES:
            idx = T.Index.parse(raw, desc.media_type)
            host = _host_platform()
            cands = [m for m in idx.manifests if m.media_type in T.MANIFEST_TYPES]
            match = [m for m in cands if m.platform and m.platform.os == host.os
                     and m.platform.architecture == host.architecture]
            choice = (match or cands)
            present = [m for m in choice if files.has(f"blobs/{m.digest.algorithm}/{m.digest.hex}")]
            return self._pick_manifest(files, present[0], depth + 1) if present else None
        if desc.media_type not in T.MANIFEST_TYPES:
            return None  # attestations and other artifacts are not images
        return T.Manifest.parse(raw, desc.media_type)

    # ----------------------------------------------------------------- save

    def plan_save(self, names: Iterable[str]) -> TarPlan:
        """Plan a docker-archive (Docker 25+ layout, loadable by Docker 20.10 too)."""
        wanted: list[tuple[str, list[str]]] = []
        for name in names:
            for image_id, tags in self._expand(name):
                for i, (iid, ts) in enumerate(wanted):
                    if iid == image_id:
                        wanted[i] = (iid, ts + [t for t in tags if t not in ts])
                        break
                else:
                    wanted.append((image_id, tags))
        if not wanted:
            raise InvalidArgument("empty export - not implemented")
        plan = TarPlan(mtime=0)
        plan.add_dir("blobs")
        plan.add_dir("blobs/sha256")
        manifest_json = []
        index_entries = []
        repositories: dict[str, dict[str, str]] = {}
        for image_id, tags in wanted:
            rec = self.store.image(image_id)
            manifest = self.store.manifest(rec)
            for blob in (manifest.config, *manifest.layers):
                self._add_blob(plan, blob.digest)
            self._add_blob(plan, rec.target.digest)
            fam = [familiar(t) for t in tags]
            layers = [f"blobs/sha256/{l.digest.hex}" for l in manifest.layers]
            manifest_json.append({"Config": f"blobs/sha256/{manifest.config.digest.hex}",
                                  "RepoTags": fam or None, "Layers": layers})
            base = rec.target.to_json()
            if not tags:
                index_entries.append(base)
            for t in tags:
                ref = R.parse(t)
                index_entries.append({**base, "annotations": {"io.containerd.image.name": str(ref),
                                                              "org.opencontainers.image.ref.name": ref.tag}})
                repositories.setdefault(ref.familiar_repository, {})[ref.tag or "latest"] = \
                    manifest.layers[-1].digest.hex if manifest.layers else image_id.split(":")[1]
        plan.add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": T.OCI_INDEX,
                                                  "manifests": index_entries}).encode())
        plan.add_bytes("manifest.json", json.dumps(manifest_json).encode())
        plan.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if repositories:
            plan.add_bytes("repositories", json.dumps(repositories).encode())
        return plan

    def _add_blob(self, plan: TarPlan, d: Digest) -> None:
        name = f"blobs/{d.algorithm}/{d.hex}"
        if not plan.has(name):
            plan.add_file(name, self.store.content.path(d))

    def _expand(self, name: str) -> list[tuple[str, list[str]]]:
        """A repository name alone saves all its tags, as ``docker save`` does; an ID
        (``sha256:…`` or a hex prefix) saves the image without tags."""
        if is_digest(name):
            return [(self.images.resolve(name), [])]
        try:
            ref = R.parse(name, default_tag=False)
        except InvalidArgument:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None:
            rows = self.store.db.query("SELECT name, image_id FROM tags WHERE name LIKE ? ORDER BY name",
                                       (ref.repository + ":%",))
            rows = [r for r in rows if r["name"].rsplit(":", 1)[0] == ref.repository]
            if rows:
                by: dict[str, list[str]] = {}
                for r in rows:
                    by.setdefault(r["image_id"], []).append(r["name"])
                return list(by.items())
        image_id = self.images.resolve(name)
        if ref is not None and ref.tag is not None and ref.digest is None \
                and str(R.parse(name)) in self.store.tags_of(image_id):
            full = str(R.parse(name))
            return [(image_id, [full])]
        return [(image_id, [])]

    def save(self, names: list[str], out: BinaryIO) -> None:
        plan = self.plan_save(names)
        plan.write_to(out)
        for n in names:
            self.store.events.publish("image", "save", self.images.resolve(n), name=n)


def make_manifest(media_type: str, config: T.Descriptor, layers: list[T.Descriptor]) -> T.Manifest:
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
           "layers": [l.to_json() for l in layers]}
    raw = json.dumps(doc, indent=3).encode()
    return T.Manifest(media_type, config, tuple(layers), raw)
