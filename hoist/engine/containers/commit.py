"""``docker commit``: a container's changes become one new layer on top of its image.

The layer is the container's overlay upper dir as an OCI layer tar (whiteouts and opaque
dirs converted), stored uncompressed so its digest is its diff ID, and the image enters
the store through :meth:`ImageStore.register` like every other image. The config follows
dockerd: the request's config (or the container's) with the ``changes`` applied, merged
over the container's config, plus a history entry; an unchanged container adds no layer,
only an ``empty_layer`` history entry.
"""
from __future__ import annotations

import copy
import errno
import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ... import DOCKER_COMPAT_VERSION
from ...archive.create import write_tar_from_dir
from ...archive.extract import OVERLAY_OPAQUE_XATTR
from ...digest import Digest
from ...errors import Conflict, InvalidArgument
from ...image import reference as R
from ...image import types as T
from ...image.changes import apply_changes
from ..archives import make_manifest
from ..importer import now_rfc3339

if TYPE_CHECKING:
    from .service import ContainerService

# The diff ID of a layer tar without entries (two zero blocks): what dockerd calls an
# empty layer, recorded only in history.
EMPTY_LAYER = Digest.of_bytes(b"\0" * 1024)

# Mountpoints a runtime creates in the rootfs for what the engine bind-mounts or mounts
# there. dockerd keeps them in the container's "-init" layer, below the read-write layer,
# so they never reach a commit; here they land in the upper dir and are left out.
MOUNTPOINT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv")
MOUNTPOINT_DIRS = ("dev", "proc", "sys")

# The container config fields dockerd always writes (the rest are omitempty).
_CONFIG_BASE: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


@dataclass(frozen=True)
class CommitOptions:
    repo: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    pause: bool = True
    changes: tuple[str, ...] = ()
    config: Mapping[str, Any] | None = None   # the request body: overrides the container's


# ------------------------------------------------------------------ pure parts

