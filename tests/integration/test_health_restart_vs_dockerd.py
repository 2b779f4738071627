"""hoist's health checker and restart manager next to a real dockerd on the same container.

The engine modules are driven with ``docker exec`` as their probe against a container the
private dockerd also health-checks, so both judge the same process at the same time:
their State.Health must go through the same statuses with the same probe results. The
restart manager's decisions are replayed against what dockerd did to the same policies.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest

from hoist.engine.containers.health import HEALTHY, STARTING, UNHEALTHY, HealthChecker, HealthConfig
from hoist.engine.containers.restart import RestartManager, RestartPolicy

NET = ("--network", "none")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (private dockerd)")


@pytest.fixture(scope="module")
def d(hoistd, dockerd):
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    return dockerd


def inspect(d, cid: str) -> dict[str, Any]:
    return json.loads(d.docker("inspect", cid).stdout)[0]


def parse_time(s: str) -> float:
    base, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def wait_for(pred, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def exec_probe(d, cid: str):
    def probe(argv: list[str], timeout_s: float) -> tuple[int, bytes]:
        env = dict(os.environ, DOCKER_HOST=d.host)
        try:
            # The CLI's own start-up is not probe time; dockerd does not count exec set-up.
            p = subprocess.run(["docker", "exec", cid, *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout_s + 0.5, env=env)
        except subprocess.TimeoutExpired as e:
            return -1, e.output or b""
        return p.returncode, p.stdout
    return probe


def test_health_matches_dockerd(d):
    cid = d.docker("run", "-d", *NET, "--health-cmd", "cat /tmp/ok", "--health-interval", "200ms",
                   "--health-retries", "2", "--health-timeout", "5s", "busybox", "sleep", "120"
                   ).stdout.decode().strip()
    try:
        doc = inspect(d, cid)
        cfg = HealthConfig.parse(doc["Config"]["Healthcheck"], doc["Config"].get("Shell"))
        assert cfg is not None and cfg.argv == ("/bin/sh", "-c", "cat /tmp/ok")
        ours: list[dict[str, Any]] = []
        lock = threading.Lock()

        def on_change(h: dict[str, Any], changed: bool) -> None:
            with lock:
                ours.append(h)

        checker = HealthChecker(cid, cfg, exec_probe(d, cid), on_change,
                                started_at=parse_time(doc["State"]["StartedAt"]))
        assert checker.doc["Status"] == STARTING
        checker.start()

        def both(status: str) -> bool:
            theirs = inspect(d, cid)["State"]["Health"]
            with lock:
                mine = ours[-1] if ours else None
            return theirs["Status"] == status and mine is not None and mine["Status"] == status

        wait_for(lambda: both(UNHEALTHY), what="both unhealthy")
        theirs = inspect(d, cid)["State"]["Health"]
        with lock:
            mine = ours[-1]
        assert set(mine) == set(theirs) == {"Status", "FailingStreak", "Log"}
        assert mine["FailingStreak"] >= 2 and theirs["FailingStreak"] >= 2
        assert set(mine["Log"][-1]) == set(theirs["Log"][-1]) == {"Start", "End", "ExitCode", "Output"}
        assert (mine["Log"][-1]["ExitCode"], mine["Log"][-1]["Output"]) == \
            (theirs["Log"][-1]["ExitCode"], theirs["Log"][-1]["Output"]) == \
            (1, "cat: can't open '/tmp/ok': No such file or directory\n")

        d.docker("exec", cid, "touch", "/tmp/ok")
        wait_for(lambda: both(HEALTHY), what="both healthy")
        d.docker("exec", cid, "rm", "/tmp/ok")
        wait_for(lambda: both(UNHEALTHY), what="both unhealthy again")
        theirs = inspect(d, cid)["State"]["Health"]
        with lock:
            seq = [h["Status"] for h in ours]
            mine = ours[-1]
        assert len(mine["Log"]) == len(theirs["Log"]) == 5
        # Same journey: starting -> unhealthy -> healthy -> unhealthy (no other stops).
        journey = [s for i, s in enumerate(seq) if i == 0 or seq[i - 1] != s]
        assert journey in ([UNHEALTHY, HEALTHY, UNHEALTHY], [STARTING, UNHEALTHY, HEALTHY, UNHEALTHY])

        final = checker.stop()
        d.docker("stop", "-t", "0", cid)
        assert final["Status"] == inspect(d, cid)["State"]["Health"]["Status"] == UNHEALTHY
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_timeout_matches_dockerd(d):
    cid = d.docker("run", "-d", *NET, "--health-cmd", "sleep 5", "--health-interval", "100ms",
                   "--health-retries", "1", "--health-timeout", "1s", "busybox", "sleep", "120"
                   ).stdout.decode().strip()
    try:
        doc = inspect(d, cid)
        cfg = HealthConfig.parse(doc["Config"]["Healthcheck"])
        assert cfg is not None and cfg.timeout_ns == 1_000_000_000
        got: list[dict[str, Any]] = []
        done = threading.Event()

        def on_change(h: dict[str, Any], changed: bool) -> None:
            got.append(h)
            done.set()

        checker = HealthChecker(cid, cfg, exec_probe(d, cid), on_change,
                                started_at=parse_time(doc["State"]["StartedAt"]))
        checker.start()
        assert done.wait(20)
        checker.stop()
        wait_for(lambda: (inspect(d, cid)["State"]["Health"]["Log"] or [None])[0] is not None,
                 what="dockerd's first probe")
        theirs = inspect(d, cid)["State"]["Health"]
        assert got[0]["Status"] == theirs["Status"] == UNHEALTHY
        assert (got[0]["Log"][0]["ExitCode"], got[0]["Log"][0]["Output"]) == \
            (theirs["Log"][0]["ExitCode"], theirs["Log"][0]["Output"]) == \
            (-1, "Health check exceeded timeout (1s)")
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_no_healthcheck_matches_dockerd(d):
    cid = d.docker("create", *NET, "--no-healthcheck", "busybox", "true").stdout.decode().strip()
    try:
        doc = inspect(d, cid)
        assert doc["Config"]["Healthcheck"] == {"Test": ["NONE"]}
        assert HealthConfig.parse(doc["Config"]["Healthcheck"]) is None
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_on_failure_retries_match_dockerd(d):
    cid = d.docker("run", "-d", *NET, "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 3"
                   ).stdout.decode().strip()
    try:
        def settled() -> bool:
            st = inspect(d, cid)
            return st["RestartCount"] == 3 and not st["State"]["Running"] and not st["State"]["Restarting"]
        wait_for(settled, what="three restarts")  # 0.1 + 0.2 + 0.4 s of backoff
        doc = inspect(d, cid)
        policy = RestartPolicy.from_api(doc["HostConfig"]["RestartPolicy"])
        mgr = RestartManager(policy)
        decisions = [mgr.should_restart(3, False, 0.01) for _ in range(4)]
        assert [x.restart for x in decisions] == [True, True, True, False]
        assert decisions[-1].restart_count == doc["RestartCount"] == 3
        assert doc["State"]["ExitCode"] == 3
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_always_then_stop_matches_dockerd(d):
    cid = d.docker("run", "-d", *NET, "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 1"
                   ).stdout.decode().strip()
    try:
        wait_for(lambda: inspect(d, cid)["RestartCount"] >= 2, what="two restarts")
        d.docker("stop", "-t", "1", cid)
        count = inspect(d, cid)["RestartCount"]
        time.sleep(1.0)
        doc = inspect(d, cid)
        assert doc["RestartCount"] == count and not doc["State"]["Running"]
        mgr = RestartManager(RestartPolicy.from_api(doc["HostConfig"]["RestartPolicy"]), count)
        mgr.cancel()  # what docker stop does to the manager
        assert mgr.should_restart(doc["State"]["ExitCode"], True, 1.0).restart is False
    finally:
        d.docker("rm", "-f", cid, check=False)
