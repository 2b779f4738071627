"""docker-py's APIClient against hoistd where its defaults differ from the docker CLI's
(the CLI always sends what it means; docker-py leans on dockerd's readings)."""
from __future__ import annotations

import os

import pytest

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def api(hoistd):
    c = docker.APIClient(base_url=hoistd.host)
    yield c
    c.close()


@pytest.fixture(scope="module")
def sleeper(api):
    cid = api.create_container("busybox", ["sleep", "1000"])["Id"]
    api.start(cid)
    yield cid
    api.remove_container(cid, force=True)


def test_tty_exec_started_without_tty_is_framed(api, sleeper):
    # The start request's Tty (false by default in docker-py) decides the framing:
    # the TTY's output arrives as stdout frames.
    eid = api.exec_create(sleeper, ["sh", "-c", "echo out; echo err >&2"], tty=True)
    assert api.exec_start(eid, demux=True) == (b"out\r\nerr\r\n", None)
    eid = api.exec_create(sleeper, ["echo", "raw"], tty=True)
    assert api.exec_start(eid, tty=True) == b"raw\r\n"


def test_wait_returns_on_exit_under_restart_policy(api):
    # restart=always brings the container back as running + restarting before anyone
    # looks: wait (not-running) still returns on that exit, as dockerd's does.
    cid = api.create_container("busybox", ["sh", "-c", "exit 3"], host_config=api.create_host_config(
        restart_policy={"Name": "always"}))["Id"]
    try:
        api.start(cid)
        assert api.wait(cid, timeout=20)["StatusCode"] == 3
    finally:
        api.remove_container(cid, force=True)


def test_log_config_default_and_unknown_driver(api):
    # An empty Type is the daemon's default driver, shown as such by inspect; a name
    # no driver has is refused at create.
    hc = api.create_host_config(log_config={"Type": "", "Config": {"max-file": "3"}})
    cid = api.create_container("busybox", ["true"], host_config=hc)["Id"]
    try:
        assert api.inspect_container(cid)["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"max-file": "3"}}
    finally:
        api.remove_container(cid, force=True)
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config=api.create_host_config(
            log_config={"Type": "asdf", "Config": {}}))
    assert e.value.status_code == 400
    assert "no log driver named 'asdf'" in str(e.value)


def test_prune_counts_the_writable_layers(fresh_hoistd):
    # a daemon of its own: prune removes every stopped container
    fresh_hoistd.hoist("image", "bootstrap", "busybox")
    api = docker.APIClient(base_url=fresh_hoistd.host)
    cid = api.create_container("busybox", ["sh", "-c", "head -c 50000 /dev/zero > /blob"])["Id"]
    api.start(cid)
    assert api.wait(cid)["StatusCode"] == 0
    res = api.prune_containers()
    assert res["ContainersDeleted"] == [cid]
    assert res["SpaceReclaimed"] >= 50000
    api.close()


def test_exec_detach_keys_spelled_as_docker_py_does(api, sleeper):
    # docker-py sends {"detachKeys": ...}; Go's JSON decoding matches it to DetachKeys.
    eid = api.exec_create(sleeper, "cat", stdin=True, tty=True, detach_keys="ctrl-x")
    assert api.exec_inspect(eid)["DetachKeys"] == "ctrl-x"
    sock = api.exec_start(eid, tty=True, socket=True)
    try:
        sock._sock.sendall(b"\x18")  # ctrl-x alone detaches
        sock._sock.settimeout(10)
        while sock._sock.recv(4096):
            pass
    finally:
        sock.close()
    assert api.exec_inspect(eid)["Running"]  # detached, the process lives on


def test_inspect_lists_bind_mounts(api, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    hc = api.create_host_config(binds=[f"{a}:/a:ro"], mounts=[
        docker.types.Mount("/b", str(b), type="bind", propagation="rshared"),
        docker.types.Mount("/t", None, type="tmpfs")])
    cid = api.create_container("busybox", ["true"], host_config=hc)["Id"]
    try:
        got = {m["Destination"]: m for m in api.inspect_container(cid)["Mounts"]}
    finally:
        api.remove_container(cid, force=True)
    assert got == {
        "/a": {"Type": "bind", "Source": str(a), "Destination": "/a", "Mode": "ro", "RW": False,
               "Propagation": "rprivate"},
        "/b": {"Type": "bind", "Source": str(b), "Destination": "/b", "Mode": "", "RW": True,
               "Propagation": "rshared"},
        "/t": {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
               "Propagation": ""},
    }


def test_prune_filters(fresh_hoistd):
    fresh_hoistd.hoist("image", "bootstrap", "busybox")
    api = docker.APIClient(base_url=fresh_hoistd.host)
    keep = api.create_container("busybox", ["true"], labels={"keep": "yes"})["Id"]
    drop = api.create_container("busybox", ["true"], labels={"keep": "no"})["Id"]
    bare = api.create_container("busybox", ["true"])["Id"]
    with pytest.raises(docker.errors.APIError) as e:
        api.prune_containers(filters={"dangling": True})
    assert e.value.status_code == 400
    assert api.prune_containers(filters={"until": "1h"})["ContainersDeleted"] is None
    assert api.prune_containers(filters={"label": "keep=no"})["ContainersDeleted"] == [drop]
    assert api.prune_containers(filters={"label!": "keep"})["ContainersDeleted"] == [bare]
    assert [c["Id"] for c in api.containers(all=True)] == [keep]
    api.close()


def test_storage_opt_is_refused_not_ignored(api):
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config=api.create_host_config(
            storage_opt={"size": "120G"}))
    assert e.value.status_code == 400
    assert "--storage-opt" in str(e.value)
