"""The local image store: content + metadata + snapshots, and the one way images enter it.

Every path that creates an image (load, import, pull, build, bootstrap) ends in
:meth:`ImageStore.register`, which unpacks and verifies the layers *before* a single
metadata transaction makes the image visible, so a failure never leaves a partial image.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

from ..archive import detect, open_decompressed
from ..config import Paths
from ..content.store import ContentStore
from ..digest import Digest
from ..errors import DigestMismatch, InvalidContent, NotFound
from ..image import types as T
from ..metadata.db import Database
from ..snapshots.overlay import open_snapshotter
from .events import EventBus

# The largest uncompressed layer we will unpack; bounds decompression bombs.
MAX_LAYER_SIZE = 64 * 1024**3


class _HashingReader:
    """Wraps a stream and hashes everything read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _finish_hash(hashing: "_HashingReader | None", blob: Digest) -> Digest:
    if hashing is None:
        return blob
    hashing.drain()
    return Digest("sha256", hashing.hash.hexdigest())


class _RWLock:
    """Many loads at once (shared) or one garbage collection (exclusive)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: str
    target: T.Descriptor
    parent: str
    size: int
    added: float


@dataclass(frozen=True, slots=True)
class LayerInput:
    """A layer blob already in the content store, and the diff ID it must unpack to."""

    blob: T.Descriptor
    diff_id: Digest


class ImageStore:
    def __init__(self, data_root: str, snapshotter: str | None = None,
                 max_layer_size: int = MAX_LAYER_SIZE) -> None:
        self.paths = Paths(data_root)
        # Bounds every decompression (layers, archives, imports): a gzip bomb stops here.
        self.max_layer_size = max_layer_size
        os.makedirs(data_root, mode=0o710, exist_ok=True)
        os.chmod(data_root, 0o710)
        os.makedirs(self.paths.tmp, mode=0o700, exist_ok=True)
        self.content = ContentStore(self.paths.content)
        self.db = Database(self.paths.metadata_db)
        chosen = self.db.get_meta("snapshotter") or snapshotter
        self.snapshots = open_snapshotter(self.paths.snapshots, chosen)
        if chosen is None:
            self.db.set_meta("snapshotter", self.snapshots.name)
        self.events = EventBus()
        self.gc_lock = _RWLock()
        self._layer_locks: dict[str, threading.Lock] = {}
        self._layer_locks_guard = threading.Lock()
        self._prepared: dict[str, Future[tuple[str, int, Digest] | None]] = {}
        self._prepared_guard = threading.Lock()
        self._prepare_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="unpack")

    def recover(self) -> None:
        """Called once at daemon start, before any writer: drop crash leftovers."""
        self.content.clean_ingests()
        self.snapshots.clean_temp()
        self.db.expire_leases()
        # A snapshot renamed into place just before a crash, whose row was never written,
        # belongs to nobody: its key is never reused, so removing it is always safe.
        known = {r["key"] for r in self.db.query("SELECT key FROM layers")}
        for key in self.snapshots.keys():
            if key not in known:
                self.snapshots.remove(key)

    # ---------------------------------------------------------------- reading

    def image(self, image_id: str) -> ImageRecord:
        r = self.db.one("SELECT * FROM images WHERE id=?", (image_id,))
        if r is None:
            raise NotFound(f"No such image: {image_id}")
        return self._record(r)

    @staticmethod
    def _record(r: Any) -> ImageRecord:
        return ImageRecord(r["id"], T.Descriptor(r["target_media_type"], Digest.parse(r["target_digest"]),
                                                 r["target_size"]), r["parent"], r["size"], r["added"])

    def images(self) -> list[ImageRecord]:
        return [self._record(r) for r in self.db.query("SELECT * FROM images ORDER BY added DESC")]

    def config(self, image_id: str) -> T.ImageConfig:
        return T.ImageConfig.parse(self.content.read(image_id, T.MAX_CONFIG_SIZE))

    def manifest(self, rec: ImageRecord) -> T.Manifest:
        return self.read_manifest(rec.target)

    def read_manifest(self, desc: T.Descriptor) -> T.Manifest:
        return T.Manifest.parse(self.content.read(desc.digest, T.MAX_MANIFEST_SIZE), desc.media_type)

    def tags_of(self, image_id: str) -> list[str]:
        return [r["name"] for r in self.db.query("SELECT name FROM tags WHERE image_id=? ORDER BY name", (image_id,))]

    def digests_of(self, image_id: str) -> list[str]:
        return [f"{r['repository']}@{r['digest']}" for r in self.db.query(
            "SELECT repository, digest FROM repo_digests WHERE image_id=? ORDER BY repository", (image_id,))]

    def all_tags(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.db.query("SELECT name, image_id FROM tags ORDER BY name"):
            out.setdefault(r["image_id"], []).append(r["name"])
        return out

    def all_digests(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.db.query("SELECT repository, digest, image_id FROM repo_digests ORDER BY repository"):
            out.setdefault(r["image_id"], []).append(f"{r['repository']}@{r['digest']}")
        return out

    def layer_sizes(self, config: T.ImageConfig) -> list[int]:
        sizes = []
        for cid in T.chain_ids(config.diff_ids):
            r = self.db.one("SELECT size FROM layers WHERE chain_id=?", (str(cid),))
            sizes.append(r["size"] if r else 0)
        return sizes

    def layer_keys(self, config: T.ImageConfig) -> list[int]:
        keys = []
        for cid in T.chain_ids(config.diff_ids):
            r = self.db.one("SELECT key FROM layers WHERE chain_id=?", (str(cid),))
            if r is None:
                raise NotFound(f"layer {cid} is not unpacked")
            keys.append(r["key"])
        return keys

    # ---------------------------------------------------------------- writing

    def _layer_lock(self, chain_id: str) -> threading.Lock:
        with self._layer_locks_guard:
            return self._layer_locks.setdefault(chain_id, threading.Lock())

    def _next_key(self) -> int:
        with self.db.transaction() as c:
            r = c.execute("SELECT value FROM meta WHERE key='next_layer_key'").fetchone()
            key = int(r["value"]) if r else 1
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_layer_key', ?)", (str(key + 1),))
        return key

    def _unpack_one(self, layer: LayerInput, chain_id: Digest, parent: Digest | None) -> int:
        """Unpack one layer as snapshot ``chain_id`` unless it already exists."""
        cid = str(chain_id)
        with self._layer_lock(cid):
            row = self.db.one("SELECT key, size FROM layers WHERE chain_id=?", (cid,))
            if row is not None and self.snapshots.exists(row["key"]):
                return row["size"]
            parent_key = None
            if parent is not None:
                prow = self.db.one("SELECT key FROM layers WHERE chain_id=?", (str(parent),))
                parent_key = prow["key"] if prow else None
            key = row["key"] if row is not None else self._next_key()
            prepared = self._claim_prepared(layer)
            if prepared is not None:
                tmp, size = prepared
                self.snapshots.adopt(tmp, key)  # type: ignore[union-attr]
            else:
                with self.content.open(layer.blob.digest) as raw:
                    stream, hashing = self._layer_stream(raw, layer.blob.digest)
                    try:
                        size = self.snapshots.unpack(key, parent_key, stream, self.max_layer_size)
                        actual = _finish_hash(hashing, layer.blob.digest)
                    except BaseException:
                        self.snapshots.remove(key)
                        raise
                if actual != layer.diff_id:
                    self.snapshots.remove(key)
                    raise DigestMismatch(f"digest mismatch: layer {layer.blob.digest} unpacks to {actual}, "
                                         f"but the image config says {layer.diff_id}")
            with self.db.transaction() as c:
                c.execute("INSERT OR REPLACE INTO layers(chain_id, diff_id, parent, key, size, added) "
                          "VALUES (?,?,?,?,?,?)", (cid, str(layer.diff_id), str(parent or ""), key,
                                                    size, time.time()))
                c.execute("INSERT OR REPLACE INTO layer_blobs(blob_digest, diff_id) VALUES (?,?)",
                          (str(layer.blob.digest), str(layer.diff_id)))
            return size

    def _layer_stream(self, raw: BinaryIO, blob: Digest) -> tuple[BinaryIO, "_HashingReader | None"]:
        """The uncompressed tar of a stored blob, plus a hasher for its diff ID. An
        uncompressed blob *is* its tar, already verified against its digest on ingest,
        so it is read directly and not hashed again."""
        head = raw.read(8)
        raw.seek(0)
        if detect(head) == "none":
            return raw, None
        hashing = _HashingReader(open_decompressed(raw, self.max_layer_size))
        return hashing, hashing  # type: ignore[return-value]

    def prepare(self, blob: Digest) -> None:
        """Start unpacking a blob that is probably a layer, before the image that uses it
        is known (overlay only). ``register`` adopts the result; ``discard_prepared``
        drops what nobody claimed."""
        if not getattr(self.snapshots, "independent_layers", False):
            return
        with self._prepared_guard:
            if str(blob) in self._prepared:
                return
            self._prepared[str(blob)] = self._prepare_pool.submit(self._prepare_job, blob)

    def _prepare_job(self, blob: Digest) -> tuple[str, int, Digest] | None:
        try:
            with self.content.open(blob) as raw:
                stream, hashing = self._layer_stream(raw, blob)
                tmp, size = self.snapshots.extract_detached(stream, self.max_layer_size)  # type: ignore[union-attr]
                return tmp, size, _finish_hash(hashing, blob)
        except Exception:
            return None  # not a layer after all, or a bad one: the normal path reports it

    def _claim_prepared(self, layer: LayerInput) -> tuple[str, int] | None:
        with self._prepared_guard:
            fut = self._prepared.pop(str(layer.blob.digest), None)
        if fut is None:
            return None
        res = fut.result()
        if res is None:
            return None
        tmp, size, diff = res
        if diff != layer.diff_id:
            self.snapshots.discard(tmp)  # type: ignore[union-attr]
            return None
        return tmp, size

    def discard_prepared(self, blobs: list[str]) -> None:
        for b in blobs:
            with self._prepared_guard:
                fut = self._prepared.pop(b, None)
            if fut is not None:
                res = fut.result()
                if res is not None:
                    self.snapshots.discard(res[0])  # type: ignore[union-attr]

    def unpack(self, layers: list[LayerInput]) -> list[int]:
        chain = T.chain_ids([l.diff_id for l in layers])
        parents: list[Digest | None] = [None] + chain[:-1]
        todo = list(zip(layers, chain, parents))
        if self.snapshots.name == "overlayfs" and len(todo) > 1:
            # overlay layers are independent directories, so they unpack in parallel;
            # file writes and hashing release the GIL.
            with ThreadPoolExecutor(max_workers=min(4, len(todo))) as ex:
                return list(ex.map(lambda t: self._unpack_one(*t), todo))
        return [self._unpack_one(*t) for t in todo]

    def register(self, manifest: T.Manifest, config: T.ImageConfig, *, tags: list[str] = (),
                 repo_digests: list[str] = (), parent: str = "") -> str:
        """Make an image visible. All blobs must already be in the content store."""
        if len(manifest.layers) != len(config.diff_ids):
            raise InvalidContent(f"manifest has {len(manifest.layers)} layers but the config "
                                 f"has {len(config.diff_ids)} diff IDs")
        if manifest.config.digest != config.digest:
            raise DigestMismatch("manifest config digest does not match the config")
        for blob in (manifest.config, *manifest.layers):
            if self.content.size(blob.digest) != blob.size:
                raise InvalidContent(f"blob {blob.digest} has the wrong size")
        mdesc = T.Descriptor(manifest.media_type, self.content.put(manifest.raw).digest, len(manifest.raw))
        sizes = self.unpack([LayerInput(b, d) for b, d in zip(manifest.layers, config.diff_ids)])
        image_id = str(config.digest)
        replaced: list[tuple[str, str]] = []
        with self.db.transaction() as c:
            existing = c.execute("SELECT id FROM images WHERE id=?", (image_id,)).fetchone()
            if existing is None:
                c.execute("INSERT INTO images(id, target_media_type, target_digest, target_size, parent, size, added) "
                          "VALUES (?,?,?,?,?,?,?)", (image_id, mdesc.media_type, str(mdesc.digest),
                                                      mdesc.size, parent, sum(sizes), time.time()))
            for name in tags:
                old = c.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
                if old is not None and old["image_id"] != image_id:
                    replaced.append((name, old["image_id"]))
                c.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (name, image_id))
            for rd in repo_digests:
                repo, dig = rd.split("@", 1)
                c.execute("INSERT OR REPLACE INTO repo_digests(repository, digest, image_id) VALUES (?,?,?)",
                          (repo, dig, image_id))
        return image_id

    def set_tag(self, name: str, image_id: str) -> str | None:
        """Point ``name`` at ``image_id``; returns the image it pointed at before."""
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {image_id}")
            old = c.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
            c.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (name, image_id))
        return old["image_id"] if old else None

    def remove_tag(self, name: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE name=?", (name,))

    def remove_repo_digest(self, repo: str, digest: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM repo_digests WHERE repository=? AND digest=?", (repo, digest))

    def delete_image(self, image_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
            c.execute("DELETE FROM repo_digests WHERE image_id=?", (image_id,))
            c.execute("DELETE FROM images WHERE id=?", (image_id,))

    def containers_using(self, image_id: str) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM containers WHERE image_id=?", (image_id,))]

    # ---------------------------------------------------------------- garbage collection

    def _referenced(self) -> tuple[set[str], set[str]]:
        """Mark phase: blobs and layer chain IDs reachable from images and leases."""
        blobs: set[str] = set(self.db.leased("blob"))
        chains: set[str] = set(self.db.leased("layer"))
        for rec in self.images():
            blobs.add(str(rec.target.digest))
            blobs.add(rec.id)
            try:
                docs = [rec.target]
                while docs:
                    d = docs.pop()
                    blobs.add(str(d.digest))
                    if d.media_type in T.INDEX_TYPES:
                        idx = T.Index.parse(self.content.read(d.digest, T.MAX_MANIFEST_SIZE), d.media_type)
                        docs.extend(m for m in idx.manifests if self.content.exists(m.digest))
                    elif d.media_type in T.MANIFEST_TYPES:
                        m = self.read_manifest(d)
                        blobs.add(str(m.config.digest))
                        blobs.update(str(l.digest) for l in m.layers)
                cfg = self.config(rec.id)
                chains.update(str(c) for c in T.chain_ids(cfg.diff_ids))
            except (NotFound, InvalidContent):
                continue  # a damaged image keeps what it has; `system check` reports it
        for r in self.db.query("SELECT image_id FROM containers"):
            try:
                chains.update(str(c) for c in T.chain_ids(self.config(r["image_id"]).diff_ids))
            except (NotFound, InvalidContent):
                pass
        return blobs, chains

    def gc(self) -> int:
        """Sweep unreferenced blobs and snapshots; returns bytes reclaimed (snapshots)."""
        reclaimed = 0
        with self.gc_lock.exclusive():
            self.db.expire_leases()
            blobs, chains = self._referenced()
            for info in list(self.content.walk()):
                if str(info.digest) not in blobs:
                    self.content.delete(info.digest)
            known_keys = set()
            for r in self.db.query("SELECT chain_id, key, size FROM layers"):
                if r["chain_id"] in chains:
                    known_keys.add(r["key"])
                    continue
                self.snapshots.remove(r["key"])
                reclaimed += r["size"]
                with self.db.transaction() as c:
                    c.execute("DELETE FROM layers WHERE chain_id=?", (r["chain_id"],))
            live_diff = {r["diff_id"] for r in self.db.query("SELECT diff_id FROM layers")}
            with self.db.transaction() as c:
                for r in c.execute("SELECT blob_digest, diff_id FROM layer_blobs").fetchall():
                    if r["blob_digest"] not in blobs and r["diff_id"] not in live_diff:
                        c.execute("DELETE FROM layer_blobs WHERE blob_digest=?", (r["blob_digest"],))
            for key in self.snapshots.keys():
                if key not in known_keys:
                    self.snapshots.remove(key)
        return reclaimed

    def layers_total_size(self) -> int:
        r = self.db.one("SELECT COALESCE(SUM(size),0) AS s FROM layers")
        return int(r["s"]) if r else 0
