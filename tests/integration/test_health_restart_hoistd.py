"""Health checks and restart policies served by hoistd, driven by the real docker CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import start_hoistd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _state(d, name: str) -> dict:
    return json.loads(d.docker("inspect", name).stdout)[0]


def _until(fn, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_health_check_goes_healthy_then_unhealthy(hoistd):
    d = hoistd.docker
    name = "hc1"
    d("rm", "-f", name, check=False)
    since = str(int(time.time()))
    d("run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok && echo fine",
      "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "2s",
      "busybox", "sh", "-c", "sleep 0.5; touch /tmp/ok; exec sleep 1000")
    try:
        assert _state(hoistd, name)["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ok && echo fine"]
        h = _until(lambda: (_state(hoistd, name)["State"]["Health"]["Status"] == "healthy")
                   and _state(hoistd, name)["State"]["Health"], what="healthy")
        assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
        assert h["Log"][-1]["Output"] == "fine\n"
        assert "(healthy)" in d("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.decode()
        assert d("ps", "-q", "--filter", "health=healthy", "--filter", f"name={name}").stdout.strip()
        d("exec", name, "rm", "/tmp/ok")
        h = _until(lambda: (_state(hoistd, name)["State"]["Health"]["Status"] == "unhealthy")
                   and _state(hoistd, name)["State"]["Health"], what="unhealthy")
        assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
        assert len(h["Log"]) <= 5
        ev = d("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
               f"container={name}", "--format", "{{.Action}}").stdout.decode()
        assert "health_status: healthy" in ev and "health_status: unhealthy" in ev
    finally:
        d("rm", "-f", name, check=False)


def test_health_check_timeout_and_none(hoistd):
    d = hoistd.docker
    d("rm", "-f", "hc2", "hc3", check=False)
    d("run", "-d", "--name", "hc2", "--health-cmd", "sleep 5", "--health-interval", "300ms",
      "--health-timeout", "300ms", "busybox", "sleep", "1000")
    d("run", "-d", "--name", "hc3", "--no-healthcheck", "busybox", "sleep", "1000")
    try:
        log = _until(lambda: _state(hoistd, "hc2")["State"]["Health"]["Log"], what="a probe")
        assert log[0]["ExitCode"] == -1
        assert log[0]["Output"].startswith("Health check exceeded timeout (300ms)")
        assert "Health" not in _state(hoistd, "hc3")["State"]
        # the timed-out probes were killed, not left running in the container
        time.sleep(0.5)
        top = d("exec", "hc2", "ps", "-o", "args").stdout.decode()
        assert top.count("sleep 5") <= 1
        # bad values are refused at create, as dockerd does
        p = d("run", "-d", "--health-interval", "1us", "--health-cmd", "true", "busybox", check=False)
        assert p.returncode == 125 and b"Interval in Healthcheck cannot be less than" in p.stderr
    finally:
        d("rm", "-f", "hc2", "hc3", check=False)


def test_restart_on_failure_counts_and_stops(hoistd):
    d = hoistd.docker
    d("rm", "-f", "rs1", check=False)
    d("run", "-d", "--name", "rs1", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    try:
        doc = _until(lambda: (lambda s: s if s["RestartCount"] == 2 and not s["State"]["Running"]
                              else None)(_state(hoistd, "rs1")), what="two restarts")
        assert doc["State"]["ExitCode"] == 3 and doc["State"]["Status"] == "exited"
        time.sleep(1.0)
        assert _state(hoistd, "rs1")["RestartCount"] == 2
        # the CLI refuses --rm with --restart itself; the daemon does too
        import docker
        client = docker.DockerClient(base_url=f"unix://{hoistd.sock}")
        with pytest.raises(docker.errors.APIError, match="AutoRemove"):
            client.api.create_container("busybox", "true", host_config=client.api.create_host_config(
                auto_remove=True, restart_policy={"Name": "always"}))
        p = d("run", "-d", "--restart", "bogus", "busybox", "true", check=False)
        assert p.returncode == 125 and b"restart policy" in p.stderr
    finally:
        d("rm", "-f", "rs1", check=False)


def test_restart_always_backs_off_and_docker_stop_ends_it(hoistd):
    d = hoistd.docker
    d("rm", "-f", "rs2", check=False)
    d("run", "-d", "--name", "rs2", "--restart", "always", "busybox", "sh", "-c", "sleep 0.1; exit 1")
    try:
        _until(lambda: _state(hoistd, "rs2")["RestartCount"] >= 3, what="three restarts")
        d("stop", "-t", "1", "rs2")
        s = _state(hoistd, "rs2")
        assert s["State"]["Running"] is False and s["State"]["Restarting"] is False
        n = s["RestartCount"]
        time.sleep(1.5)
        assert _state(hoistd, "rs2")["RestartCount"] == n
        assert _state(hoistd, "rs2")["State"]["Status"] == "exited"
    finally:
        d("rm", "-f", "rs2", check=False)
    assert d("ps", "-aq", "--filter", "name=rs2").stdout.strip() == b""


def test_policies_at_daemon_start(tmp_path):
    daemon = start_hoistd(str(tmp_path))
    try:
        daemon.hoist("image", "bootstrap", "busybox")
        for name, policy in (("al", "always"), ("us", "unless-stopped"), ("no", "no")):
            daemon.docker("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000")
        for name in ("al", "us"):
            daemon.docker("stop", "-t", "0", name)
        daemon.stop(signal.SIGKILL)
        daemon = start_hoistd(str(tmp_path))
        # always comes back even after a manual stop; unless-stopped does not; the
        # running one with no policy was live-restored
        _until(lambda: _state(daemon, "al")["State"]["Running"], what="always restarted")
        assert _state(daemon, "us")["State"]["Running"] is False
        assert _state(daemon, "no")["State"]["Running"] is True
        assert daemon.docker("exec", "al", "echo", "x").stdout == b"x\n"
    finally:
        daemon.docker("rm", "-f", "al", "us", "no", check=False)
        daemon.stop()
