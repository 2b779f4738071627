"""Where hoist keeps things. Resolved once from flags/environment; immutable afterwards."""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATA_ROOT = "/var/lib/hoist"
DEFAULT_SOCKET = "/run/hoist/hoist.sock"
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"


@dataclass(frozen=True, slots=True)
class Paths:
    data_root: str

    @property
    def content(self) -> str:
        return os.path.join(self.data_root, "content")

    @property
    def metadata_db(self) -> str:
        return os.path.join(self.data_root, "metadata.db")

    @property
    def snapshots(self) -> str:
        return os.path.join(self.data_root, "snapshots")

    @property
    def tmp(self) -> str:
        return os.path.join(self.data_root, "tmp")


def data_root_from_env(flag: str | None = None) -> str:
    return os.path.abspath(flag or os.environ.get("HOIST_DATA_ROOT") or DEFAULT_DATA_ROOT)


def socket_from_env(flag: str | None = None) -> str:
    return flag or os.environ.get("HOIST_SOCKET") or DEFAULT_SOCKET
