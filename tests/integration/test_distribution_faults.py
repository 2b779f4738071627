"""A registry killed in the middle of a push: the push retries and succeeds once the
registry is back, and neither the registry nor the local store is left inconsistent."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from archives import docker_archive, file_entry, tar_bytes  # noqa: E402
from conftest import PY, REPO  # noqa: E402
from refregistry import RefRegistry, available, free_port  # noqa: E402

pytestmark = pytest.mark.skipif(not available(), reason="docker-registry is not installed")


def _uploading(root: str) -> bool:
    for dirpath, _, files in os.walk(os.path.join(root, "data")):
        if "_uploads" in dirpath and "data" in files and os.path.getsize(os.path.join(dirpath, "data")) > 0:
            return True
    return False


def test_registry_killed_mid_push_then_push_succeeds(fresh_hoistd, tmp_path):
    d = fresh_hoistd
    layers = [tar_bytes([file_entry(f"big{i}.bin", os.urandom(48 * 1024 * 1024))]) for i in range(2)]
    reg = RefRegistry(f"127.0.0.1:{free_port()}", str(tmp_path / "reg"), None, "alice", "pw", True)
    os.makedirs(reg.root)
    reg.start()
    name = f"{reg.addr}/faults/big:1"
    d.hoist("load", input=docker_archive(layers, [name]))
    cfg = str(tmp_path / "cfg")
    env = dict(os.environ, PYTHONPATH=REPO, DOCKER_CONFIG=cfg)
    base = [PY, "-m", "hoist.cli.main", "-H", d.host]
    subprocess.run([*base, "login", "-u", "alice", "-p", "pw", reg.addr], env=env, check=True,
                   capture_output=True)
    push = subprocess.Popen([*base, "push", name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not _uploading(reg.root) and time.time() < deadline and push.poll() is None:
            time.sleep(0.005)
        assert push.poll() is None, "push finished before the registry could be killed"
        reg.kill()  # SIGKILL mid-upload
        time.sleep(0.3)
        reg.start()  # same port, same storage: the client's retries find it again
        out, err = push.communicate(timeout=120)
    finally:
        if push.poll() is None:
            push.kill()
    try:
        assert push.returncode == 0, err.decode()
        assert b"1: digest: sha256:" in out
        image_id = d.hoist("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()
        d.hoist("rmi", name)
        subprocess.run([*base, "pull", name], env=env, check=True, capture_output=True)
        assert d.hoist("image", "inspect", "-f", "{{.Id}}", name).stdout.strip() == image_id
        check = d.hoist("system", "check").stdout.decode()
        assert "problem" not in check.lower() or "0 problem" in check.lower(), check
    finally:
        reg.stop()


def test_push_to_a_dead_registry_fails_clearly_then_succeeds(tmp_path):
    import io

    from hoist.distribution.credentials import AuthConfig
    from hoist.distribution.push import push_image
    from hoist.distribution.registry import RegistryClient
    from hoist.engine.check import check_store
    from hoist.engine.daemon_state import Engine
    from hoist.errors import RegistryError

    reg = RefRegistry(f"127.0.0.1:{free_port()}", str(tmp_path / "reg"), None, "alice", "pw", True)
    os.makedirs(reg.root)
    reg.start()
    engine = Engine.open(str(tmp_path / "root"), "native")
    name = f"{reg.addr}/dead/img"
    engine.archives.load(io.BytesIO(docker_archive([tar_bytes([file_entry("f", os.urandom(1 << 20))])],
                                                   [name + ":1"])))
    auth = AuthConfig("alice", "pw", reg.addr)
    try:
        client = RegistryClient(reg.addr, auth, retries=1, backoff=0.01)
        client.ping()  # the scheme and the challenge are known, then the registry dies
        reg.kill()
        with pytest.raises(RegistryError, match="Connection refused|failed|refused"):
            push_image(engine.store, engine.images, name, "1", auth=auth, emit=lambda m: None, client=client)
        client.close()
        assert check_store(engine.store).to_json()["OK"]
        reg.start()
        msgs = []
        push_image(engine.store, engine.images, name, "1", auth=auth, emit=msgs.append)
        assert any(m.get("aux") for m in msgs)
        assert check_store(engine.store).to_json()["OK"]
    finally:
        reg.stop()
