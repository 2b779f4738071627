"""OCI and Docker schema-2 image types: media types, descriptors, manifests, indexes.

Values are immutable. Parsing is strict: duplicate JSON keys, oversized documents,
wrong types and invalid digests are errors, because these documents arrive from
archives and registries we do not trust.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..digest import Digest
from ..errors import InvalidContent, SizeLimitExceeded

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 8 * 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_ND,
                         OCI_LAYER_ND_GZIP, DOCKER_LAYER, DOCKER_LAYER_GZIP,
                         DOCKER_LAYER_FOREIGN})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            # Two parsers that disagree on which duplicate wins is how signed content
            # gets swapped; refuse rather than pick one.
            raise InvalidContent(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def strict_json(data: bytes, what: str, limit: int = MAX_MANIFEST_SIZE) -> Any:
    if len(data) > limit:
        raise SizeLimitExceeded(f"{what} is larger than {limit} bytes")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates)
    except InvalidContent as e:
        raise InvalidContent(f"invalid {what}: {e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidContent(f"invalid {what}: {e}") from None


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def _req(obj: dict, key: str, typ: type, what: str) -> Any:
    v = obj.get(key)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is int:
        raise InvalidContent(f"invalid {what}: field {key!r} missing or not {typ.__name__}")
    return v


@dataclass(frozen=True, slots=True)
class Platform:
    architecture: str
    os: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @staticmethod
    def from_json(obj: Any, what: str = "descriptor") -> "Descriptor":
        if not isinstance(obj, dict):
            raise InvalidContent(f"invalid {what}: not an object")
        mt = _req(obj, "mediaType", str, what)
        try:
            digest = Digest.parse(_req(obj, "digest", str, what))
        except Exception:
            raise InvalidContent(f"invalid {what}: bad digest {obj.get('digest')!r}") from None
        size = _req(obj, "size", int, what)
        if size < 0:
            raise InvalidContent(f"invalid {what}: negative size")
        ann = obj.get("annotations") or {}
        if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
            raise InvalidContent(f"invalid {what}: annotations must map strings to strings")
        plat = None
        p = obj.get("platform")
        if isinstance(p, dict):
            plat = Platform(str(p.get("architecture", "")), str(p.get("os", "")),
                            str(p.get("variant", "") or ""))
        urls = obj.get("urls") or []
        return Descriptor(mt, digest, size, tuple(sorted(ann.items())), plat,
                          tuple(str(u) for u in urls))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                             "size": self.size}
        if self.platform:
            d["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                d["platform"]["variant"] = self.platform.variant
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.urls:
            d["urls"] = list(self.urls)
        return d


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, default=b"")

    @staticmethod
    def parse(data: bytes, media_type: str | None = None) -> "Manifest":
        obj = strict_json(data, "manifest")
        if not isinstance(obj, dict):
            raise InvalidContent("invalid manifest: not an object")
        mt = obj.get("mediaType") or media_type or OCI_MANIFEST
        if mt not in MANIFEST_TYPES:
            raise InvalidContent(f"unsupported manifest media type {mt!r}")
        if obj.get("schemaVersion") != 2:
            raise InvalidContent("invalid manifest: schemaVersion must be 2")
        config = Descriptor.from_json(obj.get("config"), "manifest config")
        layers_raw = obj.get("layers")
        if not isinstance(layers_raw, list):
            raise InvalidContent("invalid manifest: layers must be a list")
        layers = tuple(Descriptor.from_json(x, "manifest layer") for x in layers_raw)
        for lay in layers:
            if lay.media_type not in LAYER_TYPES:
                raise InvalidContent(f"unsupported layer media type {lay.media_type!r}")
        return Manifest(mt, config, layers, data)

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.raw)


@dataclass(frozen=True, slots=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, default=b"")

    @staticmethod
    def parse(data: bytes, media_type: str | None = None) -> "Index":
        obj = strict_json(data, "index")
        if not isinstance(obj, dict):
            raise InvalidContent("invalid index: not an object")
        mt = obj.get("mediaType") or media_type or OCI_INDEX
        if mt not in INDEX_TYPES:
            raise InvalidContent(f"unsupported index media type {mt!r}")
        ms = obj.get("manifests")
        if not isinstance(ms, list):
            raise InvalidContent("invalid index: manifests must be a list")
        return Index(mt, tuple(Descriptor.from_json(x, "index entry") for x in ms), data)


def media_type_of(data: bytes) -> str:
    """Best-effort media type of a manifest-ish document without a declared type."""
    obj = strict_json(data, "manifest")
    if isinstance(obj, dict):
        if obj.get("mediaType"):
            return str(obj["mediaType"])
        if "manifests" in obj:
            return OCI_INDEX
        if "layers" in obj:
            return OCI_MANIFEST
    raise InvalidContent("cannot tell what kind of document this is")


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The image configuration blob. ``raw`` is authoritative (its digest is the image
    ID); ``doc`` is its parsed form."""

    raw: bytes = field(repr=False)
    doc: dict[str, Any] = field(repr=False, hash=False, compare=False)

    @staticmethod
    def parse(data: bytes) -> "ImageConfig":
        obj = strict_json(data, "image config", MAX_CONFIG_SIZE)
        if not isinstance(obj, dict):
            raise InvalidContent("invalid image config: not an object")
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise InvalidContent("invalid image config: rootfs.diff_ids missing")
        for d in rootfs["diff_ids"]:
            try:
                Digest.parse(d)
            except Exception:
                raise InvalidContent(f"invalid image config: bad diff_id {d!r}") from None
        return ImageConfig(data, obj)

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.raw)

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        return tuple(Digest.parse(d) for d in self.doc["rootfs"]["diff_ids"])

    @property
    def config(self) -> dict[str, Any]:
        c = self.doc.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def platform(self) -> Platform:
        return Platform(str(self.doc.get("architecture", "")), str(self.doc.get("os", "")),
                        str(self.doc.get("variant", "") or ""))

    @property
    def created(self) -> str:
        return str(self.doc.get("created") or "")

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.doc.get("history")
        return [x for x in h if isinstance(x, dict)] if isinstance(h, list) else []


def chain_ids(diff_ids: tuple[Digest, ...] | list[Digest]) -> list[Digest]:
    """OCI ChainIDs: ChainID(L0)=DiffID(L0); ChainID(Ln)=sha256(ChainID(Ln-1)+" "+DiffID(Ln))."""
    out: list[Digest] = []
    for d in diff_ids:
        out.append(d if not out else Digest.of_bytes(f"{out[-1]} {d}".encode()))
    return out
