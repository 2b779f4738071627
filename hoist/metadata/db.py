"""SQLite metadata: images, tags, repo digests, unpacked layers, leases.

WAL mode makes every change a crash-safe transaction, so nothing is ever a JSON file
rewritten in place. One connection per thread (sqlite3 objects are not shareable).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Iterator

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- config digest: the image ID, as Docker
    target_media_type TEXT NOT NULL,  -- the manifest (or index) this image came from
    target_digest TEXT NOT NULL,
    target_size INTEGER NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,  -- unpacked size of all layers
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,            -- fully qualified: docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id),
    PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',  -- parent chain id
    key INTEGER NOT NULL UNIQUE,      -- short directory name under snapshots/
    size INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_blobs (
    blob_digest TEXT PRIMARY KEY,     -- the (possibly compressed) blob
    diff_id TEXT NOT NULL             -- digest of its uncompressed tar
);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_resources (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,               -- 'blob' or 'layer'
    ref TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, ref)
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
"""


class _Closing:
    """Holds a thread's connection and closes it when the thread ends. A Connection is
    part of reference cycles (its statement cache), so without this it would wait for a
    full GC: hoistd serves each request on a new thread and would pile up open fds."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


class Database:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        # executescript commits on its own, so it runs outside transaction(); every
        # statement in the schema is idempotent.
        with self._write_lock:
            self._conn().executescript(_SCHEMA)
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                      (str(SCHEMA_VERSION),))

    def _conn(self) -> sqlite3.Connection:
        holder = getattr(self._local, "conn", None)
        c = holder.conn if holder is not None else None
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA foreign_keys=ON")
            c.execute("PRAGMA busy_timeout=30000")
            c.row_factory = sqlite3.Row
            self._local.conn = _Closing(c)
            try:
                os.chmod(self.path, 0o600)
            except OSError:
                pass
        return c

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so
        read-modify-write sequences inside cannot interleave with another writer."""
        c = self._conn()
        with self._write_lock:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            else:
                c.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, args).fetchone()

    def get_meta(self, key: str) -> str | None:
        r = self.one("SELECT value FROM meta WHERE key=?", (key,))
        return r["value"] if r else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- leases: keep in-progress work (a load, a pull) safe from garbage collection --

    @contextmanager
    def lease(self, ttl: float = 3600.0) -> Iterator["Lease"]:
        lease_id = os.urandom(16).hex()
        with self.transaction() as c:
            c.execute("INSERT INTO leases(id, expires) VALUES (?, ?)", (lease_id, time.time() + ttl))
        try:
            yield Lease(self, lease_id)
        finally:
            with self.transaction() as c:
                c.execute("DELETE FROM leases WHERE id=?", (lease_id,))

    def leased(self, kind: str) -> set[str]:
        rows = self.query("SELECT r.ref FROM lease_resources r JOIN leases l ON l.id=r.lease_id "
                          "WHERE r.kind=? AND l.expires > ?", (kind, time.time()))
        return {r["ref"] for r in rows}

    def expire_leases(self) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM leases WHERE expires <= ?", (time.time(),))


class Lease:
    def __init__(self, db: Database, lease_id: str) -> None:
        self.db = db
        self.id = lease_id

    def add(self, kind: str, ref: str) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO lease_resources(lease_id, kind, ref) VALUES (?,?,?)",
                      (self.id, kind, ref))
