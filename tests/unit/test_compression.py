"""Streaming decompression: format sniffing, bombs, truncation and corruption."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import threading
import time
import zlib
from typing import Callable

import pytest

from hoist.archive import compression, compressor, detect, open_decompressed
from hoist.errors import InvalidArgument, InvalidContent, SizeLimitExceeded

zstd = pytest.importorskip("zstandard")

DATA = os.urandom(200_000) + b"\0" * 2_000_000 + b"tail" * 1000

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "zstd": lambda d: zstd.ZstdCompressor(write_checksum=True).compress(d),
    "bzip2": bz2.compress,
    "xz": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
}


@pytest.fixture(params=["isal", "zlib"])
def gzip_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run gzip tests against both inflate backends (ISA-L when installed, and zlib)."""
    if request.param == "zlib":
        monkeypatch.setattr(compression, "_isal_zlib", None)
    elif compression._isal_zlib is None:
        pytest.skip("isal not installed")
    return request.param


def decompress(blob: bytes, limit: int | None = None) -> bytes:
    with open_decompressed(io.BytesIO(blob), limit) as stream:
        return stream.read()


class TrickleReader:
    """A non-seekable source that returns at most ``step`` bytes per read (like a socket)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = memoryview(data)
        self._step = step

    def read(self, n: int = -1) -> bytes:
        size = self._step if n is None or n < 0 else min(n, self._step)
        chunk, self._data = self._data[:size], self._data[size:]
        return bytes(chunk)


# --------------------------------------------------------------------------- detect


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_detect(kind: str) -> None:
    assert detect(COMPRESSORS[kind](b"x")[:6]) == kind


def test_detect_none() -> None:
    assert detect(b"") == "none"
    assert detect(b"ustar\0") == "none"
    assert detect(b"\x1f") == "none"   # too short to be sure


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_round_trip_and_concatenated_members(kind: str, gzip_backend: str) -> None:
    blob = COMPRESSORS[kind](DATA)
    assert decompress(blob) == DATA
    assert decompress(blob + COMPRESSORS[kind](b"more")) == DATA + b"more"


def test_uncompressed_passthrough() -> None:
    assert decompress(DATA) == DATA
    assert decompress(b"") == b""
    assert decompress(b"ab") == b"ab"


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_non_seekable_trickling_source(kind: str) -> None:
    blob = COMPRESSORS[kind](DATA[:300_000]) if kind != "none" else DATA[:300_000]
    with open_decompressed(TrickleReader(blob, 13), None) as stream:  # type: ignore[arg-type]
        assert stream.read() == DATA[:300_000]


def test_pipe_source() -> None:
    blob = COMPRESSORS["gzip"](DATA)
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(blob)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as src:
        with open_decompressed(src, None) as stream:
            assert stream.read() == DATA
    t.join()


def test_closing_the_stream_leaves_the_source_open() -> None:
    src = io.BytesIO(COMPRESSORS["gzip"](b"abc"))
    stream = open_decompressed(src, None)
    assert stream.read() == b"abc"
    stream.close()
    assert not src.closed


def test_trailing_nul_padding_is_accepted(gzip_backend: str) -> None:
    assert decompress(COMPRESSORS["gzip"](b"abc") + bytes(1000)) == b"abc"


# --------------------------------------------------------------------------- limits


def _gzip_bomb(size: int) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(co.compress(chunk) for _ in range(size >> 20)) + co.flush()


def test_gzip_bomb_hits_limit_quickly(gzip_backend: str) -> None:
    bomb = _gzip_bomb(100 << 20)
    assert len(bomb) < 200_000
    start = time.monotonic()
    with pytest.raises(SizeLimitExceeded, match="limit"):
        decompress(bomb, limit=10 << 20)
    assert time.monotonic() - start < 5


def test_zstd_bomb_hits_limit() -> None:
    bomb = zstd.ZstdCompressor(level=3).compress(bytes(200 << 20))
    assert len(bomb) < 100_000
    with open_decompressed(io.BytesIO(bomb), 10 << 20) as stream:
        with pytest.raises(SizeLimitExceeded):
            while stream.read(1 << 20):
                pass


@pytest.mark.parametrize("kind", sorted(COMPRESSORS) + ["none"])
def test_limit_boundary(kind: str) -> None:
    data = b"x" * 10_000
    blob = COMPRESSORS[kind](data) if kind != "none" else data
    assert decompress(blob, limit=10_000) == data
    with pytest.raises(SizeLimitExceeded):
        decompress(blob, limit=9_999)


# --------------------------------------------------------------------------- damage


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("cut", [1, 4, 9, 1000])
def test_truncated_streams(kind: str, cut: int, gzip_backend: str) -> None:
    blob = COMPRESSORS[kind](DATA)
    with pytest.raises(InvalidContent, match="truncated"):
        decompress(blob[:-cut])


def test_corrupt_gzip_data(gzip_backend: str) -> None:
    blob = bytearray(COMPRESSORS["gzip"](DATA))
    for i in range(200, 260):
        blob[i] ^= 0x5A
    with pytest.raises(InvalidContent, match="corrupt gzip"):
        decompress(bytes(blob))


def test_gzip_crc_mismatch(gzip_backend: str) -> None:
    blob = bytearray(COMPRESSORS["gzip"](b"hello world"))
    blob[-8] ^= 0x01  # CRC32 in the trailer
    with pytest.raises(InvalidContent, match="corrupt gzip"):
        decompress(bytes(blob))


def test_gzip_bad_header(gzip_backend: str) -> None:
    with pytest.raises(InvalidContent):
        decompress(b"\x1f\x8b\x09\x00" + os.urandom(100))   # method 9 doesn't exist


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_trailing_garbage(kind: str) -> None:
    with pytest.raises(InvalidContent):
        decompress(COMPRESSORS[kind](b"abc") + b"garbage!")


@pytest.mark.parametrize("kind", ["bzip2", "xz", "zstd"])
def test_corrupt_other_formats(kind: str) -> None:
    blob = bytearray(COMPRESSORS[kind](DATA))
    for i in range(40, 80):
        blob[i] ^= 0xA5
    with pytest.raises(InvalidContent):
        decompress(bytes(blob))


def test_zstd_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "_zstd", None)
    with pytest.raises(InvalidContent, match="zstandard"):
        decompress(COMPRESSORS["zstd"](b"abc"))


def test_zstd_skippable_frames() -> None:
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"meta!"
    blob = skippable + COMPRESSORS["zstd"](b"abc") + skippable
    assert decompress(blob) == b"abc"
    with pytest.raises(InvalidContent, match="truncated"):
        decompress(blob[:-2])


# --------------------------------------------------------------------------- compressor


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_compressor_round_trip_leaves_sink_open(kind: str) -> None:
    sink = io.BytesIO()
    with compressor(kind, sink, level=1) as out:
        for i in range(0, len(DATA), 65536):
            out.write(DATA[i:i + 65536])
    assert not sink.closed
    blob = sink.getvalue()
    assert detect(blob[:6]) == kind
    assert decompress(blob) == DATA


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_gzip_compressor_is_deterministic(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "zlib":
        monkeypatch.setattr(compression, "_igzip", None)
    elif compression._igzip is None:
        pytest.skip("isal not installed")
    outputs = []
    for _ in range(2):
        sink = io.BytesIO()
        sink.name = "named.tar"  # must not leak into the gzip header
        with compressor("gzip", sink, level=6) as out:
            out.write(DATA)
        outputs.append(sink.getvalue())
        time.sleep(0.01)
    assert outputs[0] == outputs[1]
    assert b"named" not in outputs[0][:64]
    assert outputs[0][4:8] == b"\0\0\0\0"   # mtime 0
    assert gzip.decompress(outputs[0]) == DATA


def test_compressor_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidArgument):
        compressor("lz4", io.BytesIO())
    with pytest.raises(InvalidArgument):
        compressor("gzip", io.BytesIO(), level=42)
