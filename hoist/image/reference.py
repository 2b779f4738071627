"""Image references, parsed and normalised exactly as Docker does.

``busybox`` → ``docker.io/library/busybox:latest``; ``localhost:5000/a/b@sha256:…``
keeps its domain. ``familiar`` gives the short form Docker prints.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..digest import Digest
from ..errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_ID_RE = re.compile(r"^[a-f0-9]{64}$")
NAME_TOTAL_LENGTH_MAX = 255


@dataclass(frozen=True, slots=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def repository(self) -> str:
        """Fully-qualified repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.repository

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def familiar(self) -> str:
        s = self.familiar_repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def with_tag(self, tag: str) -> "Reference":
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest) -> "Reference":
        return Reference(self.domain, self.path, None, digest)

    def name_only(self) -> "Reference":
        return Reference(self.domain, self.path)


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i < 0 or (not any(c in first for c in ".:") and first != "localhost"
                 and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference. ``default_tag`` adds ``:latest`` when neither a
    tag nor a digest is given (what ``docker pull``/``tag``/``save`` do)."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("invalid reference format: empty reference")
    if _ID_RE.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    name, digest = text, None
    if "@" in text:
        name, _, dig = text.partition("@")
        try:
            digest = Digest.parse(dig)
        except InvalidArgument:
            raise InvalidArgument(f"invalid reference format: {text!r}") from None
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: {text!r}")
    if not name:
        raise InvalidArgument(f"invalid reference format: {text!r}")
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.match(domain):
        raise InvalidArgument(f"invalid reference format: {text!r}")
    for comp in path.split("/"):
        if not _COMPONENT_RE.match(comp):
            if comp.lower() != comp and _COMPONENT_RE.match(comp.lower()):
                raise InvalidArgument(
                    f"invalid reference format: repository name ({path}) must be lowercase")
            raise InvalidArgument(f"invalid reference format: {text!r}")
    if len(f"{domain}/{path}") > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more "
                              f"than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repository_and_tag(repo: str, tag: str | None) -> Reference:
    """The Engine API's ``repo`` + ``tag`` pair (``POST /images/{id}/tag``, import)."""
    ref = parse(repo, default_tag=False)
    if ref.digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    if tag:
        if ref.tag:
            raise InvalidArgument(f"invalid reference format: {repo}:{tag}")
        return ref.with_tag(tag)
    return ref if ref.tag else ref.with_tag(DEFAULT_TAG)


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))
