"""docker-py against hoistd: containers.run (detached and not), exec_run, logs, wait, remove."""
from __future__ import annotations

import os
import time

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


def test_request_threads_do_not_leak_fds(hoistd):
    """Each request runs on its own thread with its own SQLite connection: the
    connection must close with the thread, not wait for a garbage collection."""

    client = docker.DockerClient(base_url=f"unix://{hoistd.sock}")
    pid = hoistd.proc.pid

    def db_fds() -> int:
        n = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "metadata" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    n += 1
            except OSError:
                pass
        return n

    import socket

    def one_request() -> None:  # a new connection each time: a new server thread
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(hoistd.sock)
            s.sendall(b"GET /containers/json?all=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass

    client.containers.list(all=True)
    one_request()
    before = db_fds()
    for _ in range(60):
        one_request()
    time.sleep(0.3)
    assert db_fds() <= before + 4
