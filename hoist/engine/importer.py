"""``docker import``: a filesystem tarball (any compression) becomes a one-layer image."""
from __future__ import annotations

import datetime as _dt
import json
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from ..archive import open_decompressed
from ..errors import InvalidArgument
from ..image import reference as R
from ..image import types as T
from ..image.changes import apply_changes
from .archives import _host_platform, make_manifest
from .store import ImageStore


@contextmanager
def open_url(src: str) -> Iterator[tuple[str, BinaryIO]]:
    """``docker import URL``: the daemon downloads the tarball (http or https; a bare
    host/path means http, as Docker does). The import's size limit bounds the download."""
    import urllib.error
    import urllib.request

    url = src if "://" in src else "http://" + src
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"unsupported import source {src!r}: use http(s):// or -")
    try:
        resp = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as e:
        raise InvalidArgument(f"error downloading {url}: {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise InvalidArgument(f"error downloading {url}: {getattr(e, 'reason', e)}") from None
    try:
        yield url, resp
    finally:
        resp.close()


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def import_image(store: ImageStore, stream: BinaryIO, *, repo: str = "", tag: str = "",
                 changes: list[str] = (), message: str = "", platform: str = "",
                 source: str = "-") -> str:
    ref = R.parse_repository_and_tag(repo, tag) if repo else None
    container_config = apply_changes({}, list(changes))
    plat = _host_platform()
    if platform:
        parts = platform.split("/")
        if len(parts) < 2 or parts[0] != "linux":
            raise InvalidArgument(f"invalid platform {platform!r}: only linux/<arch> is supported")
        plat = T.Platform(parts[1], parts[0], parts[2] if len(parts) > 2 else "")
    with store.gc_lock.shared(), store.db.lease() as lease:
        raw = open_decompressed(stream, store.max_layer_size)
        # Store the layer uncompressed: its digest is then also its diff ID, and saving
        # it later is a plain file copy.
        with store.content.writer(limit=store.max_layer_size) as w:
            w.copy_from(raw)
            layer = w.commit()
        lease.add("blob", str(layer.digest))
        created = now_rfc3339()
        doc = {"architecture": plat.architecture, "os": plat.os}
        if plat.variant:
            doc["variant"] = plat.variant
        doc.update({
            "config": container_config, "created": created,
            "history": [{"created": created, "comment": message or f"Imported from {source}"}],
            "rootfs": {"type": "layers", "diff_ids": [str(layer.digest)]},
        })
        if message:
            doc["comment"] = message
        cfg_raw = json.dumps(doc).encode()
        cfg_info = store.content.put(cfg_raw)
        lease.add("blob", str(cfg_info.digest))
        config = T.ImageConfig.parse(cfg_raw)
        manifest = make_manifest(T.DOCKER_MANIFEST, T.Descriptor(T.DOCKER_CONFIG, cfg_info.digest, cfg_info.size),
                                 [T.Descriptor(T.DOCKER_LAYER, layer.digest, layer.size)])
        image_id = store.register(manifest, config, tags=[str(ref)] if ref else [])
    store.events.publish("image", "import", image_id, name=image_id)
    if ref:
        store.events.publish("image", "tag", image_id, name=ref.familiar)
    return image_id
