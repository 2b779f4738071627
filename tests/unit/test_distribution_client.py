"""The registry client against small misbehaving registries on loopback (real sockets):
the token flow, where credentials may go, redirects, resume, lies and mismatches."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration"))
from archives import config_for, simple_layer  # noqa: E402

from hoist.distribution.credentials import AuthConfig  # noqa: E402
from hoist.distribution.pull import pull_image  # noqa: E402
from hoist.distribution.registry import RegistryClient  # noqa: E402
from hoist.engine.daemon_state import Engine  # noqa: E402
from hoist.errors import DigestMismatch, InvalidContent, NotFound, RegistryError, Unauthorized  # noqa: E402
from hoist.image import reference as R  # noqa: E402
from hoist.image import types as T  # noqa: E402


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Server:
    """A registry (or token server, or blob host) whose answers each test scripts."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.hook = None  # (handler, method) -> bool (True: handled)
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                outer.requests.append((self.command, self.path, dict(self.headers.items())))
                if outer.hook and outer.hook(self):
                    return
                p = self.path.split("?")[0]
                if p == "/v2/":
                    return self.send(200, b"{}")
                parts = p.split("/")
                if "manifests" in parts:
                    m = outer.manifests.get(parts[-1])
                    if m is None:
                        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                    return self.send(200, m[1], {"Content-Type": m[0]})
                if "blobs" in parts:
                    b = outer.blobs.get(parts[-1])
                    if b is None:
                        return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}')
                    rng = self.headers.get("Range")
                    if rng:
                        start = int(rng.split("=")[1].split("-")[0])
                        return self.send(206, b[start:], {"Content-Range": f"bytes {start}-{len(b) - 1}/{len(b)}"})
                    return self.send(200, b)
                self.send(404, b"{}")

            do_GET = do_HEAD = do_POST = do_PUT = handle_any

        self.httpd = ThreadingHTTPServer((host, 0), H)
        self.httpd.block_on_close = False
        self.addr = f"{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_image(self, tag: str = "t", layers=None):
        layers = layers or [simple_layer({"a": b"1"}), gzip.compress(simple_layer({"b": b"2" * 5000}))]
        config = config_for(layers)
        for blob in (config, *layers):
            self.blobs[sha(blob)] = blob
        manifest = json.dumps({"schemaVersion": 2, "mediaType": T.OCI_MANIFEST,
                               "config": {"mediaType": T.OCI_CONFIG, "digest": sha(config), "size": len(config)},
                               "layers": [{"mediaType": T.OCI_LAYER_GZIP if l[:2] == b"\x1f\x8b" else T.OCI_LAYER,
                                           "digest": sha(l), "size": len(l)} for l in layers]}).encode()
        self.manifests[tag] = (T.OCI_MANIFEST, manifest)
        self.manifests[sha(manifest)] = (T.OCI_MANIFEST, manifest)
        return manifest, config, layers


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def other():
    s = Server("127.0.0.2")
    yield s
    s.close()


@pytest.fixture
def engine(tmp_path):
    return Engine.open(str(tmp_path / "root"), "native")


def pull(engine, server, name="repo/img:t", auth=None, **kw):
    msgs = []
    ref = R.parse(f"{server.addr}/{name}")
    client = RegistryClient(ref.domain, auth, backoff=0.01)
    try:
        pull_image(engine.store, ref, auth=auth, emit=msgs.append, client=client, **kw)
    finally:
        client.close()
    return msgs


def no_image(engine):
    return engine.store.images() == [] and not os.listdir(engine.store.content.ingest_dir)


def test_pull_and_progress(engine, server):
    manifest, config, layers = server.add_image()
    msgs = pull(engine, server)
    assert msgs[0] == {"status": "Pulling from repo/img", "id": "t"}
    ids = [sha(l)[7:19] for l in layers]
    for i in ids:
        states = [m["status"] for m in msgs if m.get("id") == i]
        assert states[0] == "Pulling fs layer" and states[-1] == "Pull complete"
        assert "Verifying Checksum" in states and "Download complete" in states
    assert msgs[-2] == {"status": f"Digest: {sha(manifest)}"}
    assert msgs[-1] == {"status": f"Status: Downloaded newer image for {server.addr}/repo/img:t"}
    image_id = engine.images.resolve(f"{server.addr}/repo/img:t")
    assert image_id == sha(config)
    assert engine.store.digests_of(image_id) == [f"{server.addr}/repo/img@{sha(manifest)}"]
    assert pull(engine, server)[-1]["status"].startswith("Status: Image is up to date")


def test_bearer_token_flow_credentials_and_cache(engine, server):
    server.add_image()
    seen_tokens = []

    def hook(h):
        if h.path.startswith("/token"):
            seen_tokens.append(h.headers.get("Authorization"))
            return h.send(200, json.dumps({"token": "tok-1", "expires_in": 300}).encode()) or True
        if h.headers.get("Authorization") != "Bearer tok-1":
            h.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                   {"WWW-Authenticate": f'Bearer realm="http://{server.addr}/token",service="reg",'
                                        f'scope="repository:repo/img:pull"'})
            return True
        return False

    server.hook = hook
    pull(engine, server, auth=AuthConfig("bob", "pw", server.addr))
    creds = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert seen_tokens == [creds]  # one token for every request of the same scope
    token_req = [r for r in server.requests if r[1].startswith("/token")][0]
    assert "service=reg" in token_req[1] and "scope=repository%3Arepo%2Fimg%3Apull" in token_req[1]


