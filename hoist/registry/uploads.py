"""Upload sessions: server-side state keyed by random 128-bit ids.

An id is only a capability because it is unguessable; the session also records its
repository, so an id cannot be replayed against another repository. Data streams into a
ContentStore writer, hashed as it arrives, so completing an upload needs no second pass.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from ..content.store import ContentStore, Writer


@dataclass
class Upload:
    id: str
    repo: str
    writer: Writer
    started: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    updated: float = 0.0

    @property
    def size(self) -> int:
        return self.writer.size


class UploadManager:
    def __init__(self, content: ContentStore, limit: int | None) -> None:
        self._content = content
        self._limit = limit
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def start(self, repo: str) -> Upload:
        up = Upload(secrets.token_hex(16), repo, self._content.writer(limit=self._limit), time.time())
        up.updated = up.started
        with self._lock:
            self._uploads[up.id] = up
        return up

    def get(self, repo: str, upload_id: str) -> Upload | None:
        with self._lock:
            up = self._uploads.get(upload_id)
        if up is None or up.repo != repo:
            return None
        return up

    def finish(self, upload_id: str) -> None:
        """Forget a session and discard whatever it had not committed."""
        with self._lock:
            up = self._uploads.pop(upload_id, None)
        if up is not None:
            up.writer.__exit__(None, None, None)

    def expire(self, max_age: float) -> int:
        """Drop sessions idle for longer than ``max_age`` seconds."""
        now = time.time()
        with self._lock:
            stale = [u.id for u in self._uploads.values() if now - u.updated > max_age]
        for uid in stale:
            self.finish(uid)
        return len(stale)

    def active_ingests(self) -> set[str]:
        with self._lock:
            return {u.writer._dir for u in self._uploads.values()}
