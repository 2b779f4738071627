"""The hoist CLI against a real dockerd (Debian's docker.io), and side by side with the
real docker CLI on the same daemon: the hoist CLI is a pure Engine API client, so its
tables must come out identical.

A private dockerd is started for this module (own socket, data root and exec root, no
bridge, no iptables) and stopped by the PID we started. Skipped when dockerd is not
installed or we are not root. Only the unix socket is ever talked to.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER28 = "/usr/local/bin/docker"


def _ping(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return s.recv(64).split(b" ")[1:2] == [b"200"]
    except (OSError, IndexError):
        return False
    finally:
        s.close()


def _start_dockerd(base: str, storage: str | None) -> subprocess.Popen:
    sock = os.path.join(base, "docker.sock")
    cmd = [shutil.which("dockerd") or "dockerd", "--host", "unix://" + sock,
           "--data-root", os.path.join(base, "data"), "--exec-root", os.path.join(base, "exec"),
           "--pidfile", os.path.join(base, "dockerd.pid"), "--bridge", "none",
           "--iptables=false", "--ip6tables=false"]
    if storage:
        cmd += ["--storage-driver", storage]
    log = open(os.path.join(base, "dockerd.log"), "ab")
    return subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def dockerd_sock():
    if not shutil.which("dockerd"):
        pytest.skip("dockerd is not installed")
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    base = tempfile.mkdtemp(prefix="hoist-cli-dockerd-", dir="/var/tmp")
    sock = os.path.join(base, "docker.sock")
    proc = None
    try:
        for storage in (None, "vfs"):
            proc = _start_dockerd(base, storage)
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None and not _ping(sock):
                time.sleep(0.1)
            if _ping(sock):
                break
            _stop(proc)
            proc = None
        if proc is None:
            log = open(os.path.join(base, "dockerd.log"), errors="replace").read()[-2000:]
            pytest.skip("dockerd did not start:\n" + log)
        yield sock
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def hoist(sock: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, TZ="UTC")
    env.pop("DOCKER_HOST", None)
    env.pop("DOCKER_API_VERSION", None)
    return subprocess.run([sys.executable, "-m", "hoist.cli.main", "-H", "unix://" + sock, *args],
                          input=input, capture_output=True, env=env, timeout=120, cwd=REPO)


def docker(sock: str, *args: str) -> subprocess.CompletedProcess:
    if not os.path.exists(DOCKER28):
        pytest.skip(f"{DOCKER28} (the docker CLI to compare with) is not installed")
    env = dict(os.environ, TZ="UTC", DOCKER_CONFIG=os.path.join(os.path.dirname(sock), "cfg"))
    env.pop("DOCKER_HOST", None)
    return subprocess.run([DOCKER28, "-H", "unix://" + sock, *args], capture_output=True, env=env,
                          timeout=120)


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.returncode, p.stdout.decode(), p.stderr.decode())
    return p.stdout.decode()


@pytest.fixture(scope="module")
def small_tar(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("imp")
    path = str(d / "small.tar")
    with tarfile.open(path, "w") as tf:
        for name, data in (("hello.txt", b"hello\n"), ("etc/motd", b"from hoist\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def imported(dockerd_sock, small_tar) -> str:
    out = ok(hoist(dockerd_sock, "import", "-c", "ENV HOIST=1", "-m", "from the hoist CLI",
                   small_tar, "t/imp:1"))
    image_id = out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    return image_id


def test_version_and_info(dockerd_sock):
    out = ok(hoist(dockerd_sock, "version"))
    assert out.startswith("Client:\n Version:")
    assert "\nServer:" in out and "\n Engine:\n  Version:" in out
    assert "API version:       1.41 (downgraded from 1.47)" in out  # Debian's dockerd: API 1.41
    out = ok(hoist(dockerd_sock, "version", "--format", "{{.Server.APIVersion}}"))
    assert out.strip() == ok(docker(dockerd_sock, "version", "--format", "{{.Server.APIVersion}}")).strip()
    out = ok(hoist(dockerd_sock, "info"))
    assert "\nServer:\n Containers: 0\n" in out and " Storage Driver: " in out
    assert f" Docker Root Dir: {os.path.dirname(dockerd_sock)}/data\n" in out
    info_fmt = ok(hoist(dockerd_sock, "info", "--format", "{{.ServerVersion}}"))
    assert info_fmt == ok(docker(dockerd_sock, "info", "--format", "{{.ServerVersion}}"))


def test_import_inspect_tag_history(dockerd_sock, imported):
    insp = json.loads(ok(hoist(dockerd_sock, "image", "inspect", "t/imp:1")))
    assert insp[0]["Id"] == imported
    assert "HOIST=1" in insp[0]["Config"]["Env"] and insp[0]["Comment"] == "from the hoist CLI"
    # byte-identical to the docker CLI's rendering of the same daemon answer
    assert ok(hoist(dockerd_sock, "image", "inspect", "t/imp:1")) == \
        ok(docker(dockerd_sock, "image", "inspect", "t/imp:1"))
    assert ok(hoist(dockerd_sock, "inspect", "-f", "{{.Id}}", "t/imp:1")).strip() == imported
    ok(hoist(dockerd_sock, "tag", "t/imp:1", "t/imp:2"))
    ok(hoist(dockerd_sock, "image", "tag", "t/imp:1", "localhost:5000/t/imp"))
    listing = ok(hoist(dockerd_sock, "images", "--format", "{{.Repository}}:{{.Tag}}"))
    assert set(listing.split()) >= {"t/imp:1", "t/imp:2", "localhost:5000/t/imp:latest"}
    hist = ok(hoist(dockerd_sock, "history", "t/imp:1"))
    assert hist.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert imported[7:19] in hist and "from the hoist CLI" in hist
    assert hist == ok(docker(dockerd_sock, "history", "t/imp:1"))


def test_tables_identical_to_docker(dockerd_sock, imported):
    for args in (["images"], ["images", "--digests"], ["images", "--no-trunc"], ["images", "t/imp"],
                 ["image", "ls", "-a"], ["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"],
                 ["images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.Size}}"],
                 ["history", "--no-trunc", "-H=false", "t/imp:1"], ["history", "-q", "t/imp:1"],
                 ["system", "df"], ["system", "df", "-v"], ["system", "df", "--format", "json"]):
        # CREATED ("2 seconds ago") may tick over between the two runs, and dockerd
        # orders images created in the same second differently from call to call: try a
        # few times, comparing rows independently of their order.
        for attempt in range(3):
            mine, theirs = hoist(dockerd_sock, *args), docker(dockerd_sock, *args)
            assert mine.returncode == theirs.returncode, args
            a, b = mine.stdout.decode().splitlines(), theirs.stdout.decode().splitlines()
            if a[:1] + sorted(a[1:]) == b[:1] + sorted(b[1:]):
                break
        assert a[:1] + sorted(a[1:]) == b[:1] + sorted(b[1:]), args


def test_images_quiet_and_filters(dockerd_sock, imported, small_tar):
    ids = ok(hoist(dockerd_sock, "images", "-q")).split()
    assert imported[7:19] in ids and len(ids) == len(set(ids))
    # an untagged import is dangling
    dangling_id = ok(hoist(dockerd_sock, "import", small_tar)).strip()
    out = ok(hoist(dockerd_sock, "images", "--filter", "dangling=true"))
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["REPOSITORY", "TAG"]
    assert any(ln.split()[:3] == ["<none>", "<none>", dangling_id[7:19]] for ln in lines[1:])
    assert all("t/imp" not in ln for ln in lines)
    out = ok(hoist(dockerd_sock, "images", "-q", "-f", "dangling=true"))
    assert dangling_id[7:19] in out.split() and imported[7:19] not in out.split()
    ok(hoist(dockerd_sock, "rmi", dangling_id))


def test_save_rmi_load_roundtrip(dockerd_sock, imported, tmp_path):
    target = tmp_path / "saved.tar"
    ok(hoist(dockerd_sock, "save", "-o", str(target), "t/imp:1"))
    with tarfile.open(target) as tf:
        names = tf.getnames()
    assert "manifest.json" in names
    out = ok(hoist(dockerd_sock, "rmi", "t/imp:1", "t/imp:2", "localhost:5000/t/imp"))
    assert "Untagged: t/imp:1\n" in out and "Untagged: t/imp:2\n" in out
    assert f"Deleted: {imported}\n" in out
    p = hoist(dockerd_sock, "rmi", "t/imp:1")
    assert p.returncode == 1
    assert p.stderr.decode() == "Error response from daemon: No such image: t/imp:1\n"
    p = hoist(dockerd_sock, "image", "inspect", "t/imp:1")
    assert (p.returncode, p.stdout) == (1, b"[]\n")
    assert b"No such image: t/imp:1" in p.stderr
    out = ok(hoist(dockerd_sock, "load", "-i", str(target)))
    assert out == "Loaded image: t/imp:1\n"
    assert ok(hoist(dockerd_sock, "inspect", "--format", "{{.Id}}", "t/imp:1")).strip() == imported
    # load from stdin, save to stdout
    data = hoist(dockerd_sock, "save", "t/imp:1").stdout
    assert data[:100].strip(b"\0") and len(data) > 1024
    assert ok(hoist(dockerd_sock, "load", input=data)) == "Loaded image: t/imp:1\n"


def test_errors_and_exit_codes(dockerd_sock):
    p = hoist(dockerd_sock, "tag", "no-such-image", "x")
    assert p.returncode == 1
    assert p.stderr.decode().startswith("Error response from daemon: No such image: no-such-image")
    p = hoist(dockerd_sock, "images", "--bogus")
    assert p.returncode == 125 and b"unknown flag: --bogus\n\nUsage:  hoist images" in p.stderr
    p = hoist(dockerd_sock, "image", "bootstrap", "busybox")
    assert p.returncode == 125
    assert p.stderr.decode() == "this daemon does not support bootstrap (is it hoistd?)\n"
    p = hoist(dockerd_sock, "system", "check")
    assert p.returncode == 125 and b"does not support system check" in p.stderr
    p = hoist(dockerd_sock, "image", "prune", input=b"n\n")
    assert p.returncode == 0 and p.stdout.endswith(b"[y/N] ")


def test_events_between_times(dockerd_sock, imported):
    until = str(int(time.time()) + 1)
    out = ok(hoist(dockerd_sock, "events", "--since", "0", "--until", until,
                   "--filter", "type=image"))
    assert f" image import {imported} (name={imported})\n" in out or \
        f" image tag {imported} (name=t/imp:1)\n" in out
    first = out.splitlines()[0]
    assert first[4] == "-" and first[19] == "." and first[29] == "Z"  # 2024-01-02T15:04:05.000000000Z
    assert out == ok(docker(dockerd_sock, "events", "--since", "0", "--until", until,
                            "--filter", "type=image"))
