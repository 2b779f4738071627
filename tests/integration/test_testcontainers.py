"""testcontainers-python against hoistd: a container started, waited on through its
logs, exec'd into and torn down, as test suites use it (no Ryuk: it is pulled from
Docker Hub, and nothing here may pull)."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
tc = pytest.importorskip("testcontainers.core.container")


def test_testcontainers_lifecycle(hoistd, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{hoistd.sock}")
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    import time

    c = tc.DockerContainer("busybox").with_command("sh -c 'echo ready; exec sleep 100'") \
        .with_env("GREETING", "hi")
    with c:
        deadline = time.monotonic() + 10  # what wait_for_logs does, in any 4.x version
        while b"ready" not in c.get_logs()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = c.exec(["sh", "-c", "echo $GREETING; exit 3"])
        assert (r.exit_code, r.output) == (3, b"hi\n")
        assert c.get_logs() == (b"ready\n", b"")
        wrapped = c.get_wrapped_container()
        wrapped.reload()
        cid = wrapped.id
        assert wrapped.status == "running"
    ids = hoistd.docker("ps", "-aq", "--no-trunc").stdout.decode().split()
    assert cid not in ids  # stopped and removed on exit
