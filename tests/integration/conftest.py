"""Fixtures that start real daemons: a private hoistd per session (own data root and
socket), and a private dockerd from Debian's docker.io when it is installed. Each is
stopped by the PID we started, never by name."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def _wait_socket(path: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                if b"OK" in s.recv(4096) or True:
                    return
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.05)
    raise RuntimeError(f"no daemon on {path}")


@dataclass
class Daemon:
    sock: str
    root: str
    proc: subprocess.Popen | None
    base: str

    @property
    def host(self) -> str:
        return "unix://" + self.sock

    def hoist(self, *args: str, input: bytes | None = None, check: bool = True,
              timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=REPO)
        env.pop("DOCKER_HOST", None)
        p = subprocess.run([PY, "-m", "hoist.cli.main", "-H", self.host, *args], input=input,
                           capture_output=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"hoist {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout.decode()}\n{p.stderr.decode()}")
        return p

    def docker(self, *args: str, docker: str = "docker", input: bytes | None = None,
               check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=os.path.join(self.base, "dockercfg"))
        p = subprocess.run([docker, *args], input=input, capture_output=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{docker} {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout.decode()}\n{p.stderr.decode()}")
        return p

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_hoistd(base: str, root: str | None = None, extra: tuple[str, ...] = ()) -> Daemon:
    root = root or os.path.join(base, "root")
    sock = os.path.join(base, "hoist.sock")
    log = open(os.path.join(base, "hoistd.log"), "ab")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([PY, "-m", "hoist.daemon", "--host", "unix://" + sock, "--data-root", root,
                             *extra], stdout=log, stderr=log, env=env, start_new_session=True)
    _wait_socket(sock, proc)
    return Daemon(sock, root, proc, base)


@pytest.fixture(scope="session")
def hoistd():
    base = tempfile.mkdtemp(prefix="hoist-it-")
    d = start_hoistd(base)
    try:  # a failed bootstrap must not leave the daemon running
        d.hoist("image", "bootstrap", "busybox")
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_hoistd(tmp_path):
    """A daemon of its own for tests that kill it or need an empty store."""
    d = start_hoistd(str(tmp_path))
    yield d
    d.stop()


@pytest.fixture(scope="session")
def dockerd():
    exe = shutil.which("dockerd")
    if not exe:
        pytest.skip("dockerd (Debian docker.io) is not installed")
    base = tempfile.mkdtemp(prefix="hoist-dockerd-", dir="/var/tmp")
    sock = os.path.join(base, "docker.sock")
    log = open(os.path.join(base, "dockerd.log"), "ab")
    proc = subprocess.Popen([exe, "--host", "unix://" + sock, "--data-root", os.path.join(base, "data"),
                             "--exec-root", os.path.join(base, "exec"), "--pidfile",
                             os.path.join(base, "dockerd.pid"), "--bridge", "none", "--iptables=false",
                             "--ip6tables=false"], stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_socket(sock, proc, 60)
    except RuntimeError:
        proc.kill()
        pytest.skip("dockerd did not start: " + open(os.path.join(base, "dockerd.log")).read()[-2000:])
    d = Daemon(sock, os.path.join(base, "data"), proc, base)
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


def docker_clis() -> list[str]:
    """The real docker CLIs on this machine: Debian's 20.10 and the 28.x in /usr/local/bin."""
    out = []
    for path in ("/usr/bin/docker", "/usr/local/bin/docker"):
        if os.path.exists(path):
            out.append(path)
    return out


def jload(p: subprocess.CompletedProcess):
    return json.loads(p.stdout)
