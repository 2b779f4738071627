"""Registry throughput: hoist's registry vs Debian's reference registry (docker-registry).

Both serve the same content from filesystem storage on 127.0.0.1 without auth: a blob
(100 MB by default) and a manifest referencing it. A Python load generator in separate
processes, each on one keep-alive connection, measures blob GET MB/s and manifest GET
requests/s; one client measures blob upload MB/s. Reports the median of several runs
and hoist/reference ratios.

    .venv/bin/python bench/registry_throughput.py [--runs 3] [--size-mb 100] [--clients 2]
        [--seconds 3] [--out FILE]

Every server started here is stopped by its PID.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REFERENCE = "/usr/bin/docker-registry"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_hoist(base: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-m", "hoist.cli.main", "registry", "serve", "--addr",
                             f"127.0.0.1:{port}", "--root", os.path.join(base, "hoist")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_up(port, proc)
    return proc, port


def start_reference(base: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg = os.path.join(base, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {os.path.join(base, 'ref')}\n"
                f"  cache:\n    blobdescriptor: inmemory\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([REFERENCE, "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port, proc)
    return proc, port


def upload_rate(port: int, repo: str, blob_path: str, blob_digest: str, size: int) -> float:
    """MB/s of one POST + PUT ?digest= upload of the blob on a fresh session (the server
    receives, hashes and commits every byte even though the content is already stored)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    c.request("POST", f"/v2/{repo}/blobs/uploads/")
    r = c.getresponse()
    r.read()
    loc = r.getheader("Location")
    sep = "&" if "?" in loc else "?"
    with open(blob_path, "rb") as f:
        c.request("PUT", f"{loc}{sep}digest={blob_digest}", body=f,
                  headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
    elapsed = time.perf_counter() - t0
    c.close()
    assert r.status == 201, r.status
    return size / elapsed / 1e6


def push(port: int, repo: str, blob_path: str, blob_digest: str, size: int, config: bytes) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def upload(body, length: int, digest: str) -> None:
        c.request("POST", f"/v2/{repo}/blobs/uploads/")
        r = c.getresponse()
        r.read()
        loc = r.getheader("Location")
        sep = "&" if "?" in loc else "?"
        c.request("PUT", f"{loc}{sep}digest={digest}", body=body,
                  headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
        assert r.status == 201, r.status

    with open(blob_path, "rb") as f:
        upload(f, size, blob_digest)
    cd = "sha256:" + hashlib.sha256(config).hexdigest()
    upload(config, len(config), cd)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cd, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": blob_digest, "size": size}]}).encode()
    c.request("PUT", f"/v2/{repo}/manifests/latest", body=manifest, headers={"Content-Type": MANIFEST_TYPE})
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
    c.close()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def _blob_worker(port: int, path: str, seconds: float, out) -> None:  # type: ignore[no-untyped-def]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.request("GET", path)
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"blob GET: {r.status}")
        while n := r.readinto(view):
            total += n
    out.put((total, time.perf_counter() - t0))
    c.close()


def _manifest_worker(port: int, path: str, seconds: float, out) -> None:  # type: ignore[no-untyped-def]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Accept": MANIFEST_TYPE}
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"manifest GET: {r.status}")
        n += 1
    out.put((n, time.perf_counter() - t0))
    c.close()


def load(worker, port: int, path: str, clients: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """Aggregate rate over ``clients`` processes: sum of each process's own rate."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(port, path, seconds, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(amount / elapsed for amount, elapsed in results)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if not os.path.exists(REFERENCE):
        print(f"{REFERENCE} is not installed", file=sys.stderr)
        return 1
    base = tempfile.mkdtemp(prefix="hoist-regbench-", dir="/var/tmp")
    procs: list[subprocess.Popen] = []
    try:
        blob = os.path.join(base, "blob")
        h = hashlib.sha256()
        with open(blob, "wb") as f:
            for _ in range(a.size_mb):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        size = a.size_mb << 20
        digest = "sha256:" + h.hexdigest()
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        servers = {}
        for name, starter in (("hoist", start_hoist), ("reference", start_reference)):
            proc, port = starter(base)
            procs.append(proc)
            push(port, "bench/img", blob, digest, size, config)
            servers[name] = port
        results: dict[str, dict[str, float]] = {}
        for name, port in servers.items():
            mbs = [load(_blob_worker, port, f"/v2/bench/img/blobs/{digest}", a.clients, a.seconds) / 1e6
                   for _ in range(a.runs)]
            rps = [load(_manifest_worker, port, "/v2/bench/img/manifests/latest", a.clients, a.seconds)
                   for _ in range(a.runs)]
            up = [upload_rate(port, f"bench/up{i}", blob, digest, size) for i in range(a.runs)]
            results[name] = {"blob": statistics.median(mbs), "manifest": statistics.median(rps),
                             "upload": statistics.median(up)}
        h_, r_ = results["hoist"], results["reference"]
        lines = [f"# Registry throughput ({a.size_mb} MB blob, {a.clients} keep-alive clients, "
                 f"{a.seconds:g}s x {a.runs} runs, medians)", "",
                 "| metric | hoist | docker-registry | hoist/reference |", "|---|---|---|---|",
                 f"| blob GET MB/s | {h_['blob']:.0f} | {r_['blob']:.0f} | {h_['blob'] / r_['blob']:.2f} |",
                 f"| manifest GET req/s | {h_['manifest']:.0f} | {r_['manifest']:.0f} | "
                 f"{h_['manifest'] / r_['manifest']:.2f} |",
                 f"| blob upload MB/s (1 client) | {h_['upload']:.0f} | {r_['upload']:.0f} | "
                 f"{h_['upload'] / r_['upload']:.2f} |"]
        text = "\n".join(lines) + "\n"
        print(text)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        return 0
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
