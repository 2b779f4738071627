"""Registry garbage collection and configuration."""
from __future__ import annotations

import json
import os
import time

import pytest

from hoist.digest import Digest
from hoist.errors import InvalidArgument
from hoist.registry import config as C
from hoist.registry.gc import collect
from registry_util import Running, sha

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _age(store, digest: str, seconds: float) -> None:
    p = store.content.path(digest)
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_gc_marks_through_indexes_and_subjects_and_sweeps_the_rest(tmp_path):
    r = Running(str(tmp_path))
    try:
        md, mdata = r.push_image("gc/app", "v1", [b"kept-layer"])
        idx = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": len(mdata)}]}
        idata = json.dumps(idx).encode()
        assert r.req("PUT", "/v2/gc/app/manifests/multi", idata, {"Content-Type": OCI_INDEX})[0] == 201
        orphan = r.push_blob("gc/app", b"orphan-layer")
        fresh = r.push_blob("gc/app", b"fresh-orphan")
        deleted_md, _ = r.push_image("gc/old", "gone", [b"old-layer"])
        assert r.req("DELETE", f"/v2/gc/old/manifests/{deleted_md}")[0] == 202
        st = r.registry.storage
        for info in list(st.content.walk()):
            if str(info.digest) != fresh:
                _age(st, str(info.digest), 7200)
        dry = collect(st, dry_run=True, grace=3600)
        assert set(dry.deleted) == {orphan, sha(b"old-layer"), deleted_md}
        assert st.content.exists(orphan)
        res = collect(st, grace=3600)
        assert set(res.deleted) == set(dry.deleted) and res.links_removed >= 2
        assert not st.content.exists(orphan) and st.content.exists(fresh)
        assert st.content.exists(sha(b"kept-layer")) and st.content.exists(md)
        assert r.req("GET", f"/v2/gc/app/blobs/{orphan}")[0] == 404
        assert r.req("GET", "/v2/gc/app/manifests/multi")[0] == 200
        assert r.req("GET", f"/v2/gc/app/blobs/{sha(b'kept-layer')}")[0] == 200
    finally:
        r.close()


def test_gc_removes_stale_uploads_only(tmp_path):
    r = Running(str(tmp_path))
    try:
        st, h, _ = r.req("POST", "/v2/up/blobs/uploads/")
        r.req("PATCH", h["location"], b"partial")
        ingest = r.registry.storage.content.ingest_dir
        (entry,) = os.listdir(ingest)
        assert collect(r.registry.storage, upload_ttl=3600).uploads_removed == 0
        old = time.time() - 7200
        for p in (os.path.join(ingest, entry), os.path.join(ingest, entry, "data")):
            os.utime(p, (old, old))
        assert collect(r.registry.storage, upload_ttl=3600).uploads_removed == 1
        assert os.listdir(ingest) == []
    finally:
        r.close()


def test_config_file_and_flags(tmp_path):
    j = tmp_path / "reg.json"
    j.write_text(json.dumps({"addr": "127.0.0.1:6000", "root": str(tmp_path), "read-only": True}))
    cfg = C.build(str(j), addr="127.0.0.1:7000")
    assert cfg.addr == "127.0.0.1:7000" and cfg.read_only and cfg.host_port == ("127.0.0.1", 7000)
    t = tmp_path / "reg.toml"
    t.write_text(f'root = "{tmp_path}"\nmax_blob_size = 1024\n')
    assert C.build(str(t)).max_blob_size == 1024
    with pytest.raises(InvalidArgument):
        C.build("", auth="magic")
    with pytest.raises(InvalidArgument):
        C.build("", auth="basic")
    with pytest.raises(InvalidArgument):
        C.build("", tls_cert="x")
    j.write_text(json.dumps({"bogus": 1}))
    with pytest.raises(InvalidArgument):
        C.build(str(j))
    j.write_text(json.dumps({"max_blob_size": "big"}))
    with pytest.raises(InvalidArgument):
        C.build(str(j))


def test_config_acl(tmp_path):
    j = tmp_path / "acl.json"
    j.write_text(json.dumps({"acl": {"bob": ["pull"]}}))
    assert C.build(str(j)).acl == {"bob": ["pull"]}
    j.write_text(json.dumps({"acl": {"bob": ["fly"]}}))
    with pytest.raises(InvalidArgument):
        C.build(str(j))


def test_gc_delete_untagged_keeps_index_children_and_referrers_of_live_manifests(tmp_path):
    r = Running(str(tmp_path))
    try:
        tagged, tdata = r.push_image("u/app", "v1", [b"tagged-layer"])
        child, cdata = r.push_image("u/app", "child-tmp", [b"child-layer"])
        idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child, "size": len(cdata)}]}).encode()
        assert r.req("PUT", "/v2/u/app/manifests/multi", idx, {"Content-Type": OCI_INDEX})[0] == 201
        assert r.req("DELETE", "/v2/u/app/manifests/child-tmp")[0] == 202  # child now only via the index
        untagged, _ = r.push_image("u/app", "gone", [b"untagged-layer"])
        assert r.req("DELETE", "/v2/u/app/manifests/gone")[0] == 202
        c = r.push_blob("u/app", b"{}")

        def referrer(subject: str, size: int, kind: str) -> str:
            doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
                              "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": c, "size": 2},
                              "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject,
                                                        "size": size}}).encode()
            assert r.req("PUT", f"/v2/u/app/manifests/{sha(doc)}", doc, {"Content-Type": OCI_MANIFEST})[0] == 201
            return sha(doc)

        sig_live = referrer(tagged, len(tdata), "application/vnd.example.sig")
        sig_dead = referrer(untagged, 10, "application/vnd.example.sig")
        st = r.registry.storage
        for info in list(st.content.walk()):
            _age(st, str(info.digest), 7200)
        for d in list(st.manifests("u/app")):
            p = st._manifest_link("u/app", Digest.parse(str(d)))
            t = time.time() - 7200
            os.utime(p, (t, t))
        res = collect(st, grace=3600, delete_untagged=True)
        assert set(res.untagged) == {f"u/app@{untagged}", f"u/app@{sig_dead}"}
        for keep in (tagged, child, sig_live):
            assert r.req("GET", f"/v2/u/app/manifests/{keep}")[0] == 200
        assert r.req("GET", f"/v2/u/app/manifests/{untagged}")[0] == 404
        assert not st.content.exists(sha(b"untagged-layer"))
        assert st.content.exists(sha(b"child-layer")) and st.content.exists(sha(b"tagged-layer"))
        refs = json.loads(r.req("GET", f"/v2/u/app/referrers/{untagged}")[2])["manifests"]
        assert refs == []
    finally:
        r.close()