def _shape(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(_CONFIG_BASE)
    out.update(cfg)
    return out


def merge_config(user: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """dockerd's commit merge: fields the user config leaves empty come from the
    container's config; Env, ExposedPorts, Labels and Volumes are unions (user wins)."""
    out = copy.deepcopy(dict(user))
    if not out.get("User"):
        out["User"] = container.get("User") or ""
    ports = dict(out.get("ExposedPorts") or {})
    for p, v in (container.get("ExposedPorts") or {}).items():
        ports.setdefault(p, v)
    if ports:
        out["ExposedPorts"] = ports
    env = list(out.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in (container.get("Env") or []) if e.split("=", 1)[0] not in keys]
    out["Env"] = env or None
    labels = dict(container.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = container.get("Cmd")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = container.get("Entrypoint")
    if container.get("Healthcheck") and not out.get("Healthcheck"):
        out["Healthcheck"] = container["Healthcheck"]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = container.get("WorkingDir") or ""
    vols = dict(out.get("Volumes") or {})
    vols.update(container.get("Volumes") or {})
    out["Volumes"] = vols or None
    if not out.get("StopSignal") and container.get("StopSignal"):
        out["StopSignal"] = container["StopSignal"]
    return _shape(out)


def commit_config(container: Mapping[str, Any], override: Mapping[str, Any] | None,
                  changes: Iterable[str]) -> dict[str, Any]:
    """The new image's config: ``override`` (a request body with at least one field) or
    else the container's config, the Dockerfile ``changes`` applied, merged over the
    container's config."""
    base = dict(override) if override else dict(container)
    return merge_config(apply_changes(base, change_lines(changes)), container)


def change_lines(changes: Iterable[str]) -> list[str]:
    """dockerd reads the changes as one Dockerfile: a value may hold several lines, and
    blank and comment lines mean nothing."""
    return [line for c in changes for line in c.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def child_config_doc(parent: Mapping[str, Any], *, config: Mapping[str, Any],
                     container_config: Mapping[str, Any], container_id: str, diff_id: Digest,
                     author: str, comment: str, created: str) -> dict[str, Any]:
    """The image config document of the committed image (dockerd's NewChildImage)."""
    empty = diff_id == EMPTY_LAYER
    diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
    if not empty:
        diff_ids.append(str(diff_id))
    entry: dict[str, Any] = {"created": created}
    if author:
        entry["author"] = author
    created_by = " ".join(container_config.get("Cmd") or [])
    if created_by:
        entry["created_by"] = created_by
    if comment:
        entry["comment"] = comment
    if empty:
        entry["empty_layer"] = True
    doc: dict[str, Any] = {"architecture": parent.get("architecture") or "amd64"}
    if author:
        doc["author"] = author
    doc.update({"config": dict(config), "container": container_id,
                "container_config": _shape(container_config), "created": created,
                "docker_version": DOCKER_COMPAT_VERSION, "history": [*(parent.get("history") or []), entry],
                "os": parent.get("os") or "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    for k in ("variant", "os.version", "os.features"):
        if parent.get(k):
            doc[k] = parent[k]
    return doc


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lower_is_dir(lowers: list[str], rel: str) -> bool:
    for lower in lowers:
        try:
            return stat.S_ISDIR(os.lstat(os.path.join(lower, rel)).st_mode)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
    return False


def layer_excludes(upper: str, lowers: list[str]) -> set[str]:
    """Relative paths of ``upper`` that are runtime mountpoints, not container changes:
    the engine's files under /etc, empty /dev, /proc and /sys dirs, and the directories
    overlayfs copied up only to hold those (not opaque, a directory below too, nothing
    else in them). ``lowers``: the image's layer dirs, topmost first."""
    out: set[str] = set()
    for rel in MOUNTPOINT_FILES:
        p = os.path.join(upper, rel)
        if os.path.lexists(p) and not os.path.isdir(p):
            out.add(rel)
    for rel in MOUNTPOINT_DIRS:
        p = os.path.join(upper, rel)
        if os.path.isdir(p) and not os.path.islink(p) and not os.listdir(p):
            out.add(rel)
    # Parents that only exist in the upper dir because of an excluded child.
    for rel in sorted({os.path.dirname(r) for r in out if "/" in r}, key=len, reverse=True):
        p = os.path.join(upper, rel)
        if not os.path.isdir(p) or os.path.islink(p) or _is_opaque(p):
            continue
        if all(f"{rel}/{n}" in out for n in os.listdir(p)) and _lower_is_dir(lowers, rel):
            out.add(rel)
    return out


# ------------------------------------------------------------------ the service side

class _Writer:
    """File-like adapter: the content store writer hashes as it writes."""

    def __init__(self, w: Any) -> None:
        self._w = w

    def write(self, data: bytes) -> int:
        self._w.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def commit(svc: "ContainerService", ref: str, opts: CommitOptions) -> str:
    """Create the image; returns its ID. Pauses a running container for the duration
    unless ``opts.pause`` is false (and unpauses it after, even on failure)."""
    if not ref:
        raise InvalidArgument('invalid name or ID supplied: ""')
    cid = svc.resolve(ref)
    tag = R.parse_repository_and_tag(opts.repo, opts.tag or None) if opts.repo else None
    doc = svc.get(cid)
    if doc["State"].get("Dead"):
        raise Conflict(f"You cannot commit container {cid} which is Dead")
    override = opts.config if opts.config else None
    if override is not None and not isinstance(override, Mapping):
        raise InvalidArgument("invalid container config")
    config = commit_config(doc["Config"], override, opts.changes)
    paused = False
    if opts.pause and doc["State"]["Running"] and not doc["State"]["Paused"]:
        try:
            svc.pause(cid, True)
            paused = True
        except Conflict:
            pass  # it stopped meanwhile: nothing left to freeze
    try:
        image_id = _write_image(svc, doc, config, opts, [str(tag)] if tag else [])
    finally:
        if paused:
            try:
                svc.pause(cid, False)
            except Conflict:
                pass
    attrs = dict(doc["Config"].get("Labels") or {})
    attrs.update(comment=opts.comment, image=doc["Config"].get("Image") or "", imageID=image_id,
                 imageRef=tag.familiar if tag else "", name=doc["Name"].lstrip("/"))
    svc.store.events.publish("container", "commit", cid, **attrs)
    if tag:
        svc.store.events.publish("image", "tag", image_id, name=tag.familiar)
    return image_id


def _write_image(svc: "ContainerService", doc: dict[str, Any], config: dict[str, Any],
                 opts: CommitOptions, tags: list[str]) -> str:
    store = svc.store
    parent_id = doc["Image"]
    parent_rec = store.image(parent_id)
    parent_cfg = store.config(parent_id)
    parent_manifest = store.manifest(parent_rec)
    upper = doc["GraphDriver"]["Data"]["UpperDir"]
    lowers = [store.snapshots.path(k) for k in reversed(store.layer_keys(parent_cfg))]
    with store.gc_lock.shared(), store.db.lease() as lease:
        with store.content.writer(limit=store.max_layer_size) as w:
            write_tar_from_dir(upper, _Writer(w),  # type: ignore[arg-type]
                               exclude=layer_excludes(upper, lowers))
            layer = w.commit()
        lease.add("blob", str(layer.digest))
        created = now_rfc3339()
        cfg_doc = child_config_doc(parent_cfg.doc, config=config, container_config=doc["Config"],
                                   container_id=doc["Id"], diff_id=layer.digest,
                                   author=opts.author, comment=opts.comment, created=created)
        cfg_raw = json.dumps(cfg_doc).encode()
        cfg_info = store.content.put(cfg_raw)
        lease.add("blob", str(cfg_info.digest))
        oci = parent_manifest.media_type == T.OCI_MANIFEST
        layers = list(parent_manifest.layers)
        if layer.digest != EMPTY_LAYER:
            layers.append(T.Descriptor(T.OCI_LAYER if oci else T.DOCKER_LAYER, layer.digest, layer.size))
        manifest = make_manifest(parent_manifest.media_type,
                                 T.Descriptor(T.OCI_CONFIG if oci else T.DOCKER_CONFIG,
                                              cfg_info.digest, cfg_info.size), layers)
        return store.register(manifest, T.ImageConfig.parse(cfg_raw), tags=tags, parent=parent_id)
