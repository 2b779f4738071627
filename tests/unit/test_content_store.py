import hashlib
import io
import os
import threading

import pytest

from hoist.content.store import ContentStore
from hoist.digest import Digest
from hoist.errors import DigestMismatch, InvalidArgument, InvalidContent, NotFound, SizeLimitExceeded


@pytest.fixture
def store(tmp_path):
    return ContentStore(str(tmp_path / "content"))


def test_ingest_verifies_and_makes_read_only(store):
    data = b"hello" * 1000
    d = Digest("sha256", hashlib.sha256(data).hexdigest())
    info = store.ingest(io.BytesIO(data), d, len(data))
    assert info.digest == d and info.size == len(data)
    assert os.stat(store.path(d)).st_mode & 0o777 == 0o444
    assert store.verify(d)
    assert not os.listdir(store.ingest_dir)


def test_digest_mismatch_never_visible(store):
    wrong = Digest("sha256", "0" * 64)
    with pytest.raises(DigestMismatch):
        store.ingest(io.BytesIO(b"data"), wrong, 4)
    assert not store.exists(wrong)
    assert list(store.walk()) == []
    assert not os.listdir(store.ingest_dir)


def test_truncated_and_oversized(store):
    with pytest.raises(InvalidContent):
        store.ingest(io.BytesIO(b"abc"), None, 10)
    with pytest.raises(InvalidContent):
        with store.writer(None, 3) as w:
            w.write(b"abcdef")
    with pytest.raises(SizeLimitExceeded):
        store.ingest(io.BytesIO(b"x" * 100), None, None, limit=10)
    assert not os.listdir(store.ingest_dir)


def test_invalid_digest_never_becomes_a_path(store):
    for bad in ["sha256:../../etc/passwd", "sha256:" + "g" * 64, "md5:" + "0" * 32, "sha256:ABC"]:
        with pytest.raises(InvalidArgument):
            store.path(bad)


def test_missing_blob(store):
    with pytest.raises(NotFound):
        store.open(Digest("sha256", "1" * 64))


def test_concurrent_same_content(store):
    data = os.urandom(1 << 20)
    errors = []

    def put():
        try:
            store.ingest(io.BytesIO(data), Digest.of_bytes(data), len(data))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [b.digest for b in store.walk()] == [Digest.of_bytes(data)]


def test_read_limit(store):
    info = store.put(b"x" * 100)
    with pytest.raises(SizeLimitExceeded):
        store.read(info.digest, 10)


def test_named_writer_resumes_with_the_same_hash_and_limit(store):
    w = store.writer(name="up-x", limit=10)
    w.write(b"hello ")
    w._file.close()  # as if the process died: nothing is committed or cleaned up
    with pytest.raises(FileExistsError):
        store.writer(name="up-x")
    r = store.resume("up-x", limit=10)
    assert r.size == 6
    r.write(b"wor")
    with pytest.raises(SizeLimitExceeded):
        r.write(b"ld")
    r2 = store.resume("up-x")
    r2.write(b"ld")
    assert r2.digest == Digest("sha256", hashlib.sha256(b"hello world").hexdigest())
    info = r2.commit()
    assert store.read(info.digest, 100) == b"hello world"
    assert not os.listdir(store.ingest_dir)
    with pytest.raises(FileNotFoundError):
        store.resume("up-x")
