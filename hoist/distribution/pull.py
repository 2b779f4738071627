"""Pull: manifest (platform from an index), config, layers downloaded concurrently into
the content store (verified while streaming, resumed with Range, retried with backoff),
unpacked as they arrive, and the image registered in one step at the end.

Everything written holds the store's GC lock (shared) and a lease, so a concurrent
``rmi``/prune never takes half a pull; a failure leaves no image and no tag.
"""
from __future__ import annotations

import http.client
import platform as _platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..digest import Digest
from ..errors import DigestMismatch, HoistError, InvalidArgument, InvalidContent, NotFound, RegistryError
from ..image import reference as R
from ..image import types as T
from .progress import ByteProgress, Emit, bar, detail, status
from .registry import RegistryClient, scope_for

ACCEPT = ", ".join([T.OCI_INDEX, T.OCI_MANIFEST, T.DOCKER_MANIFEST_LIST, T.DOCKER_MANIFEST])
DOWNLOAD_WORKERS = 3
BLOB_ATTEMPTS = 5
_BUF = 1 << 20


def host_platform() -> T.Platform:
    m = _platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
            "i686": "386", "i386": "386"}.get(m, m)
    variant = {"arm64": "v8", "armv7l": "v7", "armv6l": "v6"}.get(arch if arch == "arm64" else m, "")
    return T.Platform(arch, "linux", variant)


def parse_platform(text: str) -> T.Platform:
    """``os/arch[/variant]`` (or ``arch``), normalised as containerd's platforms package."""
    if not text:
        return host_platform()
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else ""
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
            "armel": "arm", "i386": "386", "i686": "386"}.get(arch, arch)
    if arch == "arm64" and variant in ("8", "v8"):
        variant = "v8"
    elif arch == "arm" and variant and not variant.startswith("v"):
        variant = "v" + variant
    return T.Platform(arch, os_, variant)


def _platform_matches(want: T.Platform, have: T.Platform | None, strict_variant: bool) -> bool:
    if have is None or have.os != want.os or have.architecture != want.architecture:
        return False
    hv = have.variant or ("v8" if have.architecture == "arm64" else "")
    wv = want.variant or ("v8" if want.architecture == "arm64" else "")
    return not strict_variant or not wv or hv == wv


def select_manifest(index: T.Index, want: T.Platform, explicit: bool) -> T.Descriptor:
    cands = [m for m in index.manifests if m.media_type in T.MANIFEST_TYPES]
    exact = [m for m in cands if _platform_matches(want, m.platform, True)]
    loose = [m for m in cands if _platform_matches(want, m.platform, False)]
    if exact or loose:
        return (exact or loose)[0]
    raise NotFound(f"no matching manifest for {want} in the manifest list entries")


@dataclass(frozen=True, slots=True)
class Fetched:
    media_type: str
    raw: bytes
    digest: Digest


def get_manifest(client: RegistryClient, path: str, reference: str, shown: str) -> Fetched:
    resp = client.request("GET", f"/v2/{path}/manifests/{reference}", scope=scope_for(path, "pull"),
                          headers={"Accept": ACCEPT})
    if resp.status == 404:
        body = resp.read_limited(1 << 20)
        from .auth import error_message
        raise NotFound(f"manifest for {shown} not found: {error_message(body, 'manifest unknown')}")
    client.check(resp, f"manifest for {shown}")
    raw = resp.read_limited(T.MAX_MANIFEST_SIZE)
    digest = Digest.of_bytes(raw)
    if reference.startswith("sha256:") and str(digest) != reference:
        raise DigestMismatch(f"manifest verification failed for digest {reference}")
    media = resp.header("Content-Type").split(";")[0].strip()
    if media not in T.MANIFEST_TYPES and media not in T.INDEX_TYPES:
        media = T.media_type_of(raw)
    return Fetched(media, raw, digest)


