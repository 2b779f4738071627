"""``hoist system check [--repair]``: verify the store against itself.

Every blob is re-hashed, every image's documents and layers are followed, every layer
row is matched to its unpacked directory and back. ``repair`` removes what cannot be
trusted (corrupt blobs, orphans, crash leftovers) and re-unpacks layers whose blob is
still good; it never invents data.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import HoistError
from ..image import types as T
from .store import ImageStore, LayerInput


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"Problems": self.problems, "Repaired": self.repaired, "Checked": self.checked,
                "OK": not self.problems or len(self.repaired) >= len(self.problems)}


def check_store(store: ImageStore, repair: bool = False) -> CheckReport:
    rep = CheckReport()
    with store.gc_lock.exclusive():
        _check_leftovers(store, rep, repair)
        bad_blobs = _check_blobs(store, rep, repair)
        _check_images(store, rep, repair, bad_blobs)
        _check_layers(store, rep, repair)
    return rep


def _check_leftovers(store: ImageStore, rep: CheckReport, repair: bool) -> None:
    ingests = os.listdir(store.content.ingest_dir)
    if ingests:
        rep.problems.append(f"{len(ingests)} unfinished ingest(s) left by an interrupted write")
        if repair:
            store.content.clean_ingests()
            rep.repaired.append("removed unfinished ingests")
    for path in store.content.stray_files():
        rep.problems.append(f"stray file in the blob store: {path}")
        if repair:
            os.unlink(path)
            rep.repaired.append(f"removed {path}")
    temps = [n for n in os.listdir(store.snapshots.root) if n.startswith((".new-", ".rm-"))]
    if temps:
        rep.problems.append(f"{len(temps)} unfinished snapshot directories")
        if repair:
            store.snapshots.clean_temp()
            rep.repaired.append("removed unfinished snapshot directories")


def _check_blobs(store: ImageStore, rep: CheckReport, repair: bool) -> set[str]:
    bad: set[str] = set()
    n = 0
    for info in store.content.walk():
        n += 1
        if not store.content.verify(info.digest):
            bad.add(str(info.digest))
            rep.problems.append(f"blob {info.digest} is corrupt (content does not match digest)")
            if repair:
                store.content.delete(info.digest)
                rep.repaired.append(f"removed corrupt blob {info.digest}")
    rep.checked["blobs"] = n
    return bad


def _check_images(store: ImageStore, rep: CheckReport, repair: bool, bad: set[str]) -> None:
    images = store.images()
    rep.checked["images"] = len(images)
    for rec in images:
        where = f"image {rec.id}"
        try:
            if rec.id in bad or not store.content.exists(rec.id):
                raise HoistError("config blob missing or corrupt")
            cfg = store.config(rec.id)
            if str(rec.target.digest) in bad or not store.content.exists(rec.target.digest):
                raise HoistError("manifest blob missing or corrupt")
            manifest = store.manifest(rec)
            if str(manifest.config.digest) != rec.id:
                raise HoistError("manifest points at another config")
            for layer in manifest.layers:
                if str(layer.digest) in bad or not store.content.exists(layer.digest):
                    rep.problems.append(f"{where}: layer blob {layer.digest} missing or corrupt")
            for cid in T.chain_ids(cfg.diff_ids):
                row = store.db.one("SELECT key FROM layers WHERE chain_id=?", (str(cid),))
                if row is None or not store.snapshots.exists(row["key"]):
                    rep.problems.append(f"{where}: layer {cid} is not unpacked")
                    if repair:
                        _reunpack(store, manifest, cfg, rep)
                        break
        except HoistError as e:
            rep.problems.append(f"{where}: {e}")
            if repair:
                store.delete_image(rec.id)
                rep.repaired.append(f"removed unusable {where}")


def _reunpack(store: ImageStore, manifest: T.Manifest, cfg: T.ImageConfig, rep: CheckReport) -> None:
    try:
        store.unpack([LayerInput(b, d) for b, d in zip(manifest.layers, cfg.diff_ids)])
        rep.repaired.append(f"re-unpacked layers of {cfg.digest}")
    except HoistError as e:
        rep.problems.append(f"could not re-unpack layers of {cfg.digest}: {e}")


def _check_layers(store: ImageStore, rep: CheckReport, repair: bool) -> None:
    rows = store.db.query("SELECT chain_id, key, parent FROM layers")
    rep.checked["layers"] = len(rows)
    keys = {r["key"] for r in rows}
    chains = {r["chain_id"] for r in rows}
    for r in rows:
        if not store.snapshots.exists(r["key"]):
            rep.problems.append(f"layer {r['chain_id']}: unpacked directory missing")
            if repair:
                with store.db.transaction() as c:
                    c.execute("DELETE FROM layers WHERE chain_id=?", (r["chain_id"],))
                rep.repaired.append(f"forgot layer {r['chain_id']} (its images re-unpack on next check)")
        if r["parent"] and r["parent"] not in chains:
            rep.problems.append(f"layer {r['chain_id']}: parent {r['parent']} unknown")
    for key in store.snapshots.keys():
        if key not in keys:
            rep.problems.append(f"snapshot directory {key} belongs to no layer")
            if repair:
                store.snapshots.remove(key)
                rep.repaired.append(f"removed orphan snapshot {key}")
