"""The hoist registry against real clients: skopeo, a real dockerd with the docker CLI,
hoist's own push/pull through hoistd, and TLS with a self-signed certificate."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from archives import docker_archive, oci_archive, simple_layer  # noqa: E402
from conftest import PY, REPO, start_hoistd  # noqa: E402
from registry_server import client_context, start  # noqa: E402

CREDS = "alice:s3cret-pw"
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {args} failed:\n{p.stderr.decode()}")
    return p


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    base = tmp_path_factory.mktemp("archives")
    d = base / "img.tar"
    d.write_bytes(docker_archive([simple_layer({"a.txt": b"A" * 3000}), simple_layer({"b.txt": b"B\n"})],
                                 ["example/img:v1"]))
    o = base / "oci.tar"
    o.write_bytes(oci_archive([simple_layer({"oci.txt": b"oci\n"})], "example/oci:v1"))
    return str(d), str(o)


@pytest.fixture(scope="module", params=["none", "basic", "token"])
def registry(request, tmp_path_factory):
    reg = start(str(tmp_path_factory.mktemp(f"hreg-{request.param}")), auth=request.param)
    reg.mode = request.param
    yield reg
    reg.stop()


def _creds(reg, flag: str) -> list[str]:
    return [] if reg.mode == "none" else [flag, CREDS]


@needs_skopeo
def test_skopeo_copy_inspect_copy_back_delete(registry, archive, tmp_path):
    dock, oci = archive
    ref = f"docker://{registry.addr}/skopeo/img:v1"
    skopeo("copy", "--dest-tls-verify=false", *_creds(registry, "--dest-creds"), f"docker-archive:{dock}", ref)
    skopeo("copy", "--dest-tls-verify=false", *_creds(registry, "--dest-creds"), f"oci-archive:{oci}",
           f"docker://{registry.addr}/skopeo/oci:v1")
    info = json.loads(skopeo("inspect", "--tls-verify=false", *_creds(registry, "--creds"), ref).stdout)
    assert len(info["Layers"]) == 2
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", *_creds(registry, "--creds"),
                            f"docker://{registry.addr}/skopeo/oci:v1").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    out = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", *_creds(registry, "--src-creds"), ref, f"oci:{out}:v1")
    index = json.loads((out / "index.json").read_text())
    mdigest = index["manifests"][0]["digest"]
    manifest = json.loads((out / "blobs" / "sha256" / mdigest[7:]).read_text())
    for layer in manifest["layers"]:
        assert (out / "blobs" / "sha256" / layer["digest"][7:]).exists()
    # copy within the registry mounts blobs across repositories
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", *_creds(registry, "--src-creds"),
           *_creds(registry, "--dest-creds"), ref, f"docker://{registry.addr}/skopeo/copy:v2")
    skopeo("delete", "--tls-verify=false", *_creds(registry, "--creds"), ref)
    p = skopeo("inspect", "--tls-verify=false", *_creds(registry, "--creds"), ref, check=False)
    assert p.returncode != 0 and b"manifest unknown" in p.stderr.lower()
    if registry.mode != "none":
        p = skopeo("inspect", "--tls-verify=false", "--creds", "alice:wrong",
                   f"docker://{registry.addr}/skopeo/copy:v2", check=False)
        assert p.returncode != 0 and (b"401" in p.stderr or b"unauthorized" in p.stderr.lower())


@needs_skopeo
def test_tls_self_signed(tmp_path, archive):
    reg = start(str(tmp_path / "tls"), auth="basic", tls=True)
    try:
        cert = os.path.join(reg.root, "cert.pem")
        c = http.client.HTTPSConnection(reg.addr.split(":")[0], int(reg.addr.split(":")[1]),
                                        context=client_context(cert), timeout=10)
        c.request("GET", "/v2/")
        r = c.getresponse()
        r.read()
        assert r.status == 401 and r.getheader("WWW-Authenticate").startswith("Basic ")
        c.close()
        dock, _ = archive
        ref = f"docker://{reg.addr}/tls/img:v1"
        certdir = tmp_path / "certs"
        certdir.mkdir()
        shutil.copy(cert, certdir / "ca.crt")
        skopeo("copy", "--dest-cert-dir", str(certdir), "--dest-creds", CREDS, f"docker-archive:{dock}", ref)
        info = json.loads(skopeo("inspect", "--cert-dir", str(certdir), "--creds", CREDS, ref).stdout)
        assert len(info["Layers"]) == 2
        # without trusting the certificate the client refuses
        p = skopeo("inspect", "--creds", CREDS, ref, check=False)
        assert p.returncode != 0 and b"certificate" in p.stderr
    finally:
        reg.stop()


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_docker_login_push_pull(dockerd, tmp_path, mode):
    reg = start(str(tmp_path / "dreg"), auth=mode)
    try:
        img = tmp_path / "img.tar"
        img.write_bytes(docker_archive([simple_layer({f"{mode}.txt": mode.encode()})], [f"local/{mode}:v1"]))
        dockerd.docker("load", "-i", str(img))
        name = f"{reg.addr}/docker/{mode}:v1"
        dockerd.docker("tag", f"local/{mode}:v1", name)
        p = dockerd.docker("push", name, check=False)
        # basic: docker has no credentials to offer; token: the anonymous token grants
        # nothing, which docker reports as Docker Hub's anonymous push is reported.
        want = b"no basic auth credentials" if mode == "basic" else b"requested access to the resource is denied"
        assert p.returncode != 0 and want in p.stderr
        p = dockerd.docker("login", "-u", "alice", "--password-stdin", reg.addr, input=b"wrong\n", check=False)
        assert p.returncode != 0
        dockerd.docker("login", "-u", "alice", "--password-stdin", reg.addr, input=b"s3cret-pw\n")
        dockerd.docker("push", name)
        # a second repository gets the layer by cross-repository mount, not a re-upload
        other = f"{reg.addr}/docker/{mode}-copy:v1"
        dockerd.docker("tag", name, other)
        out = dockerd.docker("push", other).stdout
        assert f"Mounted from docker/{mode}".encode() in out, out
        dockerd.docker("rmi", other)
        before = dockerd.docker("image", "inspect", "--format", "{{.Id}}", name).stdout
        dockerd.docker("rmi", name, f"local/{mode}:v1")
        dockerd.docker("pull", name)
        assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", name).stdout == before
        dockerd.docker("rmi", name)
        dockerd.docker("logout", reg.addr)
    finally:
        reg.stop()


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_hoist_push_pull_against_hoist_registry(tmp_path, mode):
    reg = start(str(tmp_path / "hreg"), auth=mode)
    (tmp_path / "hd").mkdir()
    d = start_hoistd(str(tmp_path / "hd"))
    try:
        d.hoist("image", "bootstrap", "busybox")
        cfg = str(tmp_path / "cfg")
        env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=cfg)
        env.pop("DOCKER_HOST", None)

        def hoist(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
            p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", d.host, *args], input=input,
                               capture_output=True, env=env, timeout=300)
            if check and p.returncode != 0:
                raise AssertionError(f"hoist {args}: {p.stdout.decode()}\n{p.stderr.decode()}")
            return p

        name = f"{reg.addr}/hoist/busybox:v1"
        hoist("tag", "busybox", name)
        before = hoist("image", "inspect", "--format", "{{.Id}}", name).stdout
        p = hoist("push", name, check=False)
        assert p.returncode == 1 and (b"unauthorized" in p.stderr or b"denied" in p.stderr), p.stderr
        hoist("login", "-u", "alice", "--password-stdin", reg.addr, input=b"s3cret-pw\n")
        hoist("push", name)
        hoist("rmi", name)
        hoist("pull", name)
        assert hoist("image", "inspect", "--format", "{{.Id}}", name).stdout == before
    finally:
        d.stop()
        reg.stop()


@needs_skopeo
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_podman_pull_push(tmp_path, archive):
    """podman with a private storage root (vfs), so the machine's own podman store is untouched."""
    reg = start(str(tmp_path / "preg"), auth="basic")
    runroot = tempfile.mkdtemp(prefix="hp-", dir="/tmp")  # podman wants a runroot under 50 chars
    base = ["podman", "--root", str(tmp_path / "proot"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        dock, _ = archive
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"docker-archive:{dock}",
               f"docker://{reg.addr}/podman/img:v1")

        def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
            p = subprocess.run([*base, *args], capture_output=True, timeout=120)
            if check and p.returncode != 0:
                raise AssertionError(f"podman {args}: {p.stderr.decode()}")
            return p

        p = podman("pull", "--tls-verify=false", f"{reg.addr}/podman/img:v1", check=False)
        assert p.returncode != 0 and b"unauthorized" in p.stderr.lower()
        podman("pull", "--tls-verify=false", "--creds", CREDS, f"{reg.addr}/podman/img:v1")
        podman("push", "--tls-verify=false", "--creds", CREDS, f"{reg.addr}/podman/img:v1",
               f"{reg.addr}/podman/back:v2")
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", CREDS,
                                 f"docker://{reg.addr}/podman/back:v2").stdout)
        assert len(info["Layers"]) == 2
        podman("rmi", "-a")
    finally:
        reg.stop()
        shutil.rmtree(runroot, ignore_errors=True)


