"""hoist ↔ Debian's reference registry (htpasswd auth), through hoistd, with the docker
CLI, docker-py and a real dockerd as peers."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import PY, REPO, docker_clis, start_hoistd  # noqa: E402
from refregistry import available, start_registry  # noqa: E402

pytestmark = pytest.mark.skipif(not available(), reason="docker-registry is not installed")


@pytest.fixture(scope="module")
def hoistd(tmp_path_factory):
    """A daemon of this module's own: pushes and pulls add repo digests and tags to
    busybox that the session daemon's other users should not see."""
    d = start_hoistd(str(tmp_path_factory.mktemp("dist-hoistd")))
    try:
        d.hoist("image", "bootstrap", "busybox")
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(str(tmp_path_factory.mktemp("refreg")))
    yield reg
    reg.stop()


def hoist(d, cfg, *args, input=None, check=True):
    env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=cfg)
    env.pop("DOCKER_HOST", None)
    p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", d.host, *args], input=input,
                       capture_output=True, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"hoist {args} failed ({p.returncode}):\n{p.stdout.decode()}\n{p.stderr.decode()}")
    return p


def image_id(d, cfg, name):
    return hoist(d, cfg, "image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()


def test_login_push_rmi_pull_same_image(hoistd, registry, tmp_path):
    cfg = str(tmp_path / "cfg")
    name = f"{registry.addr}/hoist/busybox:v1"
    hoist(hoistd, cfg, "tag", "busybox", name)
    before = image_id(hoistd, cfg, name)
    # No credentials: the registry's answer, as docker prints it.
    p = hoist(hoistd, cfg, "push", name, check=False)
    assert p.returncode == 1 and b"unauthorized: authentication required" in p.stderr
    p = hoist(hoistd, cfg, "login", "-u", registry.user, "--password-stdin", registry.addr,
              input=b"wrong\n", check=False)
    assert p.returncode == 1 and b"unauthorized" in p.stderr
    assert not os.path.exists(os.path.join(cfg, "config.json"))
    p = hoist(hoistd, cfg, "login", "-u", registry.user, "--password-stdin", registry.addr,
              input=registry.password.encode() + b"\n")
    assert p.stdout == b"Login Succeeded\n"
    saved = json.load(open(os.path.join(cfg, "config.json")))
    assert registry.addr in saved["auths"] and saved["auths"][registry.addr]["auth"]
    out = hoist(hoistd, cfg, "push", name).stdout.decode()
    assert out.startswith(f"The push refers to repository [{registry.addr}/hoist/busybox]\n")
    assert ": Pushed\n" in out and "v1: digest: sha256:" in out
    again = hoist(hoistd, cfg, "push", name).stdout.decode()
    assert ": Layer already exists\n" in again and ": Pushed\n" not in again
    hoist(hoistd, cfg, "rmi", name)
    assert hoist(hoistd, cfg, "image", "inspect", name, check=False).returncode == 1
    out = hoist(hoistd, cfg, "pull", name).stdout.decode()
    assert "v1: Pulling from hoist/busybox\n" in out and "Digest: sha256:" in out
    assert f"Status: Downloaded newer image for {name}\n" in out and out.endswith(name + "\n")
    assert image_id(hoistd, cfg, name) == before
    again = hoist(hoistd, cfg, "pull", name).stdout.decode()
    assert f"Status: Image is up to date for {name}\n" in again
    digest = [l for l in out.splitlines() if l.startswith("Digest: ")][0].split()[1]
    by_digest = f"{registry.addr}/hoist/busybox@{digest}"
    assert hoist(hoistd, cfg, "pull", "-q", by_digest).stdout.decode() == by_digest + "\n"
    assert image_id(hoistd, cfg, by_digest) == before
    # The repository can be pulled with every tag (-a).
    hoist(hoistd, cfg, "tag", name, f"{registry.addr}/hoist/busybox:v2")
    hoist(hoistd, cfg, "push", f"{registry.addr}/hoist/busybox:v2")
    hoist(hoistd, cfg, "rmi", f"{registry.addr}/hoist/busybox:v2")
    out = hoist(hoistd, cfg, "pull", "-a", f"{registry.addr}/hoist/busybox").stdout.decode()
    assert "v1: Pulling from" in out and "v2: Pulling from" in out
    assert image_id(hoistd, cfg, f"{registry.addr}/hoist/busybox:v2") == before
    p = hoist(hoistd, cfg, "pull", f"{registry.addr}/hoist/busybox:nope", check=False)
    assert p.returncode == 1 and b"manifest unknown" in p.stderr
    assert hoist(hoistd, cfg, "logout", registry.addr).stdout == f"Removing login credentials for {registry.addr}\n".encode()
    assert registry.addr not in json.load(open(os.path.join(cfg, "config.json")))["auths"]


def test_cross_repository_mount(hoistd, registry, tmp_path):
    cfg = str(tmp_path / "cfg")
    hoist(hoistd, cfg, "login", "-u", registry.user, "-p", registry.password, registry.addr)
    a, b = f"{registry.addr}/mount/a:1", f"{registry.addr}/mount/b:1"
    hoist(hoistd, cfg, "tag", "busybox", a)
    hoist(hoistd, cfg, "push", a)
    hoist(hoistd, cfg, "tag", "busybox", b)
    out = hoist(hoistd, cfg, "push", b).stdout.decode()
    assert ": Mounted from " in out and ": Pushed" not in out, out


@pytest.mark.parametrize("cli", docker_clis())
def test_docker_cli_through_hoistd(hoistd, registry, cli, tmp_path):
    cfg = str(tmp_path / "dockercfg")
    env = dict(os.environ, DOCKER_HOST=hoistd.host, DOCKER_CONFIG=cfg)

    def docker(*args, input=None, check=True):
        p = subprocess.run([cli, *args], input=input, capture_output=True, env=env, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"{cli} {args}: {p.stdout.decode()}\n{p.stderr.decode()}")
        return p

    p = docker("login", "-u", registry.user, "--password-stdin", registry.addr, input=b"nope\n", check=False)
    assert p.returncode != 0
    docker("login", "-u", registry.user, "--password-stdin", registry.addr, input=registry.password.encode())
    name = f"{registry.addr}/docker/cli:{os.path.basename(cli)}-{os.getpid()}"
    docker("tag", "busybox", name)
    out = docker("push", name).stdout.decode()
    assert "digest: sha256:" in out
    docker("rmi", name)
    out = docker("pull", name).stdout.decode()
    assert "Pulling from docker/cli" in out and name in out
    assert docker("image", "inspect", "-f", "{{.Id}}", name).stdout.decode().strip() == \
        docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.decode().strip()


def test_docker_py_pull_and_push(hoistd, registry):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=hoistd.host)
    auth = {"username": registry.user, "password": registry.password}
    repo = f"{registry.addr}/dockerpy/busybox"
    client.images.get("busybox").tag(repo, "py")
    out = client.images.push(repo, "py", auth_config=auth)
    assert "digest: sha256:" in out
    client.images.remove(f"{repo}:py")
    img = client.images.pull(repo, "py", auth_config=auth)
    assert img.id == client.images.get("busybox").id
    with pytest.raises(docker.errors.APIError):
        client.images.pull(repo, "py", auth_config={"username": registry.user, "password": "bad"})