def test_token_realm_on_another_host_gets_no_credentials(engine, server, other):
    server.add_image()

    def realm(h):
        return h.send(200, json.dumps({"access_token": "anon"}).encode()) or True

    other.hook = realm

    def hook(h):
        if h.headers.get("Authorization") != "Bearer anon":
            h.send(401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{other.addr}/token",service="x"'})
            return True
        return False

    server.hook = hook
    pull(engine, server, auth=AuthConfig("bob", "secret", server.addr))
    assert other.requests and all("Authorization" not in r[2] for r in other.requests)
    assert all(b"secret" not in json.dumps(r).encode() for r in other.requests)


def test_redirect_to_another_host_is_followed_without_authorization(engine, server, other):
    manifest, config, layers = server.add_image()
    big = layers[1]
    other.blobs[sha(big)] = big

    def hook(h):
        if h.headers.get("Authorization") is None:
            h.send(401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
            return True
        if sha(big) in h.path and h.command == "GET":
            h.send(307, b"", {"Location": f"http://{other.addr}/cdn/blobs/{sha(big)}"})
            return True
        return False

    server.hook = hook
    pull(engine, server, auth=AuthConfig("bob", "secret", server.addr))
    cdn = [r for r in other.requests if r[1].startswith("/cdn/")]
    assert cdn and all("Authorization" not in r[2] for r in cdn)
    assert engine.images.resolve(f"{server.addr}/repo/img:t") == sha(config)


def test_wrong_credentials_clear_error(engine, server):
    server.add_image()

    def hook(h):
        h.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
               {"WWW-Authenticate": 'Basic realm="r"'})
        return True

    server.hook = hook
    with pytest.raises(Unauthorized, match="^unauthorized: authentication required$"):
        pull(engine, server, auth=AuthConfig("bob", "wrong", server.addr))
    assert no_image(engine)


def test_digest_mismatch_commits_nothing(engine, server):
    manifest, config, layers = server.add_image()
    bad = bytearray(layers[0])
    bad[600] ^= 1
    server.blobs[sha(layers[0])] = bytes(bad)
    with pytest.raises(DigestMismatch):
        pull(engine, server)
    assert not engine.store.content.exists(sha(layers[0]))
    assert no_image(engine)


def test_registry_lying_about_size(engine, server):
    manifest, config, layers = server.add_image()
    server.blobs[sha(layers[1])] = layers[1] + b"\0" * 100
    with pytest.raises(InvalidContent, match="descriptor says"):
        pull(engine, server)
    assert no_image(engine)


def test_truncated_download_resumes_with_range(engine, server):
    manifest, config, layers = server.add_image()
    big = layers[1]
    cut = {"done": False}

    def hook(h):
        if sha(big) in h.path and not cut["done"]:
            cut["done"] = True
            h.send_response(200)
            h.send_header("Content-Length", str(len(big)))
            h.end_headers()
            h.wfile.write(big[:len(big) // 2])
            h.wfile.flush()
            h.close_connection = True
            return True
        return False

    server.hook = hook
    pull(engine, server)
    ranges = [r[2].get("Range") for r in server.requests if sha(big) in r[1]]
    assert ranges == [None, f"bytes={len(big) // 2}-"]
    assert engine.images.resolve(f"{server.addr}/repo/img:t") == sha(config)


def test_server_errors_are_retried(engine, server):
    server.add_image()
    fails = {"n": 2}

    def hook(h):
        if "manifests" in h.path and fails["n"]:
            fails["n"] -= 1
            h.send(503, b"busy")
            return True
        return False

    server.hook = hook
    pull(engine, server)
    assert fails["n"] == 0


def test_manifest_referencing_missing_blob(engine, server):
    manifest, config, layers = server.add_image()
    del server.blobs[sha(layers[0])]
    with pytest.raises(NotFound, match="blob unknown"):
        pull(engine, server)
    assert no_image(engine)


def test_unknown_tag_and_platform_selection(engine, server):
    manifest, config, layers = server.add_image("amd")
    index = json.dumps({"schemaVersion": 2, "mediaType": T.OCI_INDEX, "manifests": [
        {"mediaType": T.OCI_MANIFEST, "digest": sha(b"x" * 3), "size": 3,
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": T.OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    server.manifests["multi"] = (T.OCI_INDEX, index)
    with pytest.raises(NotFound, match="manifest unknown"):
        pull(engine, server, "repo/img:nope")
    msgs = pull(engine, server, "repo/img:multi", platform="linux/amd64")
    assert msgs[-2] == {"status": f"Digest: {sha(index)}"}
    with pytest.raises(NotFound, match="no matching manifest"):
        pull(engine, server, "repo/img:multi", platform="linux/s390x")


def test_plain_http_refused_for_non_loopback():
    client = RegistryClient("registry.example.invalid:5000")
    with pytest.raises(RegistryError, match="refusing plain HTTP"):
        client._send("GET", "http://registry.example.invalid:5000/v2/", {}, None)


def test_reference_filter_also_filters_repo_digests(engine, server):
    server.add_image()
    pull(engine, server)
    image_id = engine.images.resolve(f"{server.addr}/repo/img:t")
    engine.images.tag(image_id, "local/other", "1")
    rows = engine.images.list(filters={"reference": ["local/other"]})
    assert rows[0]["RepoTags"] == ["local/other:1"] and rows[0]["RepoDigests"] == []
    rows = engine.images.list(filters={"reference": [f"{server.addr}/repo/img"]})
    assert len(rows[0]["RepoDigests"]) == 1
