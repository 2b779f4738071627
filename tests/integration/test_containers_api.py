"""docker-py against hoistd: containers.run (detached and not), exec_run, logs, wait, remove."""
from __future__ import annotations

import os

import pytest

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def client(hoistd):
    c = docker.DockerClient(base_url=hoistd.host)
    yield c
    c.close()


def test_run_foreground(client):
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "exit 5"], remove=True)
    assert e.value.exit_status == 5


def test_run_detached_exec_logs_wait(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo a; exec sleep 1000"], detach=True)
    try:
        c.reload()
        assert c.status == "running"
        r = c.exec_run(["sh", "-c", "echo x; exit 2"])
        assert (r.exit_code, r.output) == (2, b"x\n")
        assert c.logs() == b"a\n"
        c.kill()
        assert c.wait()["StatusCode"] == 137
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)
