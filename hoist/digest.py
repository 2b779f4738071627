"""Content digests (``algorithm:hex``), validated before they are ever used in a path."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([0-9a-f]+)$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @staticmethod
    def parse(text: str) -> "Digest":
        m = _DIGEST_RE.match(text) if isinstance(text, str) else None
        if not m or len(m.group(2)) != _HEX_LEN[m.group(1)]:
            raise InvalidArgument(f"invalid digest {text!r}")
        return Digest(m.group(1), m.group(2))

    @staticmethod
    def of_bytes(data: bytes, algorithm: str = "sha256") -> "Digest":
        return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> "hashlib._Hash":
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return self.hex[:12]


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except InvalidArgument:
        return False
    return True
