"""The real docker CLIs against hoistd: run, logs, exec, stop, kill, rm, ps, inspect, wait."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import start_hoistd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CLIS = [c for c in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.exists(c)]


def _mounts(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if root in l]


@pytest.mark.parametrize("cli", CLIS)
def test_run_rm_echo(hoistd, cli):
    p = hoistd.docker("run", "--rm", "busybox", "echo", "hi", docker=cli)
    assert p.stdout == b"hi\n"
    p = hoistd.docker("run", "--rm", "busybox", "sh", "-c", "echo e >&2; exit 3", docker=cli, check=False)
    assert p.returncode == 3 and b"e\n" in p.stderr
    assert not _mounts(hoistd.root)


def test_detached_lifecycle(hoistd):
    d = hoistd.docker
    cid = d("run", "-d", "--name", "life", "--label", "k=v", "busybox", "sh", "-c",
            "echo one; echo two >&2; exec sleep 1000").stdout.decode().strip()
    try:
        assert len(cid) == 64
        assert d("ps", "-q", "--no-trunc", "--filter", "label=k=v").stdout.decode().split() == [cid]
        doc = json.loads(d("inspect", "life").stdout)[0]
        assert doc["Name"] == "/life" and doc["State"]["Running"] and doc["State"]["Pid"] > 0
        assert doc["Config"]["Labels"]["k"] == "v" and doc["HostConfig"]["NetworkMode"] == "bridge"
        p = d("exec", "life", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
        assert (p.returncode, p.stdout, p.stderr) == (4, b"out\n", b"err\n")
        assert d("exec", "-i", "life", "cat", input=b"piped").stdout == b"piped"
        assert d("exec", "-u", "nobody", "-w", "/tmp", "-e", "X=y", "life", "sh", "-c",
                 "id -u; pwd; echo $X").stdout == b"65534\n/tmp\ny\n"
        logs = d("logs", "life")
        assert logs.stdout == b"one\n" and logs.stderr == b"two\n"
        tail = d("logs", "--tail", "1", "life")
        assert (tail.stdout, tail.stderr) == (b"", b"two\n")
        p = d("rm", "life", check=False)
        assert p.returncode == 1 and b"You cannot remove a running container" in p.stderr
        d("pause", "life")
        assert json.loads(d("inspect", "life").stdout)[0]["State"]["Status"] == "paused"
        d("unpause", "life")
        d("stop", "-t", "1", "life")
        assert json.loads(d("inspect", "life").stdout)[0]["State"]["ExitCode"] == 137  # pid 1 ignores TERM: KILL after -t
        assert d("wait", "life").stdout == b"137\n"
        d("start", "life")
        d("kill", "-s", "KILL", "life")
        assert json.loads(d("inspect", "life").stdout)[0]["State"]["ExitCode"] == 137
        d("rename", "life", "life2")
        p = d("rm", "life", check=False)
        assert b"No such container: life" in p.stderr
    finally:
        d("rm", "-f", "life", "life2", check=False)
    assert not _mounts(hoistd.root)
    assert not os.path.exists(os.path.join(hoistd.root, "containers", cid))


def test_bad_input(hoistd):
    d = hoistd.docker
    p = d("run", "--rm", "busybox", "nosuchcmd", check=False)
    assert p.returncode == 127 and b"executable file not found" in p.stderr
    p = d("run", "--rm", "nosuchimage:1", "true", check=False)
    assert p.returncode == 125
    d("create", "--name", "dup", "busybox", "true")
    try:
        p = d("create", "--name", "dup", "busybox", "true", check=False)
        assert p.returncode != 0 and b'The container name "/dup" is already in use' in p.stderr
        p = d("create", "--name", "-bad", "busybox", "true", check=False)
        assert p.returncode != 0
        p = d("run", "-m", "1m", "busybox", "true", check=False)
        assert p.returncode == 125 and b"Minimum memory limit" in p.stderr
        p = d("create", "-v", "/nonexistent-src:/x", "busybox", "true", check=False)
        assert p.returncode != 0 and b"bind source path does not exist" in p.stderr
        p = d("stop", "dup")  # a stopped container: 304, the CLI succeeds
        assert p.returncode == 0
    finally:
        d("rm", "dup")
    assert not _mounts(hoistd.root)


def test_live_restore(tmp_path):
    daemon = start_hoistd(str(tmp_path))
    try:
        daemon.hoist("image", "bootstrap", "busybox")
        daemon.docker("run", "-d", "--name", "lr", "busybox", "sh", "-c", "echo up; exec sleep 1000")
        daemon.stop(signal.SIGKILL)
        daemon = start_hoistd(str(tmp_path))
        doc = json.loads(daemon.docker("inspect", "lr").stdout)[0]
        assert doc["State"]["Running"]
        assert daemon.docker("logs", "lr").stdout == b"up\n"
        assert daemon.docker("exec", "lr", "echo", "x").stdout == b"x\n"
        daemon.docker("stop", "-t", "1", "lr")
        assert json.loads(daemon.docker("inspect", "lr").stdout)[0]["State"]["Running"] is False
        daemon.docker("rm", "lr")
    finally:
        daemon.docker("rm", "-f", "lr", check=False)
        daemon.stop()
    assert not _mounts(str(tmp_path))


def _pane(sess: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", sess], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed")
@pytest.mark.parametrize("cli", CLIS)
def test_docker_run_it_typed_into_and_detached(hoistd, cli, tmp_path):
    """The real docker CLI with a TTY: hoistd runs the pty, resizes it and sees the
    detach keys in the stdin stream (the docker CLI leaves them to the daemon)."""
    name = "dk-" + os.path.basename(cli).replace(".", "") + str(len(cli))
    hoistd.docker("rm", "-f", name, check=False)
    rc = tmp_path / "rc"
    sess = f"hoist-dockerit-{os.getpid()}-{len(cli)}"
    env = f"DOCKER_HOST=unix://{hoistd.sock}"
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "90", "-y", "25",
                    f"{env} {cli} run -it --name {name} busybox sh; echo rc=$? > {rc}; "
                    f"{env} {cli} exec -it {name} sh -c 'tty; exit 3'; echo rc=$? >> {rc}; "
                    f"sleep 30"], check=True)
    try:
        deadline = time.monotonic() + 20
        while "/ #" not in _pane(sess):
            assert time.monotonic() < deadline, _pane(sess)
            time.sleep(0.1)
        subprocess.run(["tmux", "send-keys", "-t", sess, "echo $((6*7))", "Enter"], check=True)
        while "42" not in _pane(sess):
            assert time.monotonic() < deadline, _pane(sess)
            time.sleep(0.1)
        # resized to the pane (docker 20.10's CLI resizes after start, asynchronously)
        while "25 90" not in _pane(sess) and "24 90" not in _pane(sess):
            assert time.monotonic() < deadline, _pane(sess)
            subprocess.run(["tmux", "send-keys", "-t", sess, "stty size", "Enter"], check=True)
            time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", sess, "C-p", "C-q"], check=True)
        while not (rc.exists() and rc.read_text().count("rc=") == 2):
            assert time.monotonic() < deadline, _pane(sess)
            time.sleep(0.1)
        assert rc.read_text().split() == ["rc=0", "rc=3"]
        assert "/dev/pts/" in _pane(sess)
        state = json.loads(hoistd.docker("inspect", name, docker=cli).stdout)[0]["State"]
        assert state["Running"] is True  # detached, not ended
    finally:
        subprocess.run(["tmux", "kill-session", "-t", sess], check=False)
        hoistd.docker("rm", "-f", name, check=False)


def _cgroup_dirs(cid: str) -> list[str]:
    out = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) == cid:
            out.append(root)
        if root.count("/") > 6:
            dirs[:] = []
    return out


def _pids_with_cwd_or_root_under(path: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/root").startswith(path) or \
                    os.readlink(f"/proc/{p}/cwd").startswith(path):
                found.append(int(p))
        except OSError:
            pass
    return found


def test_failed_runs_leave_nothing_behind(hoistd):
    """Unknown user, a command that cannot run or is missing, a refused rm: Docker's
    errors and exit codes, and no container, mount, cgroup or process left over."""
    d = hoistd.docker
    since = f"{time.time():.3f}"  # this test only: the one before ends a moment earlier
    before = set(d("ps", "-aq", "--no-trunc").stdout.decode().split())
    p = d("run", "--rm", "-u", "nosuchuser", "busybox", "true", check=False)
    assert p.returncode in (125, 126) and b"unable to find user nosuchuser" in p.stderr
    p = d("run", "--rm", "busybox", "/etc", check=False)
    assert p.returncode == 126 and b"permission denied" in p.stderr.lower()
    p = d("run", "--rm", "busybox", "/nonexistent/cmd", check=False)
    assert p.returncode == 127 and b"no such file or directory" in p.stderr.lower()
    p = d("run", "--rm", "--memory", "1k", "busybox", "true", check=False)
    assert p.returncode == 125
    cid = d("run", "-d", "busybox", "sleep", "1000").stdout.decode().strip()
    try:
        p = d("rm", cid, check=False)
        assert p.returncode != 0 and b"cannot remove a running container" in p.stderr.lower()
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["Running"] is True
        p = d("kill", cid)
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["ExitCode"] == 137
        p = d("kill", cid, check=False)
        assert p.returncode != 0 and b"is not running" in p.stderr
    finally:
        d("rm", "-f", cid)
    time.sleep(0.3)
    assert set(d("ps", "-aq", "--no-trunc").stdout.decode().split()) == before
    assert not _mounts(hoistd.root)
    created = d("events", "--since", since, "--until", str(time.time() + 1), "--filter",
                "event=create", "--format", "{{.ID}}").stdout.decode().split()
    assert len(created) == 4 and cid in created  # -m 1k is refused before create
    for c in created:
        assert _cgroup_dirs(c) == [], c
        assert not os.path.exists(os.path.join(hoistd.root, "containers", c))
        assert not os.path.exists(os.path.join(hoistd.root, "run", "runtime", c))
    assert _pids_with_cwd_or_root_under(os.path.join(hoistd.root, "containers")) == []


def test_create_refuses_bad_bodies_at_create(hoistd):
    """As dockerd: a body of the wrong JSON types, or a HostConfig start would refuse,
    is a 400 at create, and no container is made."""
    import docker

    client = docker.DockerClient(base_url=f"unix://{hoistd.sock}")
    before = len(client.containers.list(all=True))
    bad = [
        ({"Image": "busybox", "Cmd": 123}, "cannot unmarshal number into Go struct field Config.Cmd"),
        ({"Image": "busybox", "HostConfig": {"Memory": "1g"}}, "HostConfig.Memory of type int64"),
        ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [{"Type": "bind"}]}},
         "field Target must not be empty"),
        ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["bogus"]}},
         "Invalid --security-opt"),
        ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Ulimits": [
            {"Name": "bogus", "Soft": 1, "Hard": 1}]}}, "invalid ulimit type"),
    ]
    for body, message in bad:
        r = client.api._post_json(client.api._url("/containers/create"), data=body)
        assert r.status_code == 400 and message in r.json()["message"], (body, r.text)
    assert len(client.containers.list(all=True)) == before
