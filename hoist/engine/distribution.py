"""The engine's side of distribution: pull, push and login on the local image store,
reporting Docker's progress messages through ``emit``."""
from __future__ import annotations

from typing import Any

from ..distribution.credentials import AuthConfig
from ..distribution.progress import Emit
from ..distribution.pull import pull_image
from ..distribution.push import push_image
from ..distribution.registry import RegistryClient
from ..errors import Unauthorized
from ..image import reference as R
from .images import ImageService
from .store import ImageStore


class DistributionService:
    def __init__(self, store: ImageStore, images: ImageService) -> None:
        self.store = store
        self.images = images

    def pull(self, from_image: str, tag: str, *, platform: str = "", auth: AuthConfig | None = None,
             emit: Emit = lambda m: None) -> list[str]:
        """``POST /images/create?fromImage=&tag=``: ``tag`` may be a tag or a digest; with
        neither (in fromImage or tag) every tag of the repository is pulled, as Docker."""
        ref = R.parse(from_image, default_tag=False)
        all_tags = False
        if tag:
            # Docker lets ``tag`` (a tag or a digest) override what fromImage carried.
            if ":" in tag:
                ref = R.parse(f"{ref.repository}@{tag}")
            else:
                ref = ref.with_tag(tag)
        elif ref.tag is None and ref.digest is None:
            all_tags = True
        return pull_image(self.store, ref, auth=_for(auth, ref.domain), emit=emit, platform=platform,
                          all_tags=all_tags)

    def push(self, name: str, tag: str, *, auth: AuthConfig | None = None,
             emit: Emit = lambda m: None) -> list[dict[str, Any]]:
        ref = R.parse(name, default_tag=False)
        return push_image(self.store, self.images, name, tag, auth=_for(auth, ref.domain), emit=emit)

    def login(self, auth: AuthConfig) -> dict[str, str]:
        """``POST /auth``: check the credentials against the registry's /v2/."""
        server = auth.server or "docker.io"
        domain = server
        for prefix in ("https://", "http://"):
            if domain.startswith(prefix):
                domain = domain[len(prefix):]
        domain = domain.split("/", 1)[0]
        if domain in ("index.docker.io", "registry-1.docker.io"):
            domain = "docker.io"
        client = RegistryClient(domain, auth)
        try:
            try:
                client.ping()
            except Unauthorized as e:
                raise Unauthorized(f"login attempt to {client.base}/v2/ failed with status: "
                                   f"401 Unauthorized ({e.message})") from None
        finally:
            client.close()
        return {"Status": "Login Succeeded", "IdentityToken": ""}


def _for(auth: AuthConfig | None, domain: str) -> AuthConfig:
    """Credentials only for the registry they name: a header for another server (or
    none) means anonymous, so a pull from A never carries B's password."""
    if auth is None or auth.empty:
        return AuthConfig(server=domain)
    if auth.server:
        from ..distribution.credentials import server_key
        if server_key(auth.server) != server_key(domain):
            return AuthConfig(server=domain)
    return auth
