"""The store checks itself: corruption is found, repair removes only what is untrustworthy,
and garbage collection leaves nothing of a removed image behind."""
from __future__ import annotations

import json
import os

import docker
import pytest

from archives import docker_archive, simple_layer


@pytest.fixture
def api(fresh_hoistd):
    c = docker.APIClient(base_url=fresh_hoistd.host, version="1.47", timeout=60)
    yield c
    c.close()


def _load(api, data):
    res = api._post(api._url("/images/load"), data=data)
    assert res.status_code == 200, res.text


def _check(api, repair=False):
    return api._result(api._post(api._url("/hoist/system/check"), params={"repair": int(repair)}), json=True)


def _blobs(root):
    base = os.path.join(root, "content", "blobs", "sha256")
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _snapshots(root):
    return sorted(n for n in os.listdir(os.path.join(root, "snapshots")) if n.isdigit())


def test_clean_store_checks_ok(fresh_hoistd, api):
    _load(api, docker_archive([simple_layer(), simple_layer({"b": b"2"})], ["integ/a:1"]))
    rep = _check(api)
    assert rep["OK"] and rep["Problems"] == []
    assert rep["Checked"]["images"] == 1 and rep["Checked"]["layers"] == 2
    p = fresh_hoistd.hoist("system", "check", check=False)
    assert p.returncode == 0


def test_corrupt_blob_found_and_repaired(fresh_hoistd, api):
    layer = simple_layer({"x": b"x" * 5000})
    _load(api, docker_archive([layer], ["integ/c:1"]))
    info = api.inspect_image("integ/c:1")
    layer_digest = info["RootFS"]["Layers"][0]
    path = os.path.join(fresh_hoistd.root, "content", "blobs", "sha256", layer_digest[7:])
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"CORRUPTED")
    rep = _check(api)
    assert not rep["OK"]
    assert any(layer_digest in p and "corrupt" in p for p in rep["Problems"])
    p = fresh_hoistd.hoist("system", "check", check=False)
    assert p.returncode == 1
    rep = _check(api, repair=True)
    assert any("removed corrupt blob" in r for r in rep["Repaired"])
    assert not os.path.exists(path)
    # the unpacked layer still serves the image; a missing blob is reported, not hidden
    rep = _check(api)
    assert any("missing" in p for p in rep["Problems"])


def test_missing_snapshot_reunpacked(fresh_hoistd, api):
    _load(api, docker_archive([simple_layer()], ["integ/s:1"]))
    snaps = _snapshots(fresh_hoistd.root)
    assert len(snaps) == 1
    import shutil
    shutil.rmtree(os.path.join(fresh_hoistd.root, "snapshots", snaps[0]))
    rep = _check(api)
    assert any("not unpacked" in p or "missing" in p for p in rep["Problems"])
    _check(api, repair=True)
    _check(api, repair=True)
    assert _check(api)["Problems"] == []


def test_rmi_collects_garbage(fresh_hoistd, api):
    before_blobs, before_snaps = _blobs(fresh_hoistd.root), _snapshots(fresh_hoistd.root)
    _load(api, docker_archive([simple_layer({"g": b"1"}), simple_layer({"h": b"2"})], ["integ/gc:1"]))
    assert len(_snapshots(fresh_hoistd.root)) == len(before_snaps) + 2
    api.remove_image("integ/gc:1")
    assert _blobs(fresh_hoistd.root) == before_blobs
    assert _snapshots(fresh_hoistd.root) == before_snaps


def test_shared_layers_survive_removal_of_one_image(fresh_hoistd, api):
    base = simple_layer({"base": b"b"})
    _load(api, docker_archive([base], ["integ/base:1"]))
    _load(api, docker_archive([base, simple_layer({"top": b"t"})], ["integ/child:1"]))
    api.remove_image("integ/child:1")
    assert api.inspect_image("integ/base:1")
    assert _check(api)["Problems"] == []
    assert len(_snapshots(fresh_hoistd.root)) == 1


def test_data_root_and_socket_modes(fresh_hoistd):
    assert os.stat(fresh_hoistd.root).st_mode & 0o777 == 0o710
    assert os.stat(fresh_hoistd.sock).st_mode & 0o777 == 0o660


def test_one_daemon_per_data_root(fresh_hoistd, tmp_path):
    import subprocess
    import sys
    other = str(tmp_path / "other.sock")
    p = subprocess.run([sys.executable, "-m", "hoist.daemon", "--host", "unix://" + other,
                        "--data-root", fresh_hoistd.root], capture_output=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert p.returncode == 125
    assert b"in use by another hoistd" in p.stderr
    assert not os.path.exists(other)
