"""Upload sessions survive a registry restart: state lives on disk, bound to its repository."""
from __future__ import annotations

import os
import time

from hoist.registry.gc import collect
from registry_util import Running, error_code, sha


def test_session_resumes_after_restart(tmp_path):
    data = os.urandom(300_000)
    r = Running(str(tmp_path))
    try:
        st, h, _ = r.req("POST", "/v2/re/start/blobs/uploads/")
        assert st == 202
        loc, uid = h["location"], h["docker-upload-uuid"]
        st, h, _ = r.req("PATCH", loc, data[:100_000], {"Content-Range": "0-99999"})
        assert st == 202 and h["range"] == "0-99999"
    finally:
        r.close()
    # A new registry on the same root: nothing of the first survives but the files.
    r = Running(str(tmp_path))
    try:
        assert r.registry.uploads.active_ingests() == set()
        st, h, _ = r.req("GET", loc)
        assert st == 204 and h["range"] == "0-99999" and h["docker-upload-uuid"] == uid
        # the offset is enforced across the restart too
        st, h, _ = r.req("PATCH", loc, b"x", {"Content-Range": "5-5"})
        assert st == 416 and h["range"] == "0-99999"
        st, h, _ = r.req("PATCH", loc, data[100_000:200_000], {"Content-Range": "100000-199999"})
        assert st == 202 and h["range"] == "0-199999"
        st, h, body = r.req("PUT", f"{loc}?digest={sha(data)}", data[200_000:])
        assert st == 201, body
        assert h["docker-content-digest"] == sha(data)
        assert r.req("GET", f"/v2/re/start/blobs/{sha(data)}")[2] == data
        assert r.req("GET", loc)[0] == 404  # a finished id cannot be replayed
        assert os.listdir(r.registry.storage.content.ingest_dir) == []
    finally:
        r.close()


def test_restarted_sessions_reject_forged_and_foreign_ids(tmp_path):
    r = Running(str(tmp_path))
    try:
        _, h, _ = r.req("POST", "/v2/mine/blobs/uploads/")
        uid = h["docker-upload-uuid"]
        r.req("PATCH", h["location"], b"abc")
    finally:
        r.close()
    r = Running(str(tmp_path))
    try:
        forged = [("0" * 32), uid[:-1] + ("0" if uid[-1] != "0" else "1"), uid.upper(), "..", "%2E%2E",
                  uid + "0", "up-" + uid]
        for bad in forged:
            st, _, body = r.req("PATCH", f"/v2/mine/blobs/uploads/{bad}", b"x")
            assert st == 404 and error_code(body) == "BLOB_UPLOAD_UNKNOWN", bad
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            st, _, body = r.req(method, f"/v2/other/blobs/uploads/{uid}?digest={sha(b'abc')}", b"")
            assert st == 404 and error_code(body) == "BLOB_UPLOAD_UNKNOWN", method
        # the rightful repository still has it, untouched by the attempts
        st, h, _ = r.req("GET", f"/v2/mine/blobs/uploads/{uid}")
        assert st == 204 and h["range"] == "0-2"
        st, _, body = r.req("PUT", f"/v2/mine/blobs/uploads/{uid}?digest={sha(b'abc')}")
        assert st == 201, body
    finally:
        r.close()


def test_torn_session_is_unknown_and_swept(tmp_path):
    r = Running(str(tmp_path))
    try:
        _, h, _ = r.req("POST", "/v2/torn/blobs/uploads/")
        uid = h["docker-upload-uuid"]
    finally:
        r.close()
    ingest = os.path.join(str(tmp_path), "content", "ingest")
    with open(os.path.join(ingest, "up-" + uid, "session"), "w") as f:
        f.write("{not json")
    r = Running(str(tmp_path))
    try:
        assert r.req("GET", f"/v2/torn/blobs/uploads/{uid}")[0] == 404
    finally:
        r.close()
    old = time.time() - 7200
    for p in (os.path.join(ingest, "up-" + uid), os.path.join(ingest, "up-" + uid, "data")):
        os.utime(p, (old, old))
    from hoist.registry.storage import RegistryStorage

    assert collect(RegistryStorage(str(tmp_path)), upload_ttl=3600).uploads_removed == 1
    assert os.listdir(ingest) == []


def test_expire_drops_idle_sessions_in_memory_and_on_disk(tmp_path):
    r = Running(str(tmp_path))
    try:
        _, h, _ = r.req("POST", "/v2/exp/blobs/uploads/")
        left = h["docker-upload-uuid"]
    finally:
        r.close()
    r = Running(str(tmp_path))
    try:
        _, h, _ = r.req("POST", "/v2/exp/blobs/uploads/")
        mem = h["docker-upload-uuid"]
        _, h, _ = r.req("POST", "/v2/exp/blobs/uploads/")
        fresh = h["docker-upload-uuid"]
        ups = r.registry.uploads
        ingest = r.registry.storage.content.ingest_dir
        old = time.time() - 7200
        for uid in (left, mem):
            for p in (os.path.join(ingest, "up-" + uid), os.path.join(ingest, "up-" + uid, "data")):
                os.utime(p, (old, old))
        ups.get("exp", mem).updated = old
        assert ups.expire(3600) == 2
        assert sorted(os.listdir(ingest)) == ["up-" + fresh]
        assert r.req("GET", f"/v2/exp/blobs/uploads/{left}")[0] == 404
        assert r.req("GET", f"/v2/exp/blobs/uploads/{mem}")[0] == 404
        assert r.req("GET", f"/v2/exp/blobs/uploads/{fresh}")[0] == 204
    finally:
        r.close()
