"""Push: every blob the stored manifest names (HEAD first — "Layer already exists" —,
a cross-repository mount when another repository of the same registry is known to hold
it, otherwise POST + one monolithic PUT with the digest), a few at a time, then the
manifest, last, exactly as stored.

Compression: the blobs go up as they are stored. A layer that is already gzip or zstd
is never recompressed; a layer stored uncompressed (what ``docker save``/``load``
produce) is pushed uncompressed. On a LAN or loopback, gzip at ~50 MB/s per core is
what makes ``docker push`` slow; skipping it trades registry bytes for wall time, and
every client (docker 20.10+, containerd, skopeo) pulls uncompressed layers. The image ID
and manifest digest are unchanged by a push/pull round trip because nothing is rewritten.
"""
from __future__ import annotations

import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..digest import Digest
from ..errors import HoistError, InvalidArgument, NotFound, RegistryError
from ..image import reference as R
from ..image import types as T
from .progress import ByteProgress, Emit, detail, status
from .registry import RegistryClient, scope_for

UPLOAD_WORKERS = 3
UPLOAD_ATTEMPTS = 3


class _ProgressFile:
    """A file body for http.client that reports bytes read (and can be rewound)."""

    def __init__(self, f: Any, progress: ByteProgress | None) -> None:
        self._f = f
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data and self._progress:
            self._progress.update(len(data))
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if self._progress:
            self._progress.reset(pos)
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()