def test_round_trip_hoist_registry_docker_and_back(tmp_path, dockerd):
    """hoist pushes busybox to the hoist registry; dockerd pulls it and pushes it to a
    second repository (mounting its layers); hoist pulls that back: same image ID."""
    reg = start(str(tmp_path / "rt"), auth="token")
    (tmp_path / "hd").mkdir()
    d = start_hoistd(str(tmp_path / "hd"))
    try:
        d.hoist("image", "bootstrap", "busybox")
        env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=str(tmp_path / "cfg"))
        env.pop("DOCKER_HOST", None)

        def hoist(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
            p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", d.host, *args], input=input,
                               capture_output=True, env=env, timeout=300)
            assert p.returncode == 0, f"hoist {args}: {p.stdout.decode()}\n{p.stderr.decode()}"
            return p

        there = f"{reg.addr}/rt/busybox:v1"
        back = f"{reg.addr}/rt/from-docker:v1"
        hoist("login", "-u", "alice", "--password-stdin", reg.addr, input=b"s3cret-pw\n")
        hoist("tag", "busybox", there)
        image_id = hoist("image", "inspect", "--format", "{{.Id}}", there).stdout
        hoist("push", there)
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", CREDS, f"docker://{there}").stdout)
        assert info["Os"] == "linux" and info["Layers"]
        dockerd.docker("login", "-u", "alice", "--password-stdin", reg.addr, input=b"s3cret-pw\n")
        dockerd.docker("pull", there)
        assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", there).stdout == image_id
        dockerd.docker("tag", there, back)
        # dockerd mounts across repositories only for blobs it remembers pulling from
        # there; when the session's dockerd already had the layer (another test loaded
        # busybox), it uploads instead. Either way the registry must accept it.
        pushed = dockerd.docker("push", back).stdout
        assert b"Mounted from rt/busybox" in pushed or b"Pushed" in pushed, pushed
        dockerd.docker("rmi", there, back)
        dockerd.docker("logout", reg.addr)
        hoist("pull", back)
        assert hoist("image", "inspect", "--format", "{{.Id}}", back).stdout == image_id
    finally:
        d.stop()
        reg.stop()


def test_docker_cli_through_hoistd_against_hoist_registry(tmp_path):
    """The docker CLI talking to hoistd (Engine API) logs in, pushes and pulls with the
    hoist registry as the remote end."""
    reg = start(str(tmp_path / "cli"), auth="basic")
    (tmp_path / "hd").mkdir()
    d = start_hoistd(str(tmp_path / "hd"))
    try:
        d.hoist("image", "bootstrap", "busybox")
        name = f"{reg.addr}/cli/busybox:v1"
        d.docker("tag", "busybox", name)
        image_id = d.docker("image", "inspect", "--format", "{{.Id}}", name).stdout
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.addr, input=b"nope\n", check=False)
        assert p.returncode != 0
        d.docker("login", "-u", "alice", "--password-stdin", reg.addr, input=b"s3cret-pw\n")
        d.docker("push", name)
        d.docker("rmi", name)
        d.docker("pull", name)
        assert d.docker("image", "inspect", "--format", "{{.Id}}", name).stdout == image_id
    finally:
        d.stop()
        reg.stop()
