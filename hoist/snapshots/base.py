"""The snapshotter concept: unpacked layer chains and the mounts that present them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount description; only the runtime and the mount module act on it."""

    type: str
    source: str
    options: tuple[str, ...]


class Snapshotter(Protocol):
    name: str

    def unpack(self, key: int, parent_key: int | None, layer_tar: BinaryIO,
               limit: int | None) -> int:
        """Apply an uncompressed layer tar on top of ``parent_key`` as snapshot ``key``.
        Returns the unpacked size in bytes. On error nothing of ``key`` remains."""
        ...

    def mounts(self, chain: list[int]) -> list[Mount]:
        """Read-only mounts presenting the chain (bottom layer first)."""
        ...

    def remove(self, key: int) -> None: ...

    def path(self, key: int) -> str: ...

    def exists(self, key: int) -> bool: ...