class Pusher:
    def __init__(self, store: Any, client: RegistryClient, emit: Emit, workers: int = UPLOAD_WORKERS) -> None:
        self.store = store
        self.client = client
        self.emit = emit
        self.workers = workers

    # ------------------------------------------------------------- mount sources

    def _mount_sources(self, ref: R.Reference) -> dict[str, list[str]]:
        """Blob digest → other repositories on the same registry that hold it, from our
        tags and repo digests (what we pulled from or pushed to)."""
        repos: dict[str, set[str]] = {}
        rows = [(r["name"].rsplit(":", 1)[0], r["image_id"]) for r in
                self.store.db.query("SELECT name, image_id FROM tags")]
        rows += [(r["repository"], r["image_id"]) for r in
                 self.store.db.query("SELECT repository, image_id FROM repo_digests")]
        for repo, image_id in rows:
            if "@" in repo:
                continue
            domain, _, path = repo.partition("/")
            if domain != ref.domain or path == ref.path:
                continue
            repos.setdefault(image_id, set()).add(path)
        out: dict[str, list[str]] = {}
        for image_id, paths in repos.items():
            try:
                m = self.store.manifest(self.store.image(image_id))
            except (HoistError, OSError):
                continue
            for l in m.layers:
                out.setdefault(str(l.digest), []).extend(sorted(paths))
        return out

    # ------------------------------------------------------------- blobs

    def _exists(self, path: str, d: Digest) -> bool:
        resp = self.client.request("HEAD", f"/v2/{path}/blobs/{d}", scope=scope_for(path, "pull,push"))
        resp.close()
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        self.client.check(resp, f"blob {d}")
        return False

    def _start_upload(self, path: str, d: Digest, sources: list[str]) -> tuple[str | None, str | None]:
        """(location, mounted_from): a mount done, or an upload session to fill."""
        scope = scope_for(path, "pull,push")
        for src in sources[:3]:
            q = urllib.parse.urlencode({"mount": str(d), "from": src})
            resp = self.client.request("POST", f"/v2/{path}/blobs/uploads/?{q}",
                                       scope=f"{scope} {scope_for(src, 'pull')}",
                                       headers={"Content-Length": "0"}, body=b"")
            resp.read_limited(1 << 20)
            if resp.status == 201:
                return None, src
            if resp.status == 202 and resp.header("Location"):
                return resp.header("Location"), None
        resp = self.client.request("POST", f"/v2/{path}/blobs/uploads/", scope=scope,
                                   headers={"Content-Length": "0"}, body=b"")
        if resp.status != 202:
            self.client.check(resp, f"starting the upload of {d}", (202,))
        resp.read_limited(1 << 20)
        loc = resp.header("Location")
        if not loc:
            raise RegistryError("the registry started an upload without a Location")
        return loc, None

    def upload(self, path: str, desc: T.Descriptor, ident: str, sources: list[str],
               show: bool = True) -> str:
        """Make the blob present in the repository. Returns "exists", "mounted from X" or "pushed"."""
        scope = scope_for(path, "pull,push")
        failures = 0
        while True:
            try:
                if self._exists(path, desc.digest):
                    return "exists"
                loc, mounted = self._start_upload(path, desc.digest, sources)
                if mounted is not None:
                    return f"mounted:{mounted}"
                url = self.client.url(urllib.parse.urljoin(self.client.base + f"/v2/{path}/blobs/uploads/", loc))
                url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": str(desc.digest)})
                prog = ByteProgress(self.emit, "Pushing", ident, desc.size) if show else None
                with self.store.content.open(desc.digest) as f:
                    resp = self.client.request("PUT", url, scope=scope, body=_ProgressFile(f, prog),
                                               headers={"Content-Type": "application/octet-stream",
                                                        "Content-Length": str(desc.size)})
                self.client.check(resp, f"uploading blob {desc.digest}", (201, 204))
                resp.read_limited(1 << 20)
                return "pushed"
            except RegistryError:
                failures += 1
                if failures >= UPLOAD_ATTEMPTS:
                    raise
                time.sleep(self.client.backoff * 2 ** failures)

    # ------------------------------------------------------------- one image

    def push(self, ref: R.Reference, image_id: str) -> dict[str, Any]:
        rec = self.store.image(image_id)
        manifest = self.store.manifest(rec)
        config = self.store.config(image_id)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise HoistError(f"image {image_id} is damaged: layer count mismatch")
        for b in (manifest.config, *manifest.layers):
            if not self.store.content.exists(b.digest):
                raise NotFound(f"blob {b.digest} of {ref.familiar} is missing from the local store "
                               f"(run `hoist system check`)")
        sources = self._mount_sources(ref)
        path = ref.path
        layers = list(zip(manifest.layers, diff_ids))
        for blob, diff in reversed(layers):
            detail(self.emit, "Preparing", diff.short)
        for blob, diff in reversed(layers[:max(0, len(layers) - self.workers)]):
            detail(self.emit, "Waiting", diff.short)

        def one(item: tuple[T.Descriptor, Digest]) -> None:
            blob, diff = item
            what = self.upload(path, blob, diff.short, sources.get(str(blob.digest), []))
            if what == "exists":
                detail(self.emit, "Layer already exists", diff.short)
            elif what.startswith("mounted:"):
                detail(self.emit, f"Mounted from {what.split(':', 1)[1]}", diff.short)
            else:
                detail(self.emit, "Pushed", diff.short)

        if layers:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(layers)), thread_name_prefix="push") as ex:
                futures = [ex.submit(one, it) for it in reversed(layers)]
                errors = [f.exception() for f in futures]
            first = next((e for e in errors if e is not None), None)
            if first is not None:
                raise first
        self.upload(path, manifest.config, "", [], show=False)
        tag = ref.tag or R.DEFAULT_TAG
        resp = self.client.request("PUT", f"/v2/{path}/manifests/{tag}", scope=scope_for(path, "pull,push"),
                                   headers={"Content-Type": manifest.media_type,
                                            "Content-Length": str(len(manifest.raw))},
                                   body=manifest.raw)
        self.client.check(resp, f"manifest for {ref.familiar}", (200, 201, 202))
        resp.read_limited(1 << 20)
        digest = Digest.of_bytes(manifest.raw)
        status(self.emit, f"{tag}: digest: {digest} size: {len(manifest.raw)}")
        aux = {"Tag": tag, "Digest": str(digest), "Size": len(manifest.raw)}
        self.emit({"progressDetail": {}, "aux": aux})
        with self.store.db.transaction() as c:
            # Docker records where an image was pushed: it shows in RepoDigests.
            c.execute("INSERT OR REPLACE INTO repo_digests(repository, digest, image_id) VALUES (?,?,?)",
                      (ref.repository, str(digest), image_id))
        self.store.events.publish("image", "push", image_id, name=ref.familiar)
        return aux


def push_image(store: Any, images: Any, name: str, tag: str, *, auth: Any, emit: Emit,
               client: RegistryClient | None = None) -> list[dict[str, Any]]:
    """Docker's ``POST /images/{name}/push?tag=``: one tag, or every tag of the
    repository when ``tag`` is empty."""
    ref = R.parse(name, default_tag=False)
    if ref.digest is not None:
        raise InvalidArgument("cannot push a digest reference")
    if tag:
        ref = ref.with_tag(tag)
    targets: list[R.Reference] = []
    if ref.tag:
        targets.append(ref)
    else:
        for r in store.db.query("SELECT name FROM tags WHERE name LIKE ? ORDER BY name", (ref.repository + ":%",)):
            t = R.parse(r["name"])
            if t.repository == ref.repository:
                targets.append(t)
        if not targets:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
    ids = []
    for t in targets:
        try:
            ids.append(images.resolve(str(t)))
        except NotFound:
            raise NotFound(f"An image does not exist locally with the tag: {t.familiar}") from None
    own = client is None
    client = client or RegistryClient(ref.domain, auth)
    try:
        status(emit, f"The push refers to repository [{ref.repository}]")
        return [Pusher(store, client, emit).push(t, iid) for t, iid in zip(targets, ids)]
    finally:
        if own:
            client.close()