def test_dockerd_pulls_what_hoist_pushed(hoistd, dockerd, registry, tmp_path):
    cfg = str(tmp_path / "cfg")
    name = f"{registry.addr}/interop/fromhoist:1"
    hoist(hoistd, cfg, "login", "-u", registry.user, "-p", registry.password, registry.addr)
    hoist(hoistd, cfg, "tag", "busybox", name)
    hoist(hoistd, cfg, "push", name)
    dockerd.docker("login", "-u", registry.user, "--password-stdin", registry.addr,
                   input=registry.password.encode())
    dockerd.docker("pull", name)
    got = dockerd.docker("image", "inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
    assert got == image_id(hoistd, cfg, name)
    # And back: dockerd pushes (gzip layers), hoist pulls it to the same image ID.
    back = f"{registry.addr}/interop/fromdocker:1"
    dockerd.docker("tag", name, back)
    dockerd.docker("push", back)
    hoist(hoistd, cfg, "pull", back)
    assert image_id(hoistd, cfg, back) == got


def test_push_all_tags_and_quiet(hoistd, registry, tmp_path):
    cfg = str(tmp_path / "cfg")
    hoist(hoistd, cfg, "login", "-u", registry.user, "-p", registry.password, registry.addr)
    repo = f"{registry.addr}/alltags/bb"
    for t in ("a", "b"):
        hoist(hoistd, cfg, "tag", "busybox", f"{repo}:{t}")
    out = hoist(hoistd, cfg, "push", "-a", repo).stdout.decode()
    assert "a: digest: sha256:" in out and "b: digest: sha256:" in out
    assert hoist(hoistd, cfg, "push", "-q", f"{repo}:a").stdout.decode() == f"{repo}:a\n"
    p = hoist(hoistd, cfg, "push", f"{repo}:missing", check=False)
    assert p.returncode == 1 and b"An image does not exist locally with the tag" in p.stderr


def test_skopeo_reads_what_hoist_pushed(hoistd, registry, tmp_path):
    import shutil
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    cfg = str(tmp_path / "cfg")
    name = f"{registry.addr}/skopeo/bb:1"
    hoist(hoistd, cfg, "login", "-u", registry.user, "-p", registry.password, registry.addr)
    hoist(hoistd, cfg, "tag", "busybox", name)
    out = hoist(hoistd, cfg, "push", name).stdout.decode()
    digest = [l for l in out.splitlines() if ": digest: " in l][0].split()[2]
    p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds",
                        f"{registry.user}:{registry.password}", f"docker://{name}"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    assert doc["Digest"] == digest
    p = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                        f"{registry.user}:{registry.password}", f"docker://{name}"],
                       capture_output=True, timeout=60)
    assert "sha256:" + __import__("hashlib").sha256(p.stdout).hexdigest() == digest
    assert json.loads(p.stdout)["config"]["digest"] == image_id(hoistd, cfg, name)
