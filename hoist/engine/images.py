"""Image service: Docker's image semantics (list, inspect, tag, rmi, history, prune, df)
on top of the :class:`ImageStore`."""
from __future__ import annotations

import datetime as _dt
import fnmatch
import re
import time
from typing import Any

from ..digest import is_digest
from ..errors import Conflict, InvalidArgument, NotFound
from ..image import reference as R
from ..image import types as T
from .store import ImageRecord, ImageStore

_HEX_PREFIX = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")


def rfc3339(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """Docker's created time (RFC 3339 with nanoseconds) to a unix timestamp."""
    if not text:
        return 0.0
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not m:
        return 0.0
    base = _dt.datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00"))
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


def familiar(name: str) -> str:
    return R.parse(name, default_tag=False).familiar


class ImageService:
    def __init__(self, store: ImageStore) -> None:
        self.store = store

    # ------------------------------------------------------------- resolution

    def resolve(self, ref: str) -> str:
        """Name, digest reference, full or short ID → image ID (Docker's lookup order)."""
        if not ref:
            raise NotFound("No such image: ")
        db = self.store.db
        if is_digest(ref):
            if db.one("SELECT 1 FROM images WHERE id=?", (ref,)):
                return ref
            raise NotFound(f"No such image: {ref}")
        try:
            parsed = R.parse(ref)
        except InvalidArgument:
            parsed = None
        if parsed is not None:
            if parsed.digest is not None:
                r = db.one("SELECT image_id FROM repo_digests WHERE repository=? AND digest=?",
                           (parsed.repository, str(parsed.digest)))
                if r:
                    return r["image_id"]
                # A manifest digest we hold under another name still identifies the image.
                r = db.one("SELECT id FROM images WHERE target_digest=?", (str(parsed.digest),))
                if r:
                    return r["id"]
            else:
                r = db.one("SELECT image_id FROM tags WHERE name=?", (str(parsed),))
                if r:
                    return r["image_id"]
        if _HEX_PREFIX.match(ref):
            hexpart = ref.split(":", 1)[-1]
            rows = db.query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hexpart}%",))
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                raise InvalidArgument(f"ambiguous image ID prefix {ref!r}")
        if parsed is None:
            R.parse(ref)  # re-raise the reference error for the caller
        raise NotFound(f"No such image: {parsed.familiar if parsed else ref}")

    # ------------------------------------------------------------- listing

    def _children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.store.db.query("SELECT id, parent FROM images WHERE parent != ''"):
            out.setdefault(r["parent"], []).append(r["id"])
        return out

    def summary(self, rec: ImageRecord, cfg: T.ImageConfig, tags: list[str], digests: list[str],
                api: float, containers: int = -1, shared: int = -1) -> dict[str, Any]:
        s: dict[str, Any] = {
            "Containers": containers,
            "Created": int(parse_time(cfg.created)),
            "Id": rec.id,
            "Labels": cfg.config.get("Labels") or None,
            "ParentId": rec.parent,
            "RepoDigests": [familiar_digest(d) for d in digests],
            "RepoTags": [familiar(t) for t in tags],
            "SharedSize": shared,
            "Size": rec.size,
        }
        if api < 1.44:
            s["VirtualSize"] = rec.size
        if api >= 1.47:
            s["Descriptor"] = rec.target.to_json()
        return s

    def list(self, *, all: bool = False, filters: dict[str, list[str]] | None = None,
             api: float = 1.47, with_containers: bool = False) -> list[dict[str, Any]]:
        filters = filters or {}
        _check_filters(filters, {"dangling", "label", "reference", "before", "since", "until"})
        tags = self.store.all_tags()
        digests = self.store.all_digests()
        children = self._children()
        before = self._time_bound(filters.get("before"))
        since = self._time_bound(filters.get("since"))
        dangling = _bool_filter(filters, "dangling")
        out = []
        for rec in self.store.images():
            t = tags.get(rec.id, [])
            if not all and not t and rec.id in children and dangling is None:
                continue  # intermediate build images only with -a, as Docker
            if dangling is not None and (not t) != dangling:
                continue
            try:
                cfg = self.store.config(rec.id)
            except (NotFound, InvalidArgument):
                continue
            created = parse_time(cfg.created)
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            if "until" in filters and created > _until(filters["until"][-1]):
                continue
            if "label" in filters and not _match_labels(cfg.config.get("Labels") or {}, filters["label"]):
                continue
            d = digests.get(rec.id, [])
            if "reference" in filters:
                t = [x for x in t if any(_ref_match(p, x) for p in filters["reference"])]
                if not t:
                    continue
                # Docker filters the digests by the same patterns (a pushed or pulled
                # image carries one per registry repository).
                d = [x for x in d if any(_ref_match(p, x.split("@", 1)[0]) for p in filters["reference"])]
            n = len(self.store.containers_using(rec.id)) if with_containers else -1
            out.append(self.summary(rec, cfg, t, d, api, containers=n))
        out.sort(key=lambda s: s["Created"], reverse=True)
        return out

    def _time_bound(self, values: list[str] | None) -> float | None:
        if not values:
            return None
        return parse_time(self.store.config(self.resolve(values[-1])).created)

    # ------------------------------------------------------------- inspect/history

    def inspect(self, ref: str, api: float = 1.47) -> dict[str, Any]:
        image_id = self.resolve(ref)
        rec = self.store.image(image_id)
        cfg = self.store.config(image_id)
        doc = cfg.doc
        plat = cfg.platform
        keys = self.store.layer_keys(cfg) if cfg.diff_ids else []
        graph: dict[str, Any] = {"Name": "overlay2" if self.store.snapshots.name == "overlayfs" else "vfs",
                                 "Data": None}
        if keys:
            paths = [self.store.snapshots.path(k) for k in keys]
            if self.store.snapshots.name == "overlayfs":
                graph["Data"] = {"MergedDir": "", "UpperDir": paths[-1],
                                 "LowerDir": ":".join(reversed(paths[:-1])) or None, "WorkDir": ""}
                if graph["Data"]["LowerDir"] is None:
                    del graph["Data"]["LowerDir"]
            else:
                graph["Data"] = {"Dir": paths[-1]}
        out: dict[str, Any] = {
            "Id": image_id,
            "RepoTags": [familiar(t) for t in self.store.tags_of(image_id)],
            "RepoDigests": [familiar_digest(d) for d in self.store.digests_of(image_id)],
            "Parent": rec.parent,
            "Comment": _comment(doc),
            "Created": cfg.created or None,
            "DockerVersion": doc.get("docker_version", ""),
            "Author": doc.get("author", ""),
            "Config": _container_config(cfg.config),
            "Architecture": plat.architecture,
            "Os": plat.os,
            "Size": rec.size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": [str(d) for d in cfg.diff_ids]},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }
        if plat.variant:
            out["Variant"] = plat.variant
        if doc.get("os.version"):
            out["OsVersion"] = doc["os.version"]
        if api < 1.45:
            out["Container"] = doc.get("container", "")
            out["ContainerConfig"] = _container_config(doc.get("container_config") or {})
        if api < 1.44:
            out["VirtualSize"] = rec.size
        if api >= 1.47:
            out["Descriptor"] = rec.target.to_json()
        return out

    def history(self, ref: str) -> list[dict[str, Any]]:
        image_id = self.resolve(ref)
        cfg = self.store.config(image_id)
        sizes = self.store.layer_sizes(cfg)
        hist = cfg.history or [{"created": cfg.created, "created_by": ""} for _ in sizes]
        rows = []
        li = 0
        for h in hist:
            empty = bool(h.get("empty_layer"))
            size = 0
            if not empty and li < len(sizes):
                size = sizes[li]
                li += 1
            rows.append({"Id": "<missing>", "Created": int(parse_time(str(h.get("created") or ""))),
                         "CreatedBy": str(h.get("created_by") or ""), "Tags": None, "Size": size,
                         "Comment": str(h.get("comment") or "")})
        rows.reverse()
        if rows:
            rows[0]["Id"] = image_id
            tags = [familiar(t) for t in self.store.tags_of(image_id)]
            rows[0]["Tags"] = tags or None
        return rows

    # ------------------------------------------------------------- tag / rmi

    def tag(self, source: str, repo: str, tag: str | None) -> str:
        image_id = self.resolve(source)
        ref = R.parse_repository_and_tag(repo, tag)
        self.store.set_tag(str(ref), image_id)
        self.store.events.publish("image", "tag", image_id, name=ref.familiar)
        return ref.familiar

    def remove(self, ref: str, *, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        image_id = self.resolve(ref)
        events = self.store.events
        out: list[dict[str, str]] = []
        tags = self.store.tags_of(image_id)
        by_id = _is_id_ref(ref, image_id, tags)
        digests = self.store.digests_of(image_id)
        if not by_id:
            parsed = R.parse(ref)
            name = str(parsed)
            if parsed.digest is not None:
                self.store.remove_repo_digest(parsed.repository, str(parsed.digest))
                removed = f"{parsed.repository}@{parsed.digest}"
                out.append({"Untagged": familiar_digest(removed)})
                digests = [d for d in digests if d != removed]
            else:
                self.store.remove_tag(name)
                out.append({"Untagged": parsed.familiar})
                tags = [t for t in tags if t != name]
                # Docker drops the repo digests of a repository when its last tag goes.
                repo = parsed.repository
                if not any(R.parse(t).repository == repo for t in tags):
                    for d in [d for d in digests if d.split("@")[0] == repo]:
                        self.store.remove_repo_digest(*d.split("@", 1))
                        out.append({"Untagged": familiar_digest(d)})
                        digests.remove(d)
            events.publish("image", "untag", image_id, name=out[0]["Untagged"])
            if tags or digests:
                return out
        else:
            if len(tags) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {_short(image_id)} (must be forced) - "
                               f"image is referenced in multiple repositories")
        users = self.store.containers_using(image_id)
        if users:
            if not force:
                raise Conflict(f"conflict: unable to delete {_short(image_id)} (must be forced) - "
                               f"image is being used by stopped container {users[0][:12]}")
            raise Conflict(f"conflict: unable to delete {_short(image_id)} (cannot be forced) - "
                           f"image is being used by running container {users[0][:12]}")
        if self._children().get(image_id) and by_id and not force:
            raise Conflict(f"conflict: unable to delete {_short(image_id)} (cannot be forced) - "
                           f"image has dependent child images")
        for t in tags:
            out.append({"Untagged": familiar(t)})
            events.publish("image", "untag", image_id, name=familiar(t))
        for d in digests:
            out.append({"Untagged": familiar_digest(d)})
        self.store.delete_image(image_id)
        out.append({"Deleted": image_id})
        events.publish("image", "delete", image_id, name=image_id)
        if prune:
            self.store.gc()
        return out

    # ------------------------------------------------------------- prune / df

    def prune(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        filters = dict(filters or {})
        _check_filters(filters, {"dangling", "until", "label", "label!"})
        dangling = _bool_filter(filters, "dangling")
        if dangling is False:
            all = True
        tags = self.store.all_tags()
        deleted: list[dict[str, str]] = []
        before_size = self.store.layers_total_size()
        for rec in self.store.images():
            if tags.get(rec.id) and not all:
                continue
            if self.store.containers_using(rec.id):
                continue
            try:
                cfg = self.store.config(rec.id)
            except (NotFound, InvalidArgument):
                cfg = None
            if cfg is not None:
                if "until" in filters and parse_time(cfg.created) >= _until(filters["until"][-1]):
                    continue
                labels = cfg.config.get("Labels") or {}
                if "label" in filters and not _match_labels(labels, filters["label"]):
                    continue
                if "label!" in filters and _match_labels(labels, filters["label!"], any_=True):
                    continue
            for t in tags.get(rec.id, []):
                deleted.append({"Untagged": familiar(t)})
            self.store.delete_image(rec.id)
            deleted.append({"Deleted": rec.id})
            self.store.events.publish("image", "delete", rec.id, name=rec.id)
        self.store.gc()
        reclaimed = max(0, before_size - self.store.layers_total_size())
        self.store.events.publish("image", "prune", "", reclaimed=str(reclaimed))
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def df(self, api: float = 1.47) -> dict[str, Any]:
        tags = self.store.all_tags()
        digests = self.store.all_digests()
        # shared size: layers used by more than one image count as shared for each.
        users: dict[str, int] = {}
        infos = []
        for rec in self.store.images():
            try:
                cfg = self.store.config(rec.id)
            except (NotFound, InvalidArgument):
                continue
            chain = [str(c) for c in T.chain_ids(cfg.diff_ids)]
            for c in chain:
                users[c] = users.get(c, 0) + 1
            infos.append((rec, cfg, chain))
        sizes = {r["chain_id"]: r["size"] for r in self.store.db.query("SELECT chain_id, size FROM layers")}
        images = []
        for rec, cfg, chain in infos:
            shared = sum(sizes.get(c, 0) for c in chain if users[c] > 1)
            n = len(self.store.containers_using(rec.id))
            images.append(self.summary(rec, cfg, tags.get(rec.id, []), digests.get(rec.id, []), api,
                                       containers=n, shared=shared))
        return {"LayersSize": self.store.layers_total_size(), "Images": images, "Containers": [],
                "Volumes": [], "BuildCache": []}


# ------------------------------------------------------------------ helpers

def familiar_digest(d: str) -> str:
    repo, dig = d.split("@", 1)
    return f"{R.parse(repo, default_tag=False).familiar_repository}@{dig}"


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _is_id_ref(ref: str, image_id: str, tags: list[str]) -> bool:
    """Docker deletes by ID when the argument is a prefix of the ID and not a tag."""
    if not _HEX_PREFIX.match(ref):
        return False
    if not image_id.split(":", 1)[1].startswith(ref.split(":", 1)[-1]):
        return False
    try:
        return str(R.parse(ref)) not in tags
    except InvalidArgument:
        return True


def _comment(doc: dict[str, Any]) -> str:
    """dockerd shows the config's comment, else the newest history entry's (what
    ``commit -m`` and ``import -m`` record)."""
    if doc.get("comment"):
        return str(doc["comment"])
    hist = doc.get("history")
    if isinstance(hist, list) and hist and isinstance(hist[-1], dict):
        return str(hist[-1].get("comment") or "")
    return ""


def _container_config(c: dict[str, Any]) -> dict[str, Any]:
    """Docker prints a full container config shape even where the image omits fields."""
    base: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": None, "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "",
        "Entrypoint": None, "OnBuild": None, "Labels": None,
    }
    base.update(c)
    return base


def _check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for k in filters:
        if k not in allowed:
            raise InvalidArgument(f"invalid filter '{k}'")


def _bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    if key not in filters:
        return None
    v = filters[key][-1].lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={filters[key][-1]}'")


def _match_labels(labels: dict[str, str], wanted: list[str], any_: bool = False) -> bool:
    results = []
    for w in wanted:
        if "=" in w:
            k, v = w.split("=", 1)
            results.append(labels.get(k) == v)
        else:
            results.append(w in labels)
    return any(results) if any_ else all(results)


def _until(value: str) -> float:
    """Docker's ``until``: a unix timestamp, an RFC 3339 date or a Go duration ago."""
    v = value.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", v)
    if m:
        mult = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        return time.time() - float(m.group(1)) * mult
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    t = parse_time(v if "T" in v else v + "T00:00:00Z")
    if not t:
        raise InvalidArgument(f"invalid filter 'until={value}'")
    return t


def _ref_match(pattern: str, name: str) -> bool:
    """``reference`` filter: shell-style pattern against the familiar name, as Docker."""
    fam = familiar(name)
    repo = fam.rsplit(":", 1)[0]
    return fnmatch.fnmatchcase(fam, pattern) or fnmatch.fnmatchcase(repo, pattern)
