"""Registry storage: one global content store (dedup) plus per-repository link trees.

Layout under the registry root::

    content/blobs/<alg>/<hex>          every blob and manifest, once (ContentStore)
    content/ingest/                    in-progress uploads (ContentStore writers)
    repositories/<name>/_layers/<alg>/<hex>     empty file: blob linked to the repo
    repositories/<name>/_manifests/<alg>/<hex>  manifest in the repo; holds its media type
    repositories/<name>/_tags/<tag>             holds the tagged manifest's digest
    repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>  referrer descriptor (JSON)

A repository can only read blobs linked to it, so knowing a digest is not enough to read
content pushed to another repository. Repository path components cannot begin with
``_`` (the spec's name grammar), so the link directories never collide with names.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Iterator

from ..content.store import ContentStore
from ..digest import Digest

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
MAX_NAME = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and NAME_RE.match(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.match(tag) is not None


def parse_digest(text: str) -> Digest | None:
    """A digest we can store, or None (the grammar allows more algorithms than we hash)."""
    if not DIGEST_RE.match(text):
        return None
    try:
        return Digest.parse(text)
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class ManifestRef:
    digest: Digest
    media_type: str
    size: int


def _atomic_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab"):
        pass


class RegistryStorage:
    def __init__(self, root: str) -> None:
        self.root = root
        self.content = ContentStore(os.path.join(root, "content"))
        self.repos = os.path.join(root, "repositories")
        os.makedirs(self.repos, exist_ok=True)

    # ------------------------------------------------------------------ paths

    def _repo(self, name: str) -> str:
        return os.path.join(self.repos, *name.split("/"))

    def _layer_link(self, name: str, d: Digest) -> str:
        return os.path.join(self._repo(name), "_layers", d.algorithm, d.hex)

    def _manifest_link(self, name: str, d: Digest) -> str:
        return os.path.join(self._repo(name), "_manifests", d.algorithm, d.hex)

    def _tag_path(self, name: str, tag: str) -> str:
        return os.path.join(self._repo(name), "_tags", tag)

    def repo_exists(self, name: str) -> bool:
        base = self._repo(name)
        return any(os.path.isdir(os.path.join(base, sub)) for sub in ("_layers", "_manifests", "_tags"))

    # ------------------------------------------------------------------ blobs

    def blob_size(self, name: str, d: Digest) -> int | None:
        """Size of a blob readable in ``name`` (linked as a layer or a manifest), else None."""
        if not (os.path.exists(self._layer_link(name, d)) or os.path.exists(self._manifest_link(name, d))):
            return None
        try:
            return os.stat(self.content.path(d)).st_size
        except FileNotFoundError:
            return None

    def blob_path(self, d: Digest) -> str:
        return self.content.path(d)

    def link_blob(self, name: str, d: Digest) -> None:
        _touch(self._layer_link(name, d))
        self.touch(d)

    def touch(self, d: Digest) -> None:
        """Refresh a blob's mtime: garbage collection keeps blobs younger than its start
        (minus a grace period), so a blob re-linked or referenced during a push survives."""
        try:
            os.utime(self.content.path(d))
        except FileNotFoundError:
            pass

    def unlink_blob(self, name: str, d: Digest) -> bool:
        try:
            os.unlink(self._layer_link(name, d))
            return True
        except FileNotFoundError:
            return False

    def layer_links(self, name: str) -> Iterator[Digest]:
        yield from self._links(os.path.join(self._repo(name), "_layers"))

    # ------------------------------------------------------------------ manifests

    def put_manifest(self, name: str, data: bytes, media_type: str, d: Digest,
                     subject: Digest | None, referrer: dict | None) -> None:
        self.content.put(data, d)
        try:
            os.utime(self.content.path(d))
        except FileNotFoundError:
            pass
        _atomic_write(self._manifest_link(name, d), media_type.encode())
        if subject is not None and referrer is not None:
            _atomic_write(os.path.join(self._repo(name), "_referrers", f"{subject.algorithm}-{subject.hex}",
                                       f"{d.algorithm}-{d.hex}"), json.dumps(referrer).encode())

    def manifest(self, name: str, d: Digest) -> ManifestRef | None:
        try:
            with open(self._manifest_link(name, d), "rb") as f:
                media_type = f.read().decode()
            size = os.stat(self.content.path(d)).st_size
        except FileNotFoundError:
            return None
        return ManifestRef(d, media_type, size)

    def has_manifest(self, name: str, d: Digest) -> bool:
        return os.path.exists(self._manifest_link(name, d))

    def read_manifest(self, d: Digest) -> bytes:
        with open(self.content.path(d), "rb") as f:
            return f.read()

    def manifests(self, name: str) -> Iterator[Digest]:
        yield from self._links(os.path.join(self._repo(name), "_manifests"))

    def delete_manifest(self, name: str, d: Digest, subject: Digest | None) -> bool:
        try:
            os.unlink(self._manifest_link(name, d))
        except FileNotFoundError:
            return False
        for tag in self.tags(name):
            if self.resolve_tag(name, tag) == d:
                self.delete_tag(name, tag)
        if subject is not None:
            try:
                os.unlink(os.path.join(self._repo(name), "_referrers", f"{subject.algorithm}-{subject.hex}",
                                       f"{d.algorithm}-{d.hex}"))
            except FileNotFoundError:
                pass
        return True

    def referrers(self, name: str, subject: Digest) -> list[dict]:
        base = os.path.join(self._repo(name), "_referrers", f"{subject.algorithm}-{subject.hex}")
        out = []
        try:
            entries = sorted(os.listdir(base))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.startswith("."):
                continue
            try:
                with open(os.path.join(base, entry), "rb") as f:
                    out.append(json.loads(f.read()))
            except (FileNotFoundError, ValueError):
                continue
        return out

    # ------------------------------------------------------------------ tags

    def tag(self, name: str, tag: str, d: Digest) -> None:
        _atomic_write(self._tag_path(name, tag), str(d).encode())

    def resolve_tag(self, name: str, tag: str) -> Digest | None:
        try:
            with open(self._tag_path(name, tag), "rb") as f:
                return Digest.parse(f.read().decode())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            os.unlink(self._tag_path(name, tag))
            return True
        except FileNotFoundError:
            return False

    def tags(self, name: str) -> list[str]:
        try:
            return sorted(t for t in os.listdir(os.path.join(self._repo(name), "_tags")) if not t.startswith("."))
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------------ catalog

    def repositories(self) -> list[str]:
        out = []
        for dirpath, dirnames, _files in os.walk(self.repos):
            if any(d in ("_layers", "_manifests", "_tags") for d in dirnames):
                out.append(os.path.relpath(dirpath, self.repos).replace(os.sep, "/"))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    @staticmethod
    def _links(base: str) -> Iterator[Digest]:
        try:
            algs = os.listdir(base)
        except FileNotFoundError:
            return
        for alg in algs:
            try:
                names = os.listdir(os.path.join(base, alg))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for hexd in names:
                try:
                    yield Digest.parse(f"{alg}:{hexd}")
                except Exception:
                    continue
