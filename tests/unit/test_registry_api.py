"""Distribution-spec conformance of the registry server, endpoint by endpoint, over real TCP."""
from __future__ import annotations

import json
import os
import threading

import pytest

from hoist.digest import Digest

from registry_util import Running, error_code, sha

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    r = Running(str(tmp_path_factory.mktemp("reg")), max_blob_size=1 << 20)
    yield r
    r.close()


def test_base_and_health(reg):
    st, h, body = reg.req("GET", "/v2/")
    assert st == 200 and json.loads(body) == {}
    assert h["docker-distribution-api-version"] == "registry/2.0"
    assert reg.req("GET", "/healthz")[0] == 200


def test_monolithic_post_and_blob_get_head_range(reg):
    data = os.urandom(1000)
    d = reg.push_blob("mono/repo", data)
    st, h, body = reg.req("GET", f"/v2/mono/repo/blobs/{d}")
    assert st == 200 and body == data and h["docker-content-digest"] == d
    st, h, body = reg.req("HEAD", f"/v2/mono/repo/blobs/{d}")
    assert st == 200 and body == b"" and h["content-length"] == "1000"
    st, h, body = reg.req("GET", f"/v2/mono/repo/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert st == 206 and body == data[10:20] and h["content-range"] == "bytes 10-19/1000"
    st, h, body = reg.req("GET", f"/v2/mono/repo/blobs/{d}", headers={"Range": "bytes=-5"})
    assert st == 206 and body == data[-5:]
    st, h, _ = reg.req("GET", f"/v2/mono/repo/blobs/{d}", headers={"Range": "bytes=1000-"})
    assert st == 416 and h["content-range"] == "bytes */1000"


def test_blob_only_readable_in_linked_repo(reg):
    d = reg.push_blob("owner/repo", b"secret layer")
    st, _, body = reg.req("GET", f"/v2/other/repo/blobs/{d}")
    assert st == 404 and error_code(body) == "BLOB_UNKNOWN"


def test_post_then_put_and_keepalive(reg):
    data = b"x" * 5000
    c = reg.conn()
    c.request("POST", "/v2/pp/blobs/uploads/")
    r = c.getresponse()
    r.read()
    assert r.status == 202
    loc = r.getheader("Location")
    c.request("PUT", f"{loc}?digest={sha(data)}", body=data)
    r = c.getresponse()
    r.read()
    assert r.status == 201 and r.getheader("Docker-Content-Digest") == sha(data)
    c.request("HEAD", f"/v2/pp/blobs/{sha(data)}")  # same connection
    r = c.getresponse()
    r.read()
    assert r.status == 200
    c.close()


def test_chunked_upload_in_order_and_out_of_order(reg):
    data = os.urandom(3000)
    st, h, _ = reg.req("POST", "/v2/chunks/blobs/uploads/")
    loc = h["location"]
    st, h, _ = reg.req("PATCH", loc, data[:1000], {"Content-Range": "0-999",
                                                   "Content-Type": "application/octet-stream"})
    assert st == 202 and h["range"] == "0-999"
    st, h, body = reg.req("PATCH", loc, data[2000:], {"Content-Range": "2000-2999"})
    assert st == 416 and h["range"] == "0-999" and error_code(body) == "BLOB_UPLOAD_INVALID"
    st, h, _ = reg.req("PATCH", loc, data[1000:2000], {"Content-Range": "1000-1999"})
    assert st == 202 and h["range"] == "0-1999"
    st, h, _ = reg.req("GET", loc)
    assert st == 204 and h["range"] == "0-1999"
    st, h, _ = reg.req("PUT", f"{loc}?digest={sha(data)}", data[2000:], {"Content-Range": "2000-2999"})
    assert st == 201
    assert reg.req("GET", f"/v2/chunks/blobs/{sha(data)}")[2] == data
    # the session is gone after completion
    assert reg.req("GET", loc)[0] == 404


def test_streamed_patch_chunked_transfer_encoding(reg):
    data = os.urandom(70000)
    st, h, _ = reg.req("POST", "/v2/stream/blobs/uploads/")
    c = reg.conn()
    c.request("PATCH", h["location"], body=iter([data[:30000], data[30000:]]), encode_chunked=True)
    r = c.getresponse()
    r.read()
    assert r.status == 202 and r.getheader("Range") == "0-69999"
    c.close()
    assert reg.req("PUT", f"{h['location']}?digest={sha(data)}")[0] == 201


def test_digest_mismatch_commits_nothing(reg):
    wrong = sha(b"other")
    st, _, body = reg.req("POST", f"/v2/bad/blobs/uploads/?digest={wrong}", b"content")
    assert st == 400 and error_code(body) == "DIGEST_INVALID"
    assert not os.path.exists(reg.registry.storage.content.path(wrong))
    assert not os.path.exists(reg.registry.storage.content.path(sha(b"content")))


def test_cancel_and_forged_upload(reg):
    st, h, _ = reg.req("POST", "/v2/cancel/blobs/uploads/")
    assert reg.req("DELETE", h["location"])[0] == 204
    assert reg.req("GET", h["location"])[0] == 404
    st, _, body = reg.req("PATCH", "/v2/cancel/blobs/uploads/" + "0" * 32, b"x")
    assert st == 404 and error_code(body) == "BLOB_UPLOAD_UNKNOWN"
    # a live id is bound to its repository
    st, h, _ = reg.req("POST", "/v2/cancel/blobs/uploads/")
    uid = h["docker-upload-uuid"]
    assert len(uid) == 32
    assert reg.req("PATCH", f"/v2/elsewhere/blobs/uploads/{uid}", b"x")[0] == 404


def test_blob_size_limit(reg):
    big = b"z" * ((1 << 20) + 1)
    st, _, body = reg.req("POST", f"/v2/big/blobs/uploads/?digest={sha(big)}", big)
    assert st == 413 and error_code(body) == "SIZE_INVALID"


def test_mount(reg):
    d = reg.push_blob("mount/src", b"mountable")
    st, h, _ = reg.req("POST", f"/v2/mount/dst/blobs/uploads/?mount={d}&from=mount/src")
    assert st == 201 and h["location"] == f"/v2/mount/dst/blobs/{d}"
    assert reg.req("GET", f"/v2/mount/dst/blobs/{d}")[2] == b"mountable"
    st, h, _ = reg.req("POST", f"/v2/mount/dst2/blobs/uploads/?mount={sha(b'nope')}&from=mount/src")
    assert st == 202 and "/blobs/uploads/" in h["location"]


def test_manifest_put_get_head_delete(reg):
    digest, data = reg.push_image("img/app", "v1", [b"layer-one", b"layer-two"])
    assert digest == sha(data)
    for ref in ("v1", digest):
        st, h, body = reg.req("GET", f"/v2/img/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert st == 200 and body == data and h["content-type"] == OCI_MANIFEST
        assert h["docker-content-digest"] == digest
    st, h, body = reg.req("HEAD", "/v2/img/app/manifests/v1")
    assert st == 200 and h["content-length"] == str(len(data)) and body == b""
    # Accept that excludes the stored type
    st, _, body = reg.req("GET", "/v2/img/app/manifests/v1",
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert st == 404 and error_code(body) == "MANIFEST_UNKNOWN"
    # PUT by digest must match
    st, _, body = reg.req("PUT", f"/v2/img/app/manifests/{sha(b'x')}", data, {"Content-Type": OCI_MANIFEST})
    assert st == 400 and error_code(body) == "DIGEST_INVALID"
    assert reg.req("PUT", f"/v2/img/app/manifests/{digest}", data, {"Content-Type": OCI_MANIFEST})[0] == 201
    # delete a tag, then the manifest
    assert reg.req("DELETE", "/v2/img/app/manifests/v1")[0] == 202
    assert reg.req("GET", "/v2/img/app/manifests/v1")[0] == 404
    assert reg.req("GET", f"/v2/img/app/manifests/{digest}")[0] == 200
    assert reg.req("DELETE", f"/v2/img/app/manifests/{digest}")[0] == 202
    st, _, body = reg.req("GET", f"/v2/img/app/manifests/{digest}")
    assert st == 404 and error_code(body) == "MANIFEST_UNKNOWN"


def test_manifest_validation(reg):
    cfg = reg.push_blob("val/repo", b"{}")
    good = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
            "layers": []}

    def put(doc: object, ctype: str = OCI_MANIFEST, ref: str = "t") -> tuple[int, str]:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        st, _, b = reg.req("PUT", f"/v2/val/repo/manifests/{ref}", body, {"Content-Type": ctype})
        return st, (error_code(b) if st >= 400 else "")

    assert put(good) == (201, "")
    missing = dict(good, layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": sha(b"missing"), "size": 7}])
    assert put(missing) == (400, "MANIFEST_BLOB_UNKNOWN")
    assert put(b"not json") == (400, "MANIFEST_INVALID")
    assert put(dict(good, schemaVersion=1)) == (400, "MANIFEST_INVALID")
    assert put(good, "application/x-made-up") == (400, "MANIFEST_INVALID")
    bad_desc = dict(good, config={"mediaType": "x", "digest": "sha256:zz", "size": 2})
    assert put(bad_desc) == (400, "MANIFEST_INVALID")
    assert put(good, ref="-badtag")[1] == "MANIFEST_INVALID"
    assert put(good, ref="a" * 129)[1] == "MANIFEST_INVALID"
    huge = dict(good, annotations={"pad": "x" * (4 << 20)})
    assert put(huge)[0] == 413
    # an index must reference manifests known to the repo
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(b"nothing"), "size": 3}]}
    assert put(idx, OCI_INDEX) == (400, "MANIFEST_BLOB_UNKNOWN")
    gd = sha(json.dumps(good).encode())
    idx["manifests"] = [{"mediaType": OCI_MANIFEST, "digest": gd, "size": len(json.dumps(good))}]
    assert put(idx, OCI_INDEX, "multi") == (201, "")
    st, h, _ = reg.req("GET", "/v2/val/repo/manifests/multi")
    assert st == 200 and h["content-type"] == OCI_INDEX


