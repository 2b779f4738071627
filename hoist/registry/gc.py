"""Mark-and-sweep garbage collection of registry storage.

Mark: every manifest linked in any repository is a root (it can be pulled by digest);
from each, follow config and layers, index children and the subject. With
``delete_untagged`` only tagged manifests are roots, per repository: what their indexes
list stays, and so do their referrers (manifests whose subject is live: signatures,
SBOMs); every other manifest is unlinked from the repository first. Sweep: delete
unmarked blobs from the global store, then layer links whose blob is gone, and upload
ingests idle for longer than ``upload_ttl``.

Safe while pushes continue: a blob committed or re-linked after ``start - grace`` has a
newer mtime (commit renames a fresh file; linking touches it) and is never swept, so a
push that uploads layers before its manifest is not robbed between the two.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass

from ..digest import Digest
from .storage import RegistryStorage, parse_digest


@dataclass(frozen=True)
class GCResult:
    marked: int
    deleted: tuple[str, ...]
    freed: int
    links_removed: int
    uploads_removed: int
    untagged: tuple[str, ...] = ()


def _refs(doc: object) -> list[Digest]:
    out: list[Digest] = []
    if not isinstance(doc, dict):
        return out
    descs: list[object] = []
    descs.append(doc.get("config"))
    for key in ("layers", "manifests"):
        v = doc.get(key)
        if isinstance(v, list):
            descs.extend(v)
    descs.append(doc.get("subject"))
    for desc in descs:
        if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
            d = parse_digest(desc["digest"])
            if d is not None:
                out.append(d)
    return out


def _load(storage: RegistryStorage, d: Digest) -> dict | None:
    path = storage.content.path(d)
    try:
        if os.stat(path).st_size > 4 << 20:
            return None  # a layer, not a manifest: nothing to follow
        with open(path, "rb") as f:
            head = f.read(1)
            if head != b"{":
                return None
            doc = json.loads(head + f.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _live_manifests(storage: RegistryStorage, repo: str, cutoff: float) -> tuple[set[Digest], list[Digest]]:
    """(manifests of ``repo`` reachable from its tags or younger than ``cutoff``, the rest)."""
    todo = [d for d in (storage.resolve_tag(repo, t) for t in storage.tags(repo)) if d is not None]
    linked = set(storage.manifests(repo))
    for d in linked:
        try:
            if os.stat(storage._manifest_link(repo, d)).st_mtime >= cutoff:
                todo.append(d)
        except FileNotFoundError:
            pass
    live: set[Digest] = set()
    while todo:
        d = todo.pop()
        if d in live:
            continue
        live.add(d)
        doc = _load(storage, d)
        if doc is not None and isinstance(doc.get("manifests"), list):
            todo.extend(x for x in _refs({"manifests": doc["manifests"]}))
        for ref in storage.referrers(repo, d):
            r = parse_digest(str(ref.get("digest")))
            if r is not None:
                todo.append(r)
    return live, sorted((d for d in linked if d not in live), key=str)


def collect(storage: RegistryStorage, *, dry_run: bool = False, grace: float = 3600.0,
            upload_ttl: float = 24 * 3600.0, now: float | None = None,
            delete_untagged: bool = False) -> GCResult:
    start = time.time() if now is None else now
    cutoff = start - grace
    marked: set[Digest] = set()
    todo: list[Digest] = []
    untagged: list[str] = []
    for repo in storage.repositories():
        if delete_untagged:
            live, dead = _live_manifests(storage, repo, cutoff)
            todo.extend(live)
            for d in dead:
                untagged.append(f"{repo}@{d}")
                if not dry_run:
                    doc = _load(storage, d) or {}
                    subject = doc.get("subject")
                    sd = parse_digest(str(subject.get("digest"))) if isinstance(subject, dict) else None
                    storage.delete_manifest(repo, d, sd)
        else:
            todo.extend(storage.manifests(repo))
        for tag in storage.tags(repo):
            d = storage.resolve_tag(repo, tag)
            if d is not None:
                todo.append(d)
    while todo:
        d = todo.pop()
        if d in marked:
            continue
        marked.add(d)
        doc = _load(storage, d)
        if doc is not None:
            todo.extend(_refs(doc))
    deleted: list[str] = []
    freed = 0
    for info in list(storage.content.walk()):
        if info.digest in marked:
            continue
        path = storage.content.path(info.digest)
        try:
            if os.stat(path).st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        deleted.append(str(info.digest))
        freed += info.size
        if not dry_run:
            storage.content.delete(info.digest)
    links = 0
    if not dry_run:
        gone = {parse_digest(x) for x in deleted}
        for repo in storage.repositories():
            for d in list(storage.layer_links(repo)):
                if d in gone and storage.unlink_blob(repo, d):
                    links += 1
    uploads = 0
    ingest = storage.content.ingest_dir
    for entry in os.listdir(ingest):
        p = os.path.join(ingest, entry)
        try:
            age = start - os.stat(p).st_mtime
            data = os.path.join(p, "data")
            if os.path.exists(data):
                age = min(age, start - os.stat(data).st_mtime)
        except FileNotFoundError:
            continue
        if age > upload_ttl:
            uploads += 1
            if not dry_run:
                shutil.rmtree(p, ignore_errors=True)
    return GCResult(len(marked), tuple(deleted), freed, links, uploads, tuple(untagged))
