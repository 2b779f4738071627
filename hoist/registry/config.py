"""Registry configuration: defaults, then a JSON or TOML file, then command-line flags."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from ..errors import InvalidArgument


@dataclass(frozen=True)
class RegistryConfig:
    addr: str = "127.0.0.1:5000"
    root: str = "/var/lib/hoist-registry"
    auth: str = "none"              # none | basic | token
    htpasswd: str = ""
    realm: str = ""                 # token realm URL; default http(s)://<Host>/token
    service: str = "hoist-registry"
    token_secret: str = ""          # hex; random per start when empty
    token_ttl: int = 300
    read_only: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    access_log: str = ""
    max_blob_size: int = 0          # 0: unlimited
    max_manifest_size: int = 4 << 20
    upload_ttl: float = 24 * 3600.0
    gc_grace: float = 3600.0
    acl: dict = field(default_factory=dict)  # user -> allowed actions ("pull", "push", "delete", "*")

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidArgument(f"invalid address {self.addr!r}: want HOST:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)


_FIELDS = {f.name: f for f in dataclasses.fields(RegistryConfig)}


def read_file(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    try:
        if path.endswith(".toml"):
            import tomllib

            doc = tomllib.loads(data.decode())
        else:
            doc = json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"invalid registry config {path}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid registry config {path}: not an object")
    return {k.replace("-", "_"): v for k, v in doc.items()}


def build(file: str = "", **overrides: object) -> RegistryConfig:
    values: dict[str, object] = {}
    if file:
        values.update(read_file(file))
    values.update({k: v for k, v in overrides.items() if v not in (None, "", False, 0)})
    for key, value in values.items():
        f = _FIELDS.get(key)
        if f is None:
            raise InvalidArgument(f"unknown registry setting {key!r}")
        want = {"str": str, "int": int, "bool": bool, "float": (int, float), "dict": dict}[str(f.type)]
        if not isinstance(value, want) or (f.type == "int" and isinstance(value, bool)):
            raise InvalidArgument(f"registry setting {key!r}: want {f.type}, got {value!r}")
    for user, actions in dict(values.get("acl") or {}).items():  # type: ignore[call-overload]
        if not isinstance(actions, list) or not all(a in ("pull", "push", "delete", "*") for a in actions):
            raise InvalidArgument(f"acl for {user!r}: want a list of pull, push, delete or *")
    cfg = RegistryConfig(**values)  # type: ignore[arg-type]
    if cfg.auth not in ("none", "basic", "token"):
        raise InvalidArgument(f"invalid auth mode {cfg.auth!r}: want none, basic or token")
    if cfg.auth != "none" and not cfg.htpasswd:
        raise InvalidArgument(f"auth mode {cfg.auth} needs --htpasswd")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    cfg.host_port
    return dataclasses.replace(cfg, root=os.path.abspath(cfg.root))
