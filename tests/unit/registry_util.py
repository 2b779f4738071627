"""Shared helpers for the registry tests: run a server in-process on a free loopback port."""
from __future__ import annotations

import hashlib
import http.client
import json
from dataclasses import replace

from hoist.registry.api import build_registry
from hoist.registry.config import RegistryConfig
from hoist.registry.server import Server


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Running:
    def __init__(self, root: str, **kw: object) -> None:
        self.cfg = replace(RegistryConfig(addr="127.0.0.1:0", root=root), **kw)
        self.registry = build_registry(self.cfg)
        self.server = Server("127.0.0.1", 0, self.registry).start()
        self.port = self.server.address[1]

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def req(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def push_blob(self, repo: str, data: bytes, headers: dict[str, str] | None = None) -> str:
        d = sha(data)
        st, h, body = self.req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data, headers)
        assert st == 201, (st, body)
        return d

    def push_image(self, repo: str, tag: str, layers: list[bytes], config: bytes = b"{}",
                   media_type: str = "application/vnd.oci.image.manifest.v1+json",
                   extra: dict | None = None, headers: dict[str, str] | None = None) -> tuple[str, bytes]:
        cd = self.push_blob(repo, config, headers)
        descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(repo, layer, headers),
                  "size": len(layer)} for layer in layers]
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
               "layers": descs, **(extra or {})}
        data = json.dumps(doc).encode()
        st, h, body = self.req("PUT", f"/v2/{repo}/manifests/{tag}", data,
                               {"Content-Type": media_type, **(headers or {})})
        assert st == 201, (st, body)
        return h["docker-content-digest"], data

    def close(self) -> None:
        self.server.close()


def error_code(body: bytes) -> str:
    return json.loads(body)["errors"][0]["code"]
