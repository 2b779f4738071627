"""Upload sessions: server-side state keyed by random 128-bit ids, kept on disk.

An id is only a capability because it is unguessable; the session also records its
repository, so an id cannot be replayed against another repository. Data streams into a
ContentStore ingest named after the id (``content/ingest/up-<id>/data``), hashed as it
arrives, so completing an upload needs no second pass. Next to the data sits
``session`` (JSON: repository, start time), which is all a restarted registry needs to
pick the upload up again: the offset is the data file's size, and the running sha256 —
which hashlib cannot serialise — is rebuilt by re-hashing the data once, on first use.
Nothing about a session comes from the client except the id, so there is nothing to
forge; ids are checked against a strict pattern before they touch a path.

Garbage collection needs no knowledge of sessions: it sweeps ingest directories whose
data has been idle for longer than the upload TTL, sessions included.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field

from ..content.store import ContentStore, Writer

PREFIX = "up-"
SESSION = "session"
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


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


def _write_session(path: str, repo: str, started: float) -> None:
    # No fsync: after a power loss a torn session file reads as an unknown upload (the
    # client starts over), and an upload's bytes are only trusted once their digest
    # verifies, so syncing here would slow every push for nothing.
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"repo": repo, "started": started}, f)
    os.rename(tmp, path)


class UploadManager:
    def __init__(self, content: ContentStore, limit: int | None) -> None:
        self._content = content
        self._limit = limit
        self._uploads: dict[str, Upload] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def start(self, repo: str) -> Upload:
        uid = secrets.token_hex(16)
        w = self._content.writer(limit=self._limit, name=PREFIX + uid)
        now = time.time()
        try:
            # Written after the data file exists: an ingest without a session file (a crash
            # in between) is never resumed, only swept.
            _write_session(os.path.join(w._dir, SESSION), repo, now)
        except BaseException:
            w.__exit__(None, None, None)
            raise
        up = Upload(uid, repo, w, now, updated=now)
        with self._lock:
            self._uploads[uid] = up
        return up

    def get(self, repo: str, upload_id: str) -> Upload | None:
        if not _ID_RE.match(upload_id):
            return None
        with self._lock:
            up = self._uploads.get(upload_id)
            if up is None:
                loading = self._loading.setdefault(upload_id, threading.Lock())
        if up is None:
            # One thread re-hashes a given session; others wait for it rather than open a
            # second writer on the same file. Other sessions are not held up meanwhile.
            with loading:
                with self._lock:
                    up = self._uploads.get(upload_id)
                if up is None:
                    up = self._load(upload_id)
                with self._lock:
                    if up is not None:
                        up = self._uploads.setdefault(upload_id, up)
                    self._loading.pop(upload_id, None)
        if up is None or up.repo != repo:
            return None
        return up

    def _load(self, uid: str) -> Upload | None:
        """A session left on disk by an earlier run of the registry, or None."""
        d = self._content.ingest_path(PREFIX + uid)
        try:
            with open(os.path.join(d, SESSION), "rb") as f:
                doc = json.loads(f.read())
            repo, started = doc["repo"], float(doc["started"])
            if not isinstance(repo, str):
                return None
            updated = os.stat(os.path.join(d, "data")).st_mtime
            w = self._content.resume(PREFIX + uid, limit=self._limit)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return Upload(uid, repo, w, started, updated=updated)

    def finish(self, upload_id: str) -> None:
        """Forget a session and discard whatever it had not committed."""
        with self._lock:
            up = self._uploads.pop(upload_id, None)
        if up is not None:
            up.writer.__exit__(None, None, None)

    def expire(self, max_age: float) -> int:
        """Drop sessions idle for longer than ``max_age`` seconds, including ones left on
        disk by an earlier run that no client has come back to."""
        now = time.time()
        with self._lock:
            stale = [u.id for u in self._uploads.values() if now - u.updated > max_age]
            live = set(self._uploads) | set(self._loading)
        for uid in stale:
            self.finish(uid)
        n = len(stale)
        for entry in os.listdir(self._content.ingest_dir):
            if not entry.startswith(PREFIX) or entry[len(PREFIX):] in live:
                continue
            d = self._content.ingest_path(entry)
            try:
                mtime = os.stat(d).st_mtime
            except FileNotFoundError:
                continue
            try:
                mtime = max(mtime, os.stat(os.path.join(d, "data")).st_mtime)
            except FileNotFoundError:
                pass
            if now - mtime > max_age:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        return n

    def active_ingests(self) -> set[str]:
        with self._lock:
            return {u.writer._dir for u in self._uploads.values()}