def download_blob(client: RegistryClient, store: Any, path: str, desc: T.Descriptor,
                  progress: ByteProgress | None, on_verify: Callable[[], None] = lambda: None,
                  attempts: int = BLOB_ATTEMPTS) -> None:
    """Fetch a blob into the content store, verified while it streams. An interrupted
    transfer resumes from the ingest offset with a Range request; a registry that
    answers the range with the whole blob restarts it; sizes beyond the descriptor's are
    refused at once. Nothing is committed unless size and digest both match."""
    if store.content.exists(desc.digest) and store.content.size(desc.digest) == desc.size:
        return
    scope = scope_for(path, "pull")
    writer = store.content.writer(desc.digest, desc.size)
    buf = bytearray(_BUF)
    view = memoryview(buf)
    failures = 0
    try:
        while True:
            headers = {"Range": f"bytes={writer.size}-"} if writer.size else {}
            try:
                resp = client.request("GET", f"/v2/{path}/blobs/{desc.digest}", scope=scope,
                                      headers=headers)
                if resp.status == 200 and writer.size:
                    writer.__exit__(None, None, None)  # no range support: start over
                    writer = store.content.writer(desc.digest, desc.size)
                    if progress:
                        progress.reset(0)
                elif resp.status not in (200, 206):
                    client.check(resp, f"blob {desc.digest}")
                length = resp.header("Content-Length")
                if length.isdigit() and writer.size + int(length) > desc.size:
                    resp.close(reuse=False)
                    raise InvalidContent(f"registry sent {int(length) + writer.size} bytes for blob "
                                         f"{desc.digest}, whose descriptor says {desc.size}")
                while True:
                    n = resp.readinto(view)
                    if not n:
                        break
                    writer.write(view[:n])
                    if progress:
                        progress.update(n)
                resp.close()
                if writer.size != desc.size:
                    raise http.client.IncompleteRead(b"", desc.size - writer.size)
                break
            except (OSError, http.client.HTTPException, RegistryError) as e:
                failures += 1
                if failures >= attempts:
                    raise RegistryError(f"failed to download blob {desc.digest} after {failures} "
                                        f"attempts: {e or type(e).__name__}") from None
                time.sleep(min(5.0, client.backoff * 2 ** (failures - 1)))
        on_verify()
        writer.commit()
    finally:
        writer.__exit__(None, None, None)


