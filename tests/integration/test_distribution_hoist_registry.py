"""hoist → hoist's own registry server (``hoist registry serve``) → hoist, when the
registry is present in this checkout (branch ``registry``); skipped otherwise."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import PY, REPO  # noqa: E402
from refregistry import free_port  # noqa: E402


def _have_registry() -> bool:
    try:
        import hoist.registry  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_registry(), reason="hoist registry server not in this checkout")


def _serve(root, *extra):
    addr = f"127.0.0.1:{free_port()}"
    log = open(root / "registry.log", "ab")
    proc = subprocess.Popen([PY, "-m", "hoist.cli.main", "registry", "serve", "--addr", addr,
                             "--root", str(root / "data"), *extra], stdout=log, stderr=log,
                            env=dict(os.environ, PYTHONPATH=REPO), start_new_session=True)
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{addr}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.skip("hoist registry serve did not start: " + open(root / "registry.log").read()[-1000:])
                time.sleep(0.05)
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def hoist_registry(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("hoistreg"))


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    import bcrypt
    root = tmp_path_factory.mktemp("hoistreg-token")
    (root / "htpasswd").write_bytes(b"carol:" + bcrypt.hashpw(b"tok-pw", bcrypt.gensalt(rounds=5)) + b"\n")
    yield from _serve(root, "--auth", "token", "--htpasswd", str(root / "htpasswd"))


def test_bearer_token_flow_against_hoist_registry(fresh_hoistd, token_registry, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=str(tmp_path / "cfg"))
    env.pop("DOCKER_HOST", None)

    def hoist(*args, input=None, ok=True):
        p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", fresh_hoistd.host, *args], capture_output=True,
                           env=env, timeout=300, input=input)
        if ok:
            assert p.returncode == 0, p.stderr.decode()
        return p

    hoist("image", "bootstrap", "busybox")
    name = f"{token_registry}/carol/bb:1"
    hoist("tag", "busybox", name)
    p = hoist("push", name, ok=False)
    assert p.returncode == 1 and b"unauthorized" in p.stderr.lower()
    p = hoist("login", "-u", "carol", "--password-stdin", token_registry, input=b"nope\n", ok=False)
    assert p.returncode == 1
    hoist("login", "-u", "carol", "--password-stdin", token_registry, input=b"tok-pw\n")
    before = hoist("image", "inspect", "-f", "{{.Id}}", name).stdout
    assert b"1: digest: sha256:" in hoist("push", name).stdout
    hoist("rmi", name)
    hoist("pull", name)
    assert hoist("image", "inspect", "-f", "{{.Id}}", name).stdout == before


def test_push_pull_round_trip_through_hoist_registry(fresh_hoistd, hoist_registry, tmp_path):
    hoistd = fresh_hoistd
    env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=str(tmp_path / "cfg"))
    env.pop("DOCKER_HOST", None)

    def hoist(*args):
        p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", hoistd.host, *args], capture_output=True,
                           env=env, timeout=300)
        assert p.returncode == 0, p.stderr.decode()
        return p.stdout.decode()

    hoist("image", "bootstrap", "busybox")
    name = f"{hoist_registry}/hoist/roundtrip:1"
    hoist("tag", "busybox", name)
    before = hoist("image", "inspect", "-f", "{{.Id}}", name).strip()
    assert "1: digest: sha256:" in hoist("push", name)
    assert "Layer already exists" in hoist("push", name)
    hoist("rmi", name)
    hoist("pull", name)
    assert hoist("image", "inspect", "-f", "{{.Id}}", name).strip() == before
