"""Content-addressed blob store, modelled on containerd's local content store.

A blob is written to a private ingest file, hashed while it streams in, checked for size
and digest on commit, fsynced, renamed into ``blobs/<alg>/<hex>`` and made read-only.
A blob that fails verification is never visible under its digest, and a crash at any
point leaves at most an orphaned ingest directory that :meth:`ContentStore.clean_ingests`
removes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..digest import Digest
from ..errors import DigestMismatch, InvalidContent, NotFound, SizeLimitExceeded

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


class Writer:
    """An in-progress ingest. Use as a context manager; uncommitted data is discarded."""

    def __init__(self, store: "ContentStore", expected: Digest | None, expected_size: int | None,
                 limit: int | None, name: str | None = None, resume: bool = False) -> None:
        self._store = store
        self._expected = expected
        self._expected_size = expected_size
        self._limit = limit
        self._hash = hashlib.new(expected.algorithm if expected else "sha256")
        self.size = 0
        if name is None:
            self._dir = tempfile.mkdtemp(prefix="in-", dir=store.ingest_dir)
        else:
            self._dir = os.path.join(store.ingest_dir, name)
            if not resume:
                os.mkdir(self._dir, 0o700)  # exclusive: a name is never shared by two writers
        self._path = os.path.join(self._dir, "data")
        if not resume:
            self._file = open(self._path, "wb", buffering=0)
            return
        # hashlib state cannot be saved, so a resumed ingest re-hashes what it already
        # holds; appending then continues the same hash.
        self._file = open(self._path, "r+b", buffering=0)
        try:
            while chunk := self._file.read(_CHUNK):
                self._hash.update(chunk)
                self.size += len(chunk)
        except BaseException:
            self._file.close()
            raise

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise SizeLimitExceeded(f"blob larger than the limit of {self._limit} bytes")
        if self._expected_size is not None and self.size > self._expected_size:
            raise InvalidContent(f"blob larger than its declared size {self._expected_size}")
        self._hash.update(data)
        self._file.write(data)

    def copy_from(self, stream: BinaryIO, length: int | None = None) -> None:
        """Copy ``length`` bytes (or to EOF) from ``stream``; short input is an error."""
        remaining = length
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while remaining is None or remaining > 0:
            want = _CHUNK if remaining is None else min(_CHUNK, remaining)
            n = stream.readinto(view[:want]) if hasattr(stream, "readinto") else None
            if n is None:
                chunk = stream.read(want)
                n = len(chunk)
                view[:n] = chunk
            if not n:
                if remaining is not None:
                    raise InvalidContent("truncated blob: stream ended early")
                break
            self.write(view[:n])
            if remaining is not None:
                remaining -= n

    @property
    def digest(self) -> Digest:
        return Digest(self._hash.name, self._hash.hexdigest())

    def commit(self) -> BlobInfo:
        actual = self.digest
        if self._expected_size is not None and self.size != self._expected_size:
            raise InvalidContent(
                f"blob size mismatch: expected {self._expected_size} bytes, got {self.size}")
        if self._expected is not None and actual != self._expected:
            raise DigestMismatch(f"digest mismatch: expected {self._expected}, got {actual}")
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.path(actual)
        os.chmod(self._path, 0o444)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            # rename is atomic; a concurrent writer of the same content simply wins the
            # race with identical bytes, so both callers see a valid blob.
            os.rename(self._path, target)
        self._cleanup()
        return BlobInfo(actual, self.size)

    def _cleanup(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        os.makedirs(self.ingest_dir, exist_ok=True)

    def path(self, digest: Digest | str) -> str:
        d = digest if isinstance(digest, Digest) else Digest.parse(digest)
        return os.path.join(self.root, "blobs", d.algorithm, d.hex)

    def writer(self, expected: Digest | None = None, expected_size: int | None = None,
               limit: int | None = None, name: str | None = None) -> Writer:
        """A new ingest; ``name`` gives it a fixed directory under ingest/ (so it can be
        resumed by :meth:`resume` after a restart) instead of a random one."""
        return Writer(self, expected, expected_size, limit, name)

    def resume(self, name: str, limit: int | None = None) -> Writer:
        """Reopen the named ingest, positioned at its end (FileNotFoundError if gone)."""
        return Writer(self, None, None, limit, name, resume=True)

    def ingest_path(self, name: str) -> str:
        return os.path.join(self.ingest_dir, name)

    def ingest(self, stream: BinaryIO, expected: Digest | None = None,
               size: int | None = None, limit: int | None = None) -> BlobInfo:
        with self.writer(expected, size, limit) as w:
            w.copy_from(stream, size)
            return w.commit()

    def put(self, data: bytes, expected: Digest | None = None) -> BlobInfo:
        d = Digest.of_bytes(data, expected.algorithm if expected else "sha256")
        if expected is not None and d != expected:
            raise DigestMismatch(f"digest mismatch: expected {expected}, got {d}")
        if self.exists(d):
            return BlobInfo(d, len(data))
        with self.writer(d, len(data)) as w:
            w.write(data)
            return w.commit()

    def exists(self, digest: Digest | str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: Digest | str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: Digest | str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: Digest | str, limit: int) -> bytes:
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise SizeLimitExceeded(f"blob {digest} is larger than {limit} bytes")
        return data

    def delete(self, digest: Digest | str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def walk(self) -> Iterator[BlobInfo]:
        for alg in sorted(os.listdir(os.path.join(self.root, "blobs"))):
            base = os.path.join(self.root, "blobs", alg)
            for name in sorted(os.listdir(base)):
                try:
                    d = Digest.parse(f"{alg}:{name}")
                except Exception:
                    continue
                yield BlobInfo(d, os.stat(os.path.join(base, name)).st_size)

    def stray_files(self) -> list[str]:
        """Files under blobs/ whose names are not valid digests (reported by check)."""
        out = []
        for alg in os.listdir(os.path.join(self.root, "blobs")):
            base = os.path.join(self.root, "blobs", alg)
            for name in os.listdir(base):
                try:
                    Digest.parse(f"{alg}:{name}")
                except Exception:
                    out.append(os.path.join(base, name))
        return out

    def verify(self, digest: Digest) -> bool:
        h = digest.hasher()
        with self.open(digest) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest() == digest.hex

    def clean_ingests(self) -> int:
        """Remove abandoned ingests (a killed load). Only safe when no writer is active."""
        n = 0
        for name in os.listdir(self.ingest_dir):
            shutil.rmtree(os.path.join(self.ingest_dir, name), ignore_errors=True)
            n += 1
        return n