class Puller:
    def __init__(self, store: Any, client: RegistryClient, emit: Emit,
                 workers: int = DOWNLOAD_WORKERS) -> None:
        self.store = store
        self.client = client
        self.emit = emit
        self.workers = workers

    def tags(self, path: str) -> list[str]:
        out: list[str] = []
        url = f"/v2/{path}/tags/list?n=1000"
        for _ in range(1000):
            resp = self.client.request("GET", url, scope=scope_for(path, "pull"))
            self.client.check(resp, f"tags of {path}")
            link = resp.header("Link")
            doc = T.strict_json(resp.read_limited(16 << 20), "tag list", 16 << 20)
            out.extend(t for t in (doc.get("tags") or []) if isinstance(t, str) and R.is_valid_tag(t))
            if not link or "rel=\"next\"" not in link:
                break
            url = link.split(";")[0].strip().strip("<>")
        return sorted(dict.fromkeys(out))

    def pull(self, ref: R.Reference, want: T.Platform, explicit_platform: bool) -> tuple[str, bool]:
        """Pull one tag or digest. Returns (image ID, whether anything changed)."""
        path = ref.path
        reference = str(ref.digest) if ref.digest else (ref.tag or R.DEFAULT_TAG)
        top = get_manifest(self.client, path, reference, ref.familiar)
        fetched = top
        if top.media_type in T.INDEX_TYPES:
            index = T.Index.parse(top.raw, top.media_type)
            chosen = select_manifest(index, want, explicit_platform)
            fetched = get_manifest(self.client, path, str(chosen.digest), ref.familiar)
            if fetched.digest != chosen.digest:
                raise DigestMismatch(f"manifest verification failed for digest {chosen.digest}")
        if fetched.media_type not in T.MANIFEST_TYPES:
            raise InvalidContent(f"unsupported manifest media type {fetched.media_type}")
        manifest = T.Manifest.parse(fetched.raw, fetched.media_type)
        if manifest.config.media_type not in T.CONFIG_TYPES:
            raise InvalidContent(f"{ref.familiar} is not an image (config type {manifest.config.media_type})")
        status(self.emit, f"Pulling from {path}", reference)
        tag_name = str(ref) if ref.tag and not ref.digest else None
        before = self._tagged(tag_name) if tag_name else self._by_digest(ref.repository, str(top.digest))
        with self.store.gc_lock.shared(), self.store.db.lease() as lease:
            lease.add("blob", str(manifest.config.digest))
            download_blob(self.client, self.store, path, manifest.config, None)
            config = T.ImageConfig.parse(self.store.content.read(manifest.config.digest, T.MAX_CONFIG_SIZE))
            if len(config.diff_ids) != len(manifest.layers):
                raise InvalidContent(f"manifest has {len(manifest.layers)} layers but the config has "
                                     f"{len(config.diff_ids)} diff IDs")
            self._check_platform(config, want, explicit_platform)
            image_id = self._layers(path, manifest, config, lease)
            repo_digest = f"{ref.repository}@{top.digest}"
            self.store.register(manifest, config, tags=[tag_name] if tag_name else [],
                                repo_digests=[repo_digest])
        status(self.emit, f"Digest: {top.digest}")
        self.store.events.publish("image", "pull", image_id, name=ref.familiar)
        return image_id, before != image_id

    def _check_platform(self, config: T.ImageConfig, want: T.Platform, explicit: bool) -> None:
        have = config.platform
        if explicit and have.os and (have.os != want.os or have.architecture != want.architecture):
            raise NotFound(f"image with reference was found but does not match the specified "
                           f"platform: wanted {want}, actual: {have}")

    def _by_digest(self, repository: str, digest: str) -> str | None:
        r = self.store.db.one("SELECT image_id FROM repo_digests WHERE repository=? AND digest=?",
                              (repository, digest))
        return r["image_id"] if r else None

    def _tagged(self, name: str) -> str | None:
        r = self.store.db.one("SELECT image_id FROM tags WHERE name=?", (name,))
        return r["image_id"] if r else None

    def _layers(self, path: str, manifest: T.Manifest, config: T.ImageConfig, lease: Any) -> str:
        from ..engine.store import LayerInput
        chains = T.chain_ids(config.diff_ids)
        inputs = [LayerInput(b, d) for b, d in zip(manifest.layers, config.diff_ids)]
        present: list[bool] = []
        for layer, chain in zip(inputs, chains):
            lease.add("blob", str(layer.blob.digest))
            lease.add("layer", str(chain))
            row = self.store.db.one("SELECT key FROM layers WHERE chain_id=?", (str(chain),))
            have = row is not None and self.store.snapshots.exists(row["key"]) and \
                self.store.content.exists(layer.blob.digest)
            present.append(have)
        # Docker lists every layer first, then reports as each one moves along.
        for layer, have in zip(inputs, present):
            ident = layer.blob.digest.short
            detail(self.emit, "Already exists", ident) if have else detail(self.emit, "Pulling fs layer", ident)
        todo = [l for l, have in zip(inputs, present) if not have]
        for layer in todo[self.workers:]:
            detail(self.emit, "Waiting", layer.blob.digest.short)
        prepared: list[str] = []

        def fetch(layer: Any) -> None:
            ident = layer.blob.digest.short
            prog = ByteProgress(self.emit, "Downloading", ident, layer.blob.size)
            download_blob(self.client, self.store, path, layer.blob, prog,
                          on_verify=lambda: detail(self.emit, "Verifying Checksum", ident))
            detail(self.emit, "Download complete", ident)
            # Start unpacking now, while the other layers are still downloading.
            self.store.prepare(layer.blob.digest)
            prepared.append(str(layer.blob.digest))

        # Layer i is unpacked as soon as it and every layer below it are in: the
        # downloads of the layers above continue meanwhile.
        unique = list({str(l.blob.digest): l for l in todo}.values())
        ex = ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(unique))), thread_name_prefix="pull")
        futures = {str(l.blob.digest): ex.submit(fetch, l) for l in unique}
        try:
            for i, (layer, have) in enumerate(zip(inputs, present)):
                if have:
                    continue
                futures[str(layer.blob.digest)].result()
                ident = layer.blob.digest.short
                self.store.unpack(inputs[:i + 1])
                size = layer.blob.size
                self.emit({"status": "Extracting", "progressDetail": {"current": size, "total": size},
                           "progress": bar(size, size, time.time()), "id": ident})
                detail(self.emit, "Pull complete", ident)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
            self.store.discard_prepared(prepared)
        return str(config.digest)


def pull_image(store: Any, ref: R.Reference, *, auth: Any, emit: Emit, platform: str = "",
               all_tags: bool = False, client: RegistryClient | None = None) -> list[str]:
    """Pull ``ref`` (all tags of its repository with ``all_tags``) and emit Docker's
    messages. Returns the image IDs."""
    own = client is None
    client = client or RegistryClient(ref.domain, auth)
    want = parse_platform(platform)
    try:
        ids: list[str] = []
        changed = False
        if all_tags:
            tags = Puller(store, client, emit).tags(ref.path)
            if not tags:
                raise NotFound(f"no tags found for {ref.familiar_repository}")
            for t in tags:
                iid, ch = Puller(store, client, emit).pull(ref.with_tag(t), want, bool(platform))
                ids.append(iid)
                changed = changed or ch
            shown = ref.familiar_repository
        else:
            if ref.tag is None and ref.digest is None:
                ref = ref.with_tag(R.DEFAULT_TAG)
            iid, changed = Puller(store, client, emit).pull(ref, want, bool(platform))
            ids.append(iid)
            shown = ref.familiar
        status(emit, f"Status: Downloaded newer image for {shown}" if changed
               else f"Status: Image is up to date for {shown}")
        return ids
    except HoistError:
        raise
    finally:
        if own:
            client.close()