def test_invalid_names_and_digests(reg):
    st, _, body = reg.req("GET", "/v2/UPPER/blobs/" + sha(b"a"))
    assert st == 400 and error_code(body) == "NAME_INVALID"
    st, _, body = reg.req("GET", "/v2/a/-b/manifests/latest")
    assert st == 400 and error_code(body) == "NAME_INVALID"
    st, _, body = reg.req("GET", "/v2/ok/blobs/sha256:short")
    assert st == 400 and error_code(body) == "DIGEST_INVALID"
    st, _, body = reg.req("GET", "/v2/ok/blobs/" + sha(b"never"))
    assert st == 404 and error_code(body) == "BLOB_UNKNOWN"
    st, _, body = reg.req("GET", "/v2/never/seen/manifests/latest")
    assert st == 404 and error_code(body) == "NAME_UNKNOWN"


def test_tags_list_pagination(reg):
    for t in ("c", "a", "b", "d"):
        reg.push_image("tags/repo", t, [b"same"])
    st, h, body = reg.req("GET", "/v2/tags/repo/tags/list")
    assert json.loads(body) == {"name": "tags/repo", "tags": ["a", "b", "c", "d"]}
    st, h, body = reg.req("GET", "/v2/tags/repo/tags/list?n=2")
    assert json.loads(body)["tags"] == ["a", "b"]
    assert h["link"] == '</v2/tags/repo/tags/list?n=2&last=b>; rel="next"'
    st, h, body = reg.req("GET", "/v2/tags/repo/tags/list?n=2&last=b")
    assert json.loads(body)["tags"] == ["c", "d"] and "link" not in h
    assert reg.req("GET", "/v2/tags/none/tags/list")[0] == 404


