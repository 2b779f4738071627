"""Credentials in a ``~/.docker/config.json``-compatible file (``DOCKER_CONFIG`` honoured).

The file is shared with the docker CLI, so unknown keys are kept as they are and the
file is replaced atomically with mode 0600.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass

INDEX_SERVER = "https://index.docker.io/v1/"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What the docker CLI sends as X-Registry-Auth (and stores per registry)."""

    username: str = ""
    password: str = ""
    server: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def to_header(self) -> str:
        doc = {"username": self.username, "password": self.password, "serveraddress": self.server}
        if self.identity_token:
            doc["identitytoken"] = self.identity_token
        if self.registry_token:
            doc["registrytoken"] = self.registry_token
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

    @staticmethod
    def from_header(value: str) -> "AuthConfig":
        """Decode X-Registry-Auth (base64url JSON; padded or not, as clients vary)."""
        if not value:
            return AuthConfig()
        value = value.strip()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            doc = json.loads(raw)
        except (ValueError, TypeError):
            try:
                doc = json.loads(base64.b64decode(value + "=" * (-len(value) % 4)))
            except (ValueError, TypeError):
                return AuthConfig()  # docker ignores an undecodable header, as do we
        if not isinstance(doc, dict):
            return AuthConfig()
        return AuthConfig(str(doc.get("username") or ""), str(doc.get("password") or ""),
                          str(doc.get("serveraddress") or ""), str(doc.get("identitytoken") or ""),
                          str(doc.get("registrytoken") or ""))


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def server_key(server: str) -> str:
    """The key a registry's credentials live under: Docker Hub's legacy URL for docker.io,
    the bare host[:port] for everything else (scheme and path dropped, as docker does)."""
    s = server.strip()
    if s in ("", "docker.io", "index.docker.io", "registry-1.docker.io") or \
            s.rstrip("/") in ("https://index.docker.io/v1", "https://index.docker.io", "https://docker.io",
                              "https://registry-1.docker.io"):
        return INDEX_SERVER
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.split("/", 1)[0]


class CredentialStore:
    def __init__(self, directory: str | None = None) -> None:
        self.path = os.path.join(directory or config_dir(), "config.json")

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            return {}
        except ValueError as e:
            from ..errors import InvalidContent
            raise InvalidContent(f"{self.path}: invalid JSON: {e}") from None
        return doc if isinstance(doc, dict) else {}

    def _write(self, doc: dict) -> None:
        d = os.path.dirname(self.path)
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=d)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent="\t")
                f.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def get(self, server: str) -> AuthConfig:
        key = server_key(server)
        auths = self._read().get("auths") or {}
        entry = None
        for k, v in auths.items():
            if server_key(k) == key and isinstance(v, dict):
                entry = v
                break
        if entry is None:
            return AuthConfig(server=key)
        user, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
        return AuthConfig(user, password, key, str(entry.get("identitytoken") or ""))

    def store(self, auth: AuthConfig) -> None:
        doc = self._read()
        auths = doc.setdefault("auths", {})
        key = server_key(auth.server)
        entry: dict = {"auth": base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()}
        if auth.identity_token:
            entry = {"auth": base64.b64encode(f"{auth.username}:".encode()).decode(),
                     "identitytoken": auth.identity_token}
        auths[key] = entry
        self._write(doc)

    def erase(self, server: str) -> bool:
        doc = self._read()
        auths = doc.get("auths") or {}
        key = server_key(server)
        gone = [k for k in auths if server_key(k) == key]
        for k in gone:
            del auths[k]
        if gone:
            self._write(doc)
        return bool(gone)
