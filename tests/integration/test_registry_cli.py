"""``hoist registry serve|gc`` as commands: no daemon, access log, read-only, config file,
and collection while pushes continue."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from registry_server import PY, REPO, start  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def req(addr: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def push_image(addr: str, repo: str, tag: str, layer: bytes) -> str:
    config = b'{"os":"linux"}'
    for blob in (config, layer):
        st, body = req(addr, "POST", f"/v2/{repo}/blobs/uploads/?digest={sha(blob)}", blob)
        assert st == 201, body
    m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                               "size": len(config)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                                "size": len(layer)}]}).encode()
    st, body = req(addr, "PUT", f"/v2/{repo}/manifests/{tag}", m, {"Content-Type": OCI_MANIFEST})
    assert st == 201, body
    return sha(m)


def hoist(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, HOIST_HOST="unix:///nonexistent/hoist.sock")
    env.pop("DOCKER_HOST", None)
    return subprocess.run([PY, "-m", "hoist.cli.main", *args], capture_output=True, env=env, timeout=120)


def test_serve_without_daemon_access_log_and_gc_cli(tmp_path):
    log = tmp_path / "access.log"
    reg = start(str(tmp_path / "r"), "--access-log", str(log), "--max-blob-size", "100000")
    try:
        push_image(reg.addr, "cli/app", "v1", b"kept")
        st, _ = req(reg.addr, "POST", f"/v2/cli/app/blobs/uploads/?digest={sha(b'orphan')}", b"orphan")
        assert st == 201
        big = b"x" * 100001
        assert req(reg.addr, "POST", f"/v2/cli/app/blobs/uploads/?digest={sha(big)}", big)[0] == 413
    finally:
        reg.stop()
    lines = log.read_text().splitlines()
    assert any('"PUT /v2/cli/app/manifests/v1 HTTP/1.1" 201' in ln for ln in lines)
    root = str(tmp_path / "r" / "root")
    p = hoist("registry", "gc", "--root", root, "--dry-run", "--grace", "0")
    assert p.returncode == 0 and f"would delete {sha(b'orphan')}" in p.stdout.decode()
    p = hoist("registry", "gc", "--root", root, "--grace", "0")
    assert p.returncode == 0 and f"deleted {sha(b'orphan')}" in p.stdout.decode()
    assert not os.path.exists(os.path.join(root, "content", "blobs", "sha256", sha(b"orphan")[7:]))
    assert os.path.exists(os.path.join(root, "content", "blobs", "sha256", sha(b"kept")[7:]))
    p = hoist("registry", "serve", "--auth", "basic", "--root", root)
    assert p.returncode != 0 and b"--htpasswd" in p.stderr


def test_access_log_names_the_user(tmp_path):
    import base64

    log = tmp_path / "access.log"
    reg = start(str(tmp_path / "r"), "--access-log", str(log), auth="basic")
    try:
        auth = {"Authorization": "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()}
        assert req(reg.addr, "GET", "/v2/", headers=auth)[0] == 200
        assert req(reg.addr, "GET", "/v2/")[0] == 401
        # the line is written once the response is out: give a busy machine a moment
        import time
        deadline = time.monotonic() + 10
        while len(log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reg.stop()
    lines = log.read_text().splitlines()
    assert any(" - alice [" in ln and '"GET /v2/ HTTP/1.1" 200' in ln for ln in lines), lines
    assert any(" - - [" in ln and '"GET /v2/ HTTP/1.1" 401' in ln for ln in lines), lines


def test_read_only_and_config_file(tmp_path):
    seed = start(str(tmp_path / "ro"))
    try:
        push_image(seed.addr, "ro/app", "v1", b"layer")
    finally:
        seed.stop()
    cfg = tmp_path / "reg.toml"
    # the file's root is overridden by the --root flag start() passes
    cfg.write_text(f'root = "{tmp_path / "elsewhere"}"\nread_only = true\n')
    reg = start(str(tmp_path / "ro"), "--config", str(cfg))
    try:
        assert req(reg.addr, "GET", "/v2/ro/app/manifests/v1")[0] == 200
        st, body = req(reg.addr, "DELETE", "/v2/ro/app/manifests/v1")
        assert st == 405 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
        assert req(reg.addr, "POST", "/v2/ro/app/blobs/uploads/")[0] == 405
    finally:
        reg.stop()


def test_gc_while_pushes_continue(tmp_path):
    reg = start(str(tmp_path / "r"))
    root = str(tmp_path / "r" / "root")
    errors: list[str] = []
    done = threading.Event()
    pushed: list[tuple[str, bytes]] = []

    def pusher(i: int) -> None:
        n = 0
        while not done.is_set():
            layer = f"layer-{i}-{n}".encode() * 100
            try:
                push_image(reg.addr, f"busy/r{i}", f"t{n}", layer)
                pushed.append((f"busy/r{i}:t{n}", layer))
            except AssertionError as e:
                errors.append(str(e))
            n += 1

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for _ in range(5):
            p = hoist("registry", "gc", "--root", root, "--grace", "30")
            assert p.returncode == 0, p.stderr
            time.sleep(0.1)
        done.set()
        for t in threads:
            t.join()
        assert errors == [] and len(pushed) > 10
        for ref, layer in pushed:
            repo, tag = ref.split(":")
            assert req(reg.addr, "GET", f"/v2/{repo}/manifests/{tag}")[0] == 200
            st, body = req(reg.addr, "GET", f"/v2/{repo}/blobs/{sha(layer)}")
            assert st == 200 and body == layer
    finally:
        done.set()
        reg.stop()


def _status(addr: str, loc: str) -> tuple[int, str]:
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        c.request("GET", loc)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Range") or ""
    finally:
        c.close()


def test_upload_sessions_survive_sigkill(tmp_path):
    """SIGKILL with two uploads open (one between chunks, one mid-chunk): after a restart
    both resume from the offset the server reports and commit with a verified digest;
    nothing partial became visible; forged ids and ids used with another repository are
    refused; gc clears an abandoned session once it is stale."""
    import signal
    import socket

    data = os.urandom(4 << 20)
    half = len(data) // 2
    reg = start(str(tmp_path / "r"))
    host, port = reg.addr.split(":")
    locs = []
    for _ in range(3):
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("POST", "/v2/kill/app/blobs/uploads/")
        r = c.getresponse()
        r.read()
        assert r.status == 202
        locs.append(r.getheader("Location"))
        c.close()
    between, torn, abandoned = locs
    st, _ = req(reg.addr, "PATCH", between, data[:half], {"Content-Range": f"0-{half - 1}"})
    assert st == 202
    s = socket.create_connection((host, int(port)))
    s.sendall(f"PATCH {torn} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
              + data[:half])
    time.sleep(0.5)
    os.kill(reg.proc.pid, signal.SIGKILL)
    reg.proc.wait()
    s.close()
    root = os.path.join(reg.root, "root")
    ingest = os.path.join(root, "content", "ingest")
    assert len(os.listdir(ingest)) == 3
    assert not os.path.exists(os.path.join(root, "content", "blobs", "sha256", sha(data)[7:]))
    reg2 = start(str(tmp_path / "r"))
    try:
        assert _status(reg2.addr, between) == (204, f"0-{half - 1}")
        st, rng = _status(reg2.addr, torn)
        assert st == 204 and rng.startswith("0-")
        got = int(rng[2:]) + 1
        assert 0 < got <= half  # whatever reached the file before the kill
        uid = between.rsplit("/", 1)[1]
        forged = uid[:-1] + ("1" if uid[-1] == "0" else "0")
        for path in (f"/v2/kill/app/blobs/uploads/{forged}", f"/v2/kill/other/blobs/uploads/{uid}"):
            for method in ("GET", "PATCH", "PUT"):
                st, body = req(reg2.addr, method, f"{path}?digest={sha(data)}", b"x")
                assert st == 404 and json.loads(body)["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        st, _ = req(reg2.addr, "PATCH", between, data[half:], {"Content-Range": f"{half}-{len(data) - 1}"})
        assert st == 202
        st, body = req(reg2.addr, "PUT", f"{between}?digest={sha(data)}")
        assert st == 201, body
        st, body = req(reg2.addr, "PATCH", torn, data[got:], {"Content-Range": f"{got}-{len(data) - 1}"})
        assert st == 202, body
        st, body = req(reg2.addr, "PUT", f"{torn}?digest={sha(data)}")
        assert st == 201, body
        st, body = req(reg2.addr, "GET", f"/v2/kill/app/blobs/{sha(data)}")
        assert st == 200 and sha(body) == sha(data)
        assert req(reg2.addr, "GET", between)[0] == 404  # committed sessions are gone
    finally:
        reg2.stop()
    assert os.listdir(ingest) == ["up-" + abandoned.rsplit("/", 1)[1]]
    cfg = tmp_path / "gc.json"
    cfg.write_text(json.dumps({"upload_ttl": 0.0}))
    p = hoist("registry", "gc", "--root", root, "--config", str(cfg))
    assert p.returncode == 0 and "1 stale uploads removed" in p.stdout.decode(), p.stdout
    assert os.listdir(ingest) == []