def test_catalog_pagination(reg):
    reg.push_blob("cat/one", b"1")
    reg.push_blob("cat/two", b"2")
    st, h, body = reg.req("GET", "/v2/_catalog")
    repos = json.loads(body)["repositories"]
    assert "cat/one" in repos and "cat/two" in repos and repos == sorted(repos)
    st, h, body = reg.req("GET", "/v2/_catalog?n=1")
    first = json.loads(body)["repositories"]
    assert len(first) == 1 and h["link"] == f'</v2/_catalog?n=1&last={first[0]}>; rel="next"'
    st, h, body = reg.req("GET", f"/v2/_catalog?n=1000&last={first[0]}")
    assert json.loads(body)["repositories"] == repos[1:]


def test_blob_delete(reg):
    d = reg.push_blob("del/blob", b"to delete")
    assert reg.req("DELETE", f"/v2/del/blob/blobs/{d}")[0] == 202
    assert reg.req("GET", f"/v2/del/blob/blobs/{d}")[0] == 404
    assert reg.req("DELETE", f"/v2/del/blob/blobs/{d}")[0] == 404


def test_referrers(reg):
    subject, sdata = reg.push_image("ref/repo", "base", [b"base-layer"])
    sdesc = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(sdata)}
    c = reg.push_blob("ref/repo", b"{}")
    sig = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": c, "size": 2},
           "layers": [], "subject": sdesc, "annotations": {"k": "v"}}
    data = json.dumps(sig).encode()
    st, h, _ = reg.req("PUT", f"/v2/ref/repo/manifests/{sha(data)}", data, {"Content-Type": OCI_MANIFEST})
    assert st == 201 and h["oci-subject"] == subject
    sbom = dict(sig, artifactType="application/vnd.example.sbom")
    sdata2 = json.dumps(sbom).encode()
    assert reg.req("PUT", f"/v2/ref/repo/manifests/{sha(sdata2)}", sdata2, {"Content-Type": OCI_MANIFEST})[0] == 201
    st, h, body = reg.req("GET", f"/v2/ref/repo/referrers/{subject}")
    idx = json.loads(body)
    assert st == 200 and h["content-type"] == OCI_INDEX and idx["mediaType"] == OCI_INDEX
    assert {m["artifactType"] for m in idx["manifests"]} == {"application/vnd.example.sig",
                                                           "application/vnd.example.sbom"}
    assert all(m["annotations"] == {"k": "v"} for m in idx["manifests"])
    st, h, body = reg.req("GET", f"/v2/ref/repo/referrers/{subject}?artifactType=application/vnd.example.sig")
    assert h["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [sha(data)]
    assert json.loads(reg.req("GET", f"/v2/ref/repo/referrers/{sha(b'q')}")[2])["manifests"] == []
    # deleting the referrer removes it from the list
    assert reg.req("DELETE", f"/v2/ref/repo/manifests/{sha(data)}")[0] == 202
    body = reg.req("GET", f"/v2/ref/repo/referrers/{subject}")[2]
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [sha(sdata2)]


def test_concurrent_pushes_of_the_same_blob(reg):
    data = os.urandom(256 * 1024)
    d = sha(data)
    results: list[int] = []

    def push(i: int) -> None:
        st, _, _ = reg.req("POST", f"/v2/conc/r{i}/blobs/uploads/?digest={d}", data)
        results.append(st)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 50
    store = reg.registry.storage.content
    assert store.verify(Digest.parse(d))
    # no ingest is left behind beyond the sessions other tests left open
    active = {os.path.basename(p) for p in reg.registry.uploads.active_ingests()}
    assert set(os.listdir(store.ingest_dir)) == active
    assert sum(1 for b in store.walk() if str(b.digest) == d) == 1
    assert reg.req("GET", f"/v2/conc/r49/blobs/{d}")[2] == data


def test_read_only(tmp_path):
    r = Running(str(tmp_path), read_only=True)
    try:
        st, _, body = r.req("POST", "/v2/ro/blobs/uploads/")
        assert st == 405 and error_code(body) == "UNSUPPORTED"
        assert r.req("GET", "/v2/")[0] == 200
        assert r.req("GET", "/v2/_catalog")[0] == 200
    finally:
        r.close()


def test_upload_path_without_trailing_slash_and_early_size_refusal(reg):
    st, h, _ = reg.req("POST", "/v2/noslash/blobs/uploads")
    assert st == 202 and h["location"].startswith("/v2/noslash/blobs/uploads/")
    # the declared length alone is enough to refuse: a client waiting for
    # "100 Continue" gets the error instead and never sends the body
    c = reg.conn()
    c.putrequest("PATCH", h["location"])
    c.putheader("Content-Length", str(2 << 20))
    c.putheader("Expect", "100-continue")
    c.endheaders()
    r = c.getresponse()
    assert r.status == 413 and json.loads(r.read())["errors"][0]["code"] == "SIZE_INVALID"
    c.close()


def test_expect_100_continue_and_malformed_requests(reg):
    import socket

    data = b"continue-me"
    s = socket.create_connection(("127.0.0.1", reg.port))
    s.sendall(f"POST /v2/cont/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n".encode())
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(data)
    assert s.recv(1000).startswith(b"HTTP/1.1 201 ")
    s.close()
    s = socket.create_connection(("127.0.0.1", reg.port))
    s.sendall(b"NONSENSE\r\n\r\n")
    assert s.recv(1000).startswith(b"HTTP/1.1 400 ")
    s.close()
    s = socket.create_connection(("127.0.0.1", reg.port))
    s.sendall(b"GET /v2/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
    assert s.recv(1000).startswith(b"HTTP/1.1 400 ")
    s.close()


def test_truncated_monolithic_upload_commits_nothing_and_leaves_no_session(reg):
    import socket

    data = b"t" * 1000
    before = set(os.listdir(reg.registry.storage.content.ingest_dir))
    s = socket.create_connection(("127.0.0.1", reg.port))
    s.sendall(f"POST /v2/trunc/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:100])
    s.shutdown(socket.SHUT_WR)
    reply = s.recv(1000)
    s.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reg.req("HEAD", f"/v2/trunc/blobs/{sha(data)}")[0] == 404
    assert not os.path.exists(reg.registry.storage.content.path(sha(data)))
    assert set(os.listdir(reg.registry.storage.content.ingest_dir)) == before
