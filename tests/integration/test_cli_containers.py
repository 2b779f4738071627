"""The hoist CLI's container commands side by side with docker 28's CLI on the same
daemon: a private dockerd (always) and hoistd (once it serves /containers/create).

Both CLIs run the same command lines; outputs (with ids and names normalised) and exit
codes must match. Containers use ``--network none`` (the private dockerd has no bridge).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

DOCKER28 = "/usr/local/bin/docker"
NET = ("--network", "none")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(DOCKER28),
                                reason="needs root and the docker 28 CLI")


def _create_answers_404(sock: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(10)
        s.connect(sock)
        s.sendall(b"POST /containers/create HTTP/1.0\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2\r\n\r\n{}")
        return s.recv(64).split(b" ")[1:2] == [b"404"]
    finally:
        s.close()


@pytest.fixture(scope="module", params=["dockerd", "hoistd"])
def daemon(request):
    hoistd = request.getfixturevalue("hoistd")
    if request.param == "hoistd":
        if _create_answers_404(hoistd.sock):
            pytest.skip("hoistd under test answers 404 on /containers/create "
                        "(the containers branch is not merged yet)")
        return hoistd
    d = request.getfixturevalue("dockerd")
    if d.docker("image", "inspect", "busybox", check=False).returncode != 0:
        tar = hoistd.hoist("save", "busybox").stdout
        d.docker("load", input=tar)
    return d


def both(d, *args, input=None):
    h = d.hoist(*args, input=input, check=False, timeout=60)
    k = d.docker(*args, docker=DOCKER28, input=input, check=False, timeout=60)
    return h, k


def test_run_output_and_streams(daemon):
    h, k = both(daemon, "run", "--rm", *NET, "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (h.returncode, h.stdout, h.stderr) == (k.returncode, k.stdout, k.stderr) == \
        (0, b"out\n", b"err\n")


@pytest.mark.parametrize("script,code", [("exit 3", 3), ("sh -c 'kill -9 $$'; exit $?", 137)])
def test_run_exit_codes(daemon, script, code):
    h, k = both(daemon, "run", "--rm", *NET, "busybox", "sh", "-c", script)
    assert h.returncode == k.returncode == code


def test_run_stdin(daemon):
    h, k = both(daemon, "run", "--rm", "-i", *NET, "busybox", "cat", input=b"hello\nworld\n")
    assert h.stdout == k.stdout == b"hello\nworld\n"
    assert h.returncode == k.returncode == 0


def test_run_command_not_found_and_not_executable(daemon):
    h, k = both(daemon, "run", "--rm", *NET, "busybox", "/nonexistent")
    assert h.returncode == k.returncode == 127, (h.stderr, k.stderr)
    h, k = both(daemon, "run", "--rm", *NET, "busybox", "/etc")
    assert h.returncode == k.returncode == 126, (h.stderr, k.stderr)


def test_run_missing_image_exits_125(daemon):
    h, k = both(daemon, "run", "--rm", *NET, "127.0.0.1:1/nope/never:x")
    assert h.returncode == k.returncode == 125
    assert b"Unable to find image '127.0.0.1:1/nope/never:x' locally" in h.stderr


def test_publish_is_refused(daemon):
    h = daemon.hoist("run", "-p", "80:80", "busybox", "true", check=False)
    assert h.returncode == 125 and b"not supported yet" in h.stderr


def test_detached_lifecycle(daemon):
    ids = {}
    for cli in ("hoist", "docker"):
        run = daemon.hoist if cli == "hoist" else (lambda *a, **kw: daemon.docker(*a, docker=DOCKER28, **kw))
        name = f"lc-{cli}"
        run("rm", "-f", name, check=False)
        p = run("run", "-d", "--name", name, *NET, "-e", "A=1", "-l", "k=v", "busybox",
                "sh", "-c", "echo started; sleep 30")
        cid = p.stdout.decode().strip()
        assert len(cid) == 64
        ids[cli] = cid
        ex = run("exec", name, "sh", "-c", "echo $A; exit 4", check=False)
        assert (ex.returncode, ex.stdout) == (4, b"1\n")
        ps = run("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Image}} {{.Labels}} {{.State}}")
        assert ps.stdout == f"{name} busybox k=v running\n".encode()
        q = run("ps", "-q", "--filter", f"name={name}")
        assert q.stdout.decode().strip() == cid[:12]
        insp = run("inspect", "--format", "{{.Config.Env}} {{.State.Running}}", name)
        assert b"A=1" in insp.stdout and insp.stdout.endswith(b" true\n")
        assert run("stop", "-t", "1", name).stdout == f"{name}\n".encode()
        w = run("wait", name)
        assert w.stdout == b"137\n" or w.stdout == b"143\n"
        logs = run("logs", name)
        assert logs.stdout == b"started\n"
        assert run("rm", name).stdout == f"{name}\n".encode()
    # the two CLIs made the same create request
    h_cfg = daemon.hoist("inspect", "--format", "{{json .Config.Labels}}", ids["hoist"], check=False)
    assert h_cfg.returncode != 0  # removed


def test_create_body_matches_docker(daemon):
    flags = ("--network", "none", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
             "--ulimit", "nofile=100:200", "--restart", "on-failure:3", "--read-only",
             "--tmpfs", "/run:size=1m", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD",
             "--health-cmd", "true", "--health-interval", "1m30s", "--stop-signal", "SIGINT",
             "--stop-timeout", "7", "-w", "/tmp", "-u", "1:2", "--hostname", "hh",
             "--shm-size", "1g", "--sysctl", "net.ipv4.ip_forward=1", "--init")
    fields = ("{{json .HostConfig.Memory}} {{json .HostConfig.NanoCpus}} {{json .HostConfig.PidsLimit}} "
              "{{json .HostConfig.Ulimits}} {{json .HostConfig.RestartPolicy}} "
              "{{json .HostConfig.ReadonlyRootfs}} {{json .HostConfig.Tmpfs}} "
              "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .Config.Healthcheck}} "
              "{{json .Config.StopSignal}} {{json .Config.StopTimeout}} {{json .Config.WorkingDir}} "
              "{{json .Config.User}} {{json .Config.Hostname}} {{json .HostConfig.ShmSize}} "
              "{{json .HostConfig.Sysctls}} {{json .HostConfig.Init}} {{json .Config.AttachStdout}}")
    out = []
    for cli in ("hoist", "docker"):
        run = daemon.hoist if cli == "hoist" else (lambda *a, **kw: daemon.docker(*a, docker=DOCKER28, **kw))
        cid = run("create", *flags, "busybox", "true").stdout.decode().strip()
        out.append(daemon.docker("inspect", "--format", fields, cid, docker=DOCKER28).stdout)
        run("rm", cid)
    assert out[0] == out[1]


def test_cp_both_ways(daemon, tmp_path):
    name = "cp-test"
    daemon.hoist("rm", "-f", name, check=False)
    daemon.hoist("create", "--name", name, *NET, "busybox", "true")
    try:
        src = tmp_path / "hello.txt"
        src.write_text("hi there\n")
        daemon.hoist("cp", str(src), f"{name}:/tmp/")
        daemon.hoist("cp", str(src), f"{name}:/tmp/renamed.txt")
        back = tmp_path / "back"
        back.mkdir()
        daemon.hoist("cp", f"{name}:/tmp/hello.txt", str(back))
        daemon.hoist("cp", f"{name}:/tmp/renamed.txt", str(back / "r.txt"))
        assert (back / "hello.txt").read_text() == "hi there\n"
        assert (back / "r.txt").read_text() == "hi there\n"
        h, k = both(daemon, "cp", f"{name}:/tmp/hello.txt", "-")
        assert h.returncode == k.returncode == 0
        import io
        import tarfile

        for data in (h.stdout, k.stdout):
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                assert tf.extractfile("hello.txt").read() == b"hi there\n"
    finally:
        daemon.hoist("rm", "-f", name, check=False)


def test_usage_errors_match(daemon):
    for args in (["run"], ["rm"], ["logs"], ["exec", "x"], ["ps", "--bogus"]):
        h, k = both(daemon, *args)
        assert h.returncode == k.returncode, args


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed")
def test_run_it_in_tmux(daemon):
    base = tempfile.mkdtemp()
    env = f"PYTHONPATH={os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}"
    import sys
    import time

    out = os.path.join(base, "rc")
    cmd = (f"{env} {sys.executable} -m hoist.cli.main -H {daemon.host} run --rm -it {' '.join(NET)} "
           f"busybox sh -c 'read x; echo got-$x; exit 5'; echo rc=$? > {out}")
    sess = f"hoist-it-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "80", "-y", "24", cmd], check=True)
    try:
        time.sleep(3)
        subprocess.run(["tmux", "send-keys", "-t", sess, "abc", "Enter"], check=True)
        for _ in range(50):
            if os.path.exists(out) and open(out).read().strip():
                break
            time.sleep(0.2)
        assert open(out).read().strip() == "rc=5"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", sess], check=False)
        shutil.rmtree(base, ignore_errors=True)
