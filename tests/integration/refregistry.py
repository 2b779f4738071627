"""Debian's reference registry (``docker-registry``) on a free loopback port, with
htpasswd (bcrypt) auth, filesystem storage in a temporary directory. Stopped by PID."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

BINARY = "/usr/bin/docker-registry"


def free_port(host: str = "127.0.0.1") -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


@dataclass
class RefRegistry:
    addr: str
    root: str
    proc: subprocess.Popen | None
    user: str
    password: str
    htpasswd: bool

    def start(self) -> None:
        cfg = os.path.join(self.root, "config.yml")
        auth = ""
        if self.htpasswd:
            import bcrypt
            with open(os.path.join(self.root, "htpasswd"), "wb") as f:
                f.write(self.user.encode() + b":" + bcrypt.hashpw(self.password.encode(),
                                                                 bcrypt.gensalt(rounds=5)) + b"\n")
            auth = (f"auth:\n  htpasswd:\n    realm: hoist-test\n"
                    f"    path: {os.path.join(self.root, 'htpasswd')}\n")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {os.path.join(self.root, 'data')}\n"
                    f"  delete:\n    enabled: true\n"
                    f"http:\n  addr: {self.addr}\n{auth}")
        log = open(os.path.join(self.root, "registry.log"), "ab")
        self.proc = subprocess.Popen([BINARY, "serve", cfg], stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {open(log.name).read()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: it answers
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_registry(base: str, *, htpasswd: bool = True, user: str = "alice",
                   password: str = "s3cret-pw", port: int | None = None) -> RefRegistry:
    os.makedirs(base, exist_ok=True)
    reg = RefRegistry(f"127.0.0.1:{port or free_port()}", base, None, user, password, htpasswd)
    reg.start()
    return reg


def available() -> bool:
    return os.path.exists(BINARY) and shutil.which(BINARY) is not None
