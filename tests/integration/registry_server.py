"""``hoist registry serve`` as a subprocess on a free loopback port, stopped by its PID."""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_htpasswd(path: str, user: str, password: str) -> None:
    import bcrypt

    with open(path, "wb") as f:
        f.write(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)) + b"\n")


def self_signed(base: str) -> tuple[str, str]:
    cert, key = os.path.join(base, "cert.pem"), os.path.join(base, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class HoistRegistry:
    addr: str
    root: str
    proc: subprocess.Popen
    user: str = "alice"
    password: str = "s3cret-pw"
    tls: bool = False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(base: str, *args: str, auth: str = "none", tls: bool = False) -> HoistRegistry:
    os.makedirs(base, exist_ok=True)
    port = free_port()
    extra = list(args)
    if auth != "none":
        hp = os.path.join(base, "htpasswd")
        write_htpasswd(hp, "alice", "s3cret-pw")
        extra += ["--auth", auth, "--htpasswd", hp]
    if tls:
        cert, key = self_signed(base)
        extra += ["--tls-cert", cert, "--tls-key", key]
    log = open(os.path.join(base, "registry.log"), "ab")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([PY, "-m", "hoist.cli.main", "registry", "serve", "--addr", f"127.0.0.1:{port}",
                             "--root", os.path.join(base, "root"), *extra], stdout=log, stderr=log, env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("hoist registry exited: " + open(log.name).read()[-2000:])
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            return HoistRegistry(f"127.0.0.1:{port}", base, proc, tls=tls)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("hoist registry did not start")


def client_context(cert: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert)
