"""The hoist CLI's container commands, run side by side with the docker CLI against the
same daemon: a real dockerd, and hoistd. Output and exit codes must agree.

Every container here runs with ``--network none`` and every image is present
beforehand (``--pull never`` where a missing image is the point), so nothing leaves
the machine."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from engine_gaps import lacks, needs

DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"


@pytest.fixture(scope="module", params=["dockerd", "hoistd"])
def daemon(request, hoistd):
    if request.param == "hoistd":
        return hoistd
    d = request.getfixturevalue("dockerd")
    if d.docker("image", "inspect", "busybox", check=False).returncode != 0:
        saved = hoistd.hoist("save", "busybox").stdout
        d.docker("load", input=saved)
    return d


def _name() -> str:
    return "t" + uuid.uuid4().hex[:10]


def both(d, *args, input=None, check=False):
    h = d.hoist(*args, input=input, check=check)
    k = d.docker(*args, docker=DOCKER, input=input, check=check)
    return h, k


def test_run_output_and_exit_codes(daemon):
    for cmd, code in ((["echo", "hi"], 0), (["sh", "-c", "echo out; echo err >&2; exit 3"], 3)):
        h, k = both(daemon, "run", "--rm", "--network", "none", "busybox", *cmd)
        assert h.returncode == k.returncode == code, (h, k)
        assert h.stdout == k.stdout
        assert h.stderr == k.stderr


def test_run_cannot_execute_and_not_found(daemon):
    h, k = both(daemon, "run", "--rm", "--network", "none", "busybox", "nosuchcommand")
    assert h.returncode == k.returncode == 127
    assert b"executable file not found" in h.stderr
    h, k = both(daemon, "run", "--rm", "--network", "none", "busybox", "/etc")
    assert h.returncode == k.returncode == 126


def test_run_missing_image_and_bad_flag(daemon):
    h, k = both(daemon, "run", "--rm", "--pull", "never", "--network", "none",
                "hoist-no-such-image", "true")
    assert h.returncode == k.returncode == 125
    assert b"No such image" in h.stderr
    h, k = both(daemon, "run", "--no-such-flag", "busybox")
    assert h.returncode == k.returncode == 125
    h = daemon.hoist("run", "-m", "1x", "busybox", "true", check=False)
    assert h.returncode == 125


def test_stdin_is_forwarded(daemon):
    h, k = both(daemon, "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c",
                "cat; echo done", input=b"line1\nline2\n")
    assert h.returncode == k.returncode == 0
    assert h.stdout == k.stdout == b"line1\nline2\ndone\n"


def test_detached_lifecycle(daemon):
    name = _name()
    p = daemon.hoist("run", "-d", "--network", "none", "--name", name, "-l", "role=test",
                     "busybox", "sh", "-c", "echo started; trap 'exit 7' TERM; "
                     "while true; do sleep 0.1; done")
    cid = p.stdout.decode().strip()
    assert len(cid) == 64
    try:
        deadline = time.time() + 10
        while b"started" not in daemon.hoist("logs", name).stdout:
            assert time.time() < deadline
            time.sleep(0.1)
        h, k = both(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.State}}")
        assert h.stdout == k.stdout == f"{name} running\n".encode()
        h, k = both(daemon, "ps", "-q", "--no-trunc", "--filter", "label=role=test")
        assert h.stdout == k.stdout and cid.encode() in h.stdout
        h, k = both(daemon, "exec", name, "sh", "-c", "echo in-exec; exit 4")
        assert h.returncode == k.returncode == 4
        assert h.stdout == k.stdout == b"in-exec\n"
        h, k = both(daemon, "exec", "-e", "A=1", "-w", "/tmp", name, "sh", "-c", 'echo $A $PWD')
        assert h.stdout == k.stdout == b"1 /tmp\n"
        if not lacks(daemon, "top"):
            top = daemon.hoist("top", name).stdout.decode()
            assert "PID" in top.splitlines()[0]
        if not lacks(daemon, "stats"):
            stats = daemon.hoist("stats", "--no-stream", name).stdout.decode().splitlines()
            assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and name in stats[1]
        h, k = both(daemon, "inspect", "--format", "{{.Name}} {{.State.Running}}", name)
        assert h.stdout == k.stdout == f"/{name} true\n".encode()
        p = daemon.hoist("stop", name)
        assert p.stdout == f"{name}\n".encode()
        h, k = both(daemon, "wait", name)
        assert h.stdout == k.stdout == b"7\n"
        h, k = both(daemon, "logs", "--tail", "1", name)
        assert h.stdout == k.stdout == b"started\n"
    finally:
        daemon.hoist("rm", "-f", name, check=False)
    h, k = both(daemon, "rm", name)
    assert h.returncode == k.returncode == 1
    assert b"No such container" in h.stderr


def test_killed_by_signal_reports_128_plus_n(daemon):
    name = _name()
    daemon.hoist("run", "-d", "--network", "none", "--name", name, "busybox", "sleep", "60")
    try:
        assert daemon.hoist("kill", "-s", "KILL", name).stdout == f"{name}\n".encode()
        h, k = both(daemon, "wait", name)
        assert h.stdout == k.stdout == b"137\n"
        h, k = both(daemon, "inspect", "-f", "{{.State.ExitCode}}", name)
        assert h.stdout == k.stdout == b"137\n"
    finally:
        daemon.hoist("rm", "-f", name, check=False)


def test_rm_running_needs_force(daemon):
    name = _name()
    daemon.hoist("run", "-d", "--network", "none", "--name", name, "busybox", "sleep", "60")
    try:
        p = daemon.hoist("rm", name, check=False)
        assert p.returncode == 1 and b"cannot remove a running container" in p.stderr.lower()
        assert daemon.hoist("rm", "-f", name).stdout == f"{name}\n".encode()
    finally:
        daemon.hoist("rm", "-f", name, check=False)


def test_cp_both_ways_and_diff(daemon, tmp_path):
    needs(daemon, "cp", "diff")
    name = _name()
    daemon.hoist("run", "--network", "none", "--name", name, "busybox", "sh", "-c",
                 "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b")
    try:
        daemon.hoist("cp", f"{name}:/data/a", str(tmp_path) + "/")
        assert (tmp_path / "a").read_text() == "one\n"
        daemon.hoist("cp", f"{name}:/data", str(tmp_path / "copy"))
        assert (tmp_path / "copy" / "sub" / "b").read_text() == "two\n"
        (tmp_path / "up").write_text("three\n")
        daemon.hoist("cp", str(tmp_path / "up"), f"{name}:/data/")
        daemon.hoist("cp", f"{name}:/data/up", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "three\n"
        h, k = both(daemon, "diff", name)
        assert sorted(h.stdout.splitlines()) == sorted(k.stdout.splitlines())
        assert b"A /data/up" in h.stdout
    finally:
        daemon.hoist("rm", "-f", name, check=False)


def test_run_tty_in_tmux(daemon):
    needs(daemon, "tty")
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    session = "hoist-" + uuid.uuid4().hex[:8]
    marker = tempfile.mktemp(prefix="hoist-tmux-")
    cli = " ".join([os.environ.get("PYTHON", __import__("sys").executable), "-m",
                    "hoist.cli.main", "-H", daemon.host])
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    f"{cli} run -it --rm --network none busybox sh; echo rc=$? > {marker}"],
                   check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        deadline = time.time() + 15
        while b"/ #" not in subprocess.run(["tmux", "capture-pane", "-t", session, "-p"],
                                           capture_output=True).stdout:
            assert time.time() < deadline, "no shell prompt"
            time.sleep(0.2)
        subprocess.run(["tmux", "send-keys", "-t", session, "echo $((6*7)); tty; stty size",
                        "Enter"], check=True)
        deadline = time.time() + 10
        while True:
            pane = subprocess.run(["tmux", "capture-pane", "-t", session, "-p"],
                                  capture_output=True).stdout.decode()
            if "30 100" in pane:
                break
            assert time.time() < deadline, pane
            time.sleep(0.2)
        assert "42" in pane and "/dev/pts/0" in pane
        subprocess.run(["tmux", "send-keys", "-t", session, "exit 5", "Enter"], check=True)
        deadline = time.time() + 10
        while not os.path.exists(marker) or not open(marker).read():
            assert time.time() < deadline
            time.sleep(0.2)
        assert open(marker).read().strip() == "rc=5"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if os.path.exists(marker):
            os.unlink(marker)


def test_create_start_attach_and_rename(daemon):
    name = _name()
    cid = daemon.hoist("create", "--network", "none", "--name", name, "busybox", "echo",
                       "created").stdout.decode().strip()
    try:
        p = daemon.hoist("start", "-a", name)
        assert p.stdout == b"created\n"
        new = _name()
        daemon.hoist("rename", name, new)
        info = json.loads(daemon.hoist("inspect", new).stdout)
        assert info[0]["Id"] == cid and info[0]["Name"] == "/" + new
        name = new
    finally:
        daemon.hoist("rm", "-f", name, check=False)


def test_cidfile(daemon, tmp_path):
    cidfile = tmp_path / "cid"
    name = _name()
    daemon.hoist("run", "--network", "none", "--name", name, "--cidfile", str(cidfile), "busybox",
                 "true")
    try:
        info = json.loads(daemon.hoist("inspect", name).stdout)
        assert cidfile.read_text() == info[0]["Id"]
        p = daemon.hoist("run", "--network", "none", "--cidfile", str(cidfile), "busybox", "true",
                         check=False)
        assert p.returncode == 125 and b"container ID file found" in p.stderr
    finally:
        daemon.hoist("rm", "-f", name, check=False)
