"""Load and import treat archives as hostile. Every case checks the error, that no image
became visible, that a victim directory beside the data root is untouched, that nothing
appeared outside the data root, and that the store still checks clean."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import stat
import tarfile
import threading
import time
import zlib

import docker
import pytest

from archives import (config_for, dir_entry, docker_archive, file_entry, link_entry, oci_archive, sha,
                      simple_layer, tar_bytes)
from conftest import start_hoistd

LIMIT = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("hostile"))
    victim = os.path.join(base, "victim")
    os.mkdir(victim)
    with open(os.path.join(victim, "file"), "w") as f:
        f.write("precious\n")
    d = start_hoistd(base, extra=("--max-layer-size", str(LIMIT)))
    api = docker.APIClient(base_url=d.host, version="1.47", timeout=120)
    yield d, api, victim
    api.close()
    d.stop()


def _snapshot_outside(base: str, root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if dirpath.startswith(root):
            continue
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if p.startswith(root):
                continue
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size if not stat.S_ISDIR(st.st_mode) else 0, st.st_mtime_ns
                      if not stat.S_ISDIR(st.st_mode) else 0)
    return out


def _post(api, path, data, **params):
    return api._post(api._url(path), data=data, params=params, headers={"Content-Type": "application/x-tar"})


def _images(api):
    return sorted(i["Id"] for i in api.images(all=True))


def expect_refused(env, path, data, *, status=400, match="", **params):
    d, api, victim = env
    before_images = _images(api)
    before = _snapshot_outside(d.base, d.root)
    res = _post(api, path, data, **params)
    body = res.text
    assert res.status_code == status, body
    if match:
        assert match.lower() in body.lower(), body
    assert _images(api) == before_images
    assert _snapshot_outside(d.base, d.root) == before
    with open(os.path.join(victim, "file")) as f:
        assert f.read() == "precious\n"
    assert sorted(os.listdir(victim)) == ["file"]
    chk = api._result(api._post(api._url("/hoist/system/check")), json=True)
    assert chk["Problems"] == [], chk
    return body


# --------------------------------------------------------------- layer contents

def layer_cases():
    big_zeros = gzip.compress(tar_bytes([file_entry("zeros", b"\0" * (LIMIT + 1024 * 1024))]), 9)
    yield "dotdot", simple_layer({"../victim/file": b"pwned"}), "escapes"
    yield "absolute", tar_bytes([file_entry("/etc/evil", b"x")]), ""
    yield "symlink-then-file", tar_bytes([link_entry("evil", "../victim"), file_entry("evil/file", b"pwned")]), ""
    yield "abs-symlink-then-file", tar_bytes([link_entry("evil", "/"), file_entry("evil/etc/pwned", b"x")]), ""
    yield "hardlink-out", tar_bytes([link_entry("h", "../victim/file", hard=True)]), ""
    yield "hardlink-abs", tar_bytes([link_entry("h", "/etc/passwd", hard=True)]), ""
    yield "whiteout-escape", tar_bytes([file_entry("../.wh.victim")]), ""
    yield "whiteout-dotdot", tar_bytes([dir_entry("a"), file_entry("a/.wh..."),]), ""
    yield "truncated", simple_layer({"big": b"x" * 100000})[:30000], "truncated"
    yield "gzip-bomb", big_zeros, "limit"


@pytest.mark.parametrize("name,layer,match", list(layer_cases()), ids=lambda x: x if isinstance(x, str) else "")
def test_hostile_layer_in_load(env, name, layer, match):
    expect_refused(env, "/images/load", docker_archive([layer], [f"evil/{name}:1"]), match=match)


@pytest.mark.parametrize("name,layer,match", list(layer_cases()), ids=lambda x: x if isinstance(x, str) else "")
def test_hostile_layer_in_import(env, name, layer, match):
    if name in ("truncated", "gzip-bomb"):
        expect_refused(env, "/images/create", layer, match=match, fromSrc="-", repo=f"evil/imp-{name}", tag="1")
        return
    # import stores the tarball as the layer; the refusal comes when it is unpacked.
    expect_refused(env, "/images/create", layer, fromSrc="-", repo=f"evil/imp-{name}", tag="1")


def test_corrupt_gzip(env):
    good = gzip.compress(simple_layer())
    bad = good[:20] + bytes(b ^ 0x55 for b in good[20:40]) + good[40:]
    expect_refused(env, "/images/create", bad, fromSrc="-", repo="evil/gz", tag="1")


# --------------------------------------------------------------- archive structure

def test_archive_entry_escapes(env):
    layer = simple_layer()
    data = docker_archive([layer], ["evil/a:1"], extra=[file_entry("../../outside", b"x")])
    expect_refused(env, "/images/load", data, match="outside")
    data = docker_archive([layer], ["evil/a:1"], extra=[file_entry("/abs", b"x")])
    expect_refused(env, "/images/load", data)


def test_manifest_paths_escape(env):
    layer = simple_layer()
    cfg = config_for([layer])
    manifest = json.dumps([{"Config": "../../etc/passwd", "RepoTags": ["evil/m:1"], "Layers": []}]).encode()
    expect_refused(env, "/images/load", docker_archive([layer], config=cfg, manifest=manifest))
    manifest = json.dumps([{"Config": hashlib.sha256(cfg).hexdigest() + ".json", "RepoTags": ["evil/m:1"],
                            "Layers": ["/etc/passwd"]}]).encode()
    expect_refused(env, "/images/load", docker_archive([layer], config=cfg, manifest=manifest))


def test_symlinked_layer_pointing_out(env):
    layer = simple_layer()
    cfg = config_for([layer])
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    entries = [link_entry("l/layer.tar", "../../../victim/file"), file_entry(cfg_name, cfg),
               file_entry("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": ["evil/s:1"],
                                                        "Layers": ["l/layer.tar"]}]).encode())]
    expect_refused(env, "/images/load", tar_bytes(entries))


def test_diff_id_mismatch(env):
    layer = simple_layer()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [sha(b"something else")]}}).encode()
    expect_refused(env, "/images/load", docker_archive([layer], ["evil/d:1"], config=cfg), match="digest")


def test_oci_blob_digest_mismatch(env):
    layer = simple_layer()
    expect_refused(env, "/images/load", oci_archive([layer], "docker.io/evil/o:1", corrupt_blob=sha(layer)),
                   match="digest")


def test_duplicate_json_keys(env):
    layer = simple_layer()
    good = config_for([layer])
    dup = good[:-1] + b', "os": "windows"}'
    expect_refused(env, "/images/load", docker_archive([layer], ["evil/dup:1"], config=dup), match="duplicate")
    cfg_name = hashlib.sha256(good).hexdigest() + ".json"
    manifest = (b'[{"Config": "%s", "Config": "x", "RepoTags": [], "Layers": []}]' % cfg_name.encode())
    expect_refused(env, "/images/load", docker_archive([layer], config=good, manifest=manifest), match="duplicate")


def test_oversized_manifest(env):
    layer = simple_layer()
    cfg = config_for([layer])
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    entries = [{"Config": cfg_name, "RepoTags": ["evil/big:1"], "Layers": []}]
    manifest = json.dumps(entries + [{"pad": "x" * (4 * 1024 * 1024)}]).encode()
    expect_refused(env, "/images/load", docker_archive([layer], config=cfg, manifest=manifest))


def test_invalid_reference(env):
    layer = simple_layer()
    expect_refused(env, "/images/load", docker_archive([layer], ["Invalid Name:1"]), match="reference")
    expect_refused(env, "/images/create", simple_layer(), fromSrc="-", repo="lower/CASE", tag="1")
    expect_refused(env, "/images/create", simple_layer(), fromSrc="-", repo="ok/name", tag="bad tag")


def test_garbage_and_empty(env):
    expect_refused(env, "/images/load", os.urandom(5000))
    expect_refused(env, "/images/load", b"")
    expect_refused(env, "/images/load", tar_bytes([file_entry("hello", b"x")]), match="manifest.json")


# --------------------------------------------------------------- data preserved as data

def test_setuid_devices_and_caps_preserved_as_data(env):
    d, api, victim = env
    suid = file_entry("bin/su", b"#!/bin/sh\n", mode=0o4755)
    dev = tarfile.TarInfo("dev/sda")
    dev.type = tarfile.BLKTYPE
    dev.devmajor, dev.devminor = 8, 0
    cap = tarfile.TarInfo("bin/ping")
    cap.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12}
    layer = tar_bytes([dir_entry("bin"), dir_entry("dev"), suid, (dev, None), (cap, b"")])
    res = _post(api, "/images/load", docker_archive([layer], ["data/only:1"]))
    assert res.status_code == 200, res.text
    info = api.inspect_image("data/only:1")
    top = info["GraphDriver"]["Data"].get("UpperDir") or info["GraphDriver"]["Data"]["Dir"]
    st = os.lstat(os.path.join(top, "bin/su"))
    assert st.st_mode & 0o7777 == 0o4755
    assert os.getxattr(os.path.join(top, "bin/ping"), "security.capability")[:4] == b"\x01\x00\x00\x02"
    dev_st = os.lstat(os.path.join(top, "dev/sda"))
    assert stat.S_ISBLK(dev_st.st_mode) and os.major(dev_st.st_rdev) == 8
    # The unpacked tree sits in a root-only directory: nothing on the host can use a
    # setuid file or device node in it.
    snaps = os.path.join(d.root, "snapshots")
    assert os.stat(snaps).st_mode & 0o077 == 0
    assert os.stat(d.root).st_mode & 0o007 == 0
    # save returns the layer byte for byte
    saved = b"".join(api.get_image("data/only:1"))
    with tarfile.open(fileobj=io.BytesIO(saved)) as t:
        assert t.extractfile("blobs/sha256/" + sha(layer)[7:]).read() == layer


def test_absolute_symlinks_are_legal_and_stay_inside(env):
    d, api, victim = env
    layer = tar_bytes([dir_entry("etc"), link_entry("etc/alias", "/etc/passwd"),
                       link_entry("etc/victim", os.path.join(victim, "file"))])
    res = _post(api, "/images/load", docker_archive([layer], ["data/abslink:1"]))
    assert res.status_code == 200, res.text
    info = api.inspect_image("data/abslink:1")
    top = info["GraphDriver"]["Data"].get("UpperDir") or info["GraphDriver"]["Data"]["Dir"]
    assert os.readlink(os.path.join(top, "etc/alias")) == "/etc/passwd"
    with open(os.path.join(victim, "file")) as f:
        assert f.read() == "precious\n"


# --------------------------------------------------------------- concurrency and crashes

def test_two_loads_at_once(env):
    d, api, victim = env
    data = docker_archive([simple_layer({"c": os.urandom(3_000_000)})], ["conc/img:1"])
    results = []

    def load():
        c = docker.APIClient(base_url=d.host, version="1.47", timeout=120)
        results.append(_post(c, "/images/load", data).status_code)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200]
    assert api.inspect_image("conc/img:1")["RepoTags"] == ["conc/img:1"]


def test_sigkill_during_load_leaves_consistent_store(tmp_path):
    d = start_hoistd(str(tmp_path))
    try:
        layers = [simple_layer({f"f{i}": os.urandom(20_000_000)}) for i in range(3)]
        data = docker_archive(layers, ["crash/img:1"])
        api = docker.APIClient(base_url=d.host, version="1.47", timeout=120)

        def slow_body():
            # A slow client keeps the load in flight long enough to kill it mid-way.
            for i in range(0, len(data), 1 << 20):
                yield data[i:i + (1 << 20)]
                time.sleep(0.01)

        def load():
            try:
                _post(api, "/images/load", slow_body())
            except Exception:
                pass

        t = threading.Thread(target=load)
        t.start()
        # Kill once the load is under way: blobs are streaming into the store.
        deadline = time.time() + 20
        ingest = os.path.join(d.root, "content", "ingest")
        while time.time() < deadline and not (os.path.isdir(ingest) and os.listdir(ingest)):
            time.sleep(0.005)
        assert os.listdir(ingest), "the load never started"
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        t.join()
        d2 = start_hoistd(str(tmp_path), root=d.root)
        try:
            p = d2.hoist("system", "check", check=False)
            assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
            api2 = docker.APIClient(base_url=d2.host, version="1.47", timeout=120)
            assert [i for i in api2.images() if "crash/img:1" in (i["RepoTags"] or [])] == []
            # and the same load now succeeds
            assert _post(api2, "/images/load", data).status_code == 200
            chk = api2._result(api2._post(api2._url("/hoist/system/check")), json=True)
            assert chk["Problems"] == []
        finally:
            d2.stop()
    finally:
        d.stop()
