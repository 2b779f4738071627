"""Streaming (de)compression of layer blobs.

Layers arrive as gzip, zstd or (rarely) bzip2/xz streams, often straight from a socket, so
everything here works on non-seekable input: the format is sniffed from the first bytes,
which are then replayed in front of the rest of the stream.

Decompression is the place where a tiny hostile blob turns into terabytes, so every reader
returned by :func:`open_decompressed` counts its output and raises
:class:`~hoist.errors.SizeLimitExceeded` past the limit, and every codec is driven with a
bounded output size per step so that one call can never materialise a bomb in memory.
A stream that ends before its codec says the data is complete is an error, never a
silent short read: a truncated layer must not extract as a smaller valid one.
"""
from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import Any, BinaryIO, Callable, Protocol

from ..errors import InvalidArgument, InvalidContent, SizeLimitExceeded, Unavailable

_isal_zlib: Any
_igzip: Any
_zstd: Any
try:  # ISA-L inflate/deflate is several times faster than zlib and releases the GIL.
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None
    _igzip = None

try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

__all__ = ["detect", "open_decompressed", "compressor", "Compressor", "KINDS"]

KINDS = ("gzip", "zstd", "bzip2", "xz", "none")

_CHUNK = 1 << 20          # compressed bytes read from the source per step
_HEAD = 6                 # enough for every magic we sniff (xz has the longest: 6 bytes)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def _is_zstd_skippable(head: bytes) -> bool:
    # A zstd stream may open with a skippable (metadata) frame: magic 0x184D2A5?.
    return len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50


def detect(head: bytes) -> str:
    """Name the compression of a stream from its first bytes ("none" if unrecognised)."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC) or _is_zstd_skippable(head):
        return "zstd"
    if head.startswith(_BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return "none"


# --------------------------------------------------------------------------- helpers


def _read_some(src: Any, n: int) -> bytes:
    """One read of at most ``n`` bytes; ``b""`` only at end of stream."""
    while True:
        data = src.read(n)
        if data is None:  # a non-blocking raw stream with nothing yet; layers are blocking
            continue
        return bytes(data) if not isinstance(data, bytes) else data


def _read_head(src: Any, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (sockets, pipes)."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        data = _read_some(src, n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """Replays the sniffed ``head`` and then continues with ``src``; never closes ``src``."""

    def __init__(self, head: bytes, src: Any) -> None:
        self._head = memoryview(head)
        self._src = src
        # Reading straight into the caller's buffer saves a copy per chunk, which is
        # most of the cost of passing an uncompressed 100 MB layer through.
        self._src_readinto = getattr(src, "readinto", None)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._src_readinto is not None:
            while True:
                got = self._src_readinto(view)
                if got is not None:
                    return got
        data = _read_some(self._src, len(view))
        view[: len(data)] = data
        return len(data)


class _Limited(io.RawIOBase):
    """Counts bytes coming out of ``inner`` and refuses to go past ``limit``."""

    def __init__(self, inner: Any, limit: int | None, kind: str) -> None:
        self._inner = inner
        self._limit = limit
        self._kind = kind
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._inner.readinto(b)
        self.count += n
        if self._limit is not None and self.count > self._limit:
            what = "uncompressed data" if self._kind == "none" else f"decompressed {self._kind} data"
            raise SizeLimitExceeded(f"{what} exceeds the limit of {self._limit} bytes")
        return n

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


# --------------------------------------------------------------------------- codecs


class _Member(Protocol):
    """One gzip member / bzip2 or xz stream being inflated, behind a common interface."""

    eof: bool

    def step(self, data: bytes, max_length: int) -> bytes: ...

    def needs_input(self) -> bool: ...

    def leftover(self) -> bytes: ...


class _ZlibMember:
    """zlib-style decompressor (stdlib zlib or ISA-L): input not consumed stays in a tail."""

    def __init__(self, module: Any) -> None:
        # wbits=31 accepts exactly one gzip member; "47" (auto-detect) would also accept a
        # bare zlib stream, which is not a valid member of a gzip file.
        self._d = module.decompressobj(wbits=31)
        self._tail = b""
        self._starved = True
        self.eof = False

    def step(self, data: bytes, max_length: int) -> bytes:
        buf = self._tail + data if self._tail else data
        out = self._d.decompress(buf, max_length)
        self._tail = self._d.unconsumed_tail
        # With output short of the cap and no tail, inflate has used everything it was given.
        self._starved = not self._tail and len(out) < max_length
        self.eof = self._d.eof
        return out

    def needs_input(self) -> bool:
        return self._starved

    def leftover(self) -> bytes:
        return self._d.unused_data


class _BufferingMember:
    """bz2/lzma decompressors keep unconsumed input internally and say when they need more."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._d = factory()
        self.eof = False

    def step(self, data: bytes, max_length: int) -> bytes:
        out = self._d.decompress(data, max_length)
        self.eof = self._d.eof
        return out

    def needs_input(self) -> bool:
        return bool(self._d.needs_input)

    def leftover(self) -> bytes:
        return self._d.unused_data


def _codec_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [zlib.error, lzma.LZMAError, EOFError]
    if _isal_zlib is not None:
        errors.append(_isal_zlib.error)
    return tuple(errors)


_CODEC_ERRORS = _codec_errors()


class _MultiMemberReader(io.RawIOBase):
    """Inflates a sequence of concatenated members (gzip, bzip2, xz all allow that).

    Each call produces at most ``len(b)`` bytes, however compressible the input is.
    NUL padding between/after members is skipped, as gzip(1) and xz(1) do.
    """

    def __init__(self, src: Any, new_member: Callable[[], _Member], kind: str,
                 magic: bytes) -> None:
        self._src = src
        self._new_member = new_member
        self._kind = kind
        self._magic = magic
        self._member: _Member | None = new_member()
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if not view:
            return 0
        while not self._done:
            member = self._member
            if member is None or member.eof:
                if not self._start_next_member(member):
                    return 0
                continue
            data = self._pending
            self._pending = b""
            if not data and member.needs_input():
                data = _read_some(self._src, _CHUNK)
                if not data:
                    raise InvalidContent(
                        f"truncated {self._kind} stream: input ended inside compressed data")
            out = self._decompress(member, data, len(view))
            if out:
                view[: len(out)] = out
                return len(out)
        return 0

    def _decompress(self, member: _Member, data: bytes, max_length: int) -> bytes:
        # Only the codec call is guarded: an OSError from the source (a dropped connection)
        # must stay what it is, while bz2 reports corrupt data as a plain OSError.
        try:
            return member.step(data, max_length)
        except _CODEC_ERRORS as exc:
            raise InvalidContent(f"corrupt {self._kind} stream: {exc}") from None
        except OSError as exc:
            if self._kind == "bzip2":
                raise InvalidContent(f"corrupt {self._kind} stream: {exc}") from None
            raise

    def _start_next_member(self, finished: _Member | None) -> bool:
        rest = finished.leftover() if finished is not None else b""
        rest = rest.lstrip(b"\0")
        while not rest:
            data = _read_some(self._src, _CHUNK)
            if not data:
                self._done = True
                return False
            rest = data.lstrip(b"\0")
        while len(rest) < len(self._magic):
            more = _read_some(self._src, _CHUNK)
            if not more:
                break
            rest += more
        if not rest.startswith(self._magic):
            raise InvalidContent(f"corrupt {self._kind} stream: trailing garbage after the data")
        self._member = self._new_member()
        self._pending = rest
        return True


class _ZstdFrameTracker:
    """Follows zstd frame structure in the compressed bytes to know where frames end.

    python-zstandard's stream reader returns a clean EOF when its input stops in the middle
    of a frame, so truncation would go unnoticed. Walking the frame and block headers (cheap:
    block bodies are skipped by length) tells us whether the input stopped on a boundary.
    """

    _SKIPPABLE_LOW = 0x184D2A50

    def __init__(self) -> None:
        self._need = 4          # bytes wanted by the current header state
        self._buf = b""
        self._skip = 0          # body bytes still to skip before the next header
        self._state = "magic"
        self._checksum = False
        self.frames = 0

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._skip:  # a block body or skippable frame: jump over it by length
                n = min(self._skip, len(data) - pos)
                self._skip -= n
                pos += n
                continue
            take = min(self._need - len(self._buf), len(data) - pos)
            self._buf += data[pos: pos + take]
            pos += take
            if len(self._buf) == self._need:
                header, self._buf = self._buf, b""
                self._advance(header)

    def _to(self, state: str, need: int) -> None:
        self._state = state
        self._need = need

    def _advance(self, header: bytes) -> None:
        if self._state == "magic":
            magic = int.from_bytes(header, "little")
            if header == _ZSTD_MAGIC:
                self._to("fhd", 1)
            elif magic & 0xFFFFFFF0 == self._SKIPPABLE_LOW:
                self._to("skippable-size", 4)
            else:
                raise InvalidContent("corrupt zstd stream: bad frame magic")
        elif self._state == "skippable-size":
            self._skip = int.from_bytes(header, "little")
            self._end_frame()
        elif self._state == "fhd":
            fhd = header[0]
            single_segment = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs_size = (1 if single_segment else 0, 2, 4, 8)[fhd >> 6]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs_size
            if rest:
                self._to("frame-header-rest", rest)
            else:
                self._to("block", 3)
        elif self._state == "frame-header-rest":
            self._to("block", 3)
        elif self._state == "block":
            value = int.from_bytes(header, "little")
            last, block_type, size = value & 1, (value >> 1) & 3, value >> 3
            if block_type == 3:
                raise InvalidContent("corrupt zstd stream: reserved block type")
            self._skip = 1 if block_type == 1 else size
            if not last:
                self._to("block", 3)
            elif self._checksum:
                self._to("checksum", 4)
            else:
                self._end_frame()
        elif self._state == "checksum":
            self._end_frame()

    def _end_frame(self) -> None:
        self.frames += 1
        self._to("magic", 4)

    @property
    def on_boundary(self) -> bool:
        return (self._state == "magic" and not self._buf and not self._skip
                and self.frames > 0)


class _TrackedSource(io.RawIOBase):
    """Source wrapper that shows every compressed byte to a :class:`_ZstdFrameTracker`."""

    def __init__(self, src: Any, tracker: _ZstdFrameTracker) -> None:
        self._src = src
        self._tracker = tracker
        self.at_eof = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = _read_some(self._src, n if n and n > 0 else _CHUNK)
        if data:
            self._tracker.feed(data)
        else:
            self.at_eof = True
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        memoryview(b).cast("B")[: len(data)] = data
        return len(data)


class _ZstdReader(io.RawIOBase):
    """zstd via python-zstandard's stream reader (bounded output per read, multi-frame)."""

    def __init__(self, src: Any) -> None:
        assert _zstd is not None
        self._tracker = _ZstdFrameTracker()
        self._source = _TrackedSource(src, self._tracker)
        self._reader = _zstd.ZstdDecompressor().stream_reader(
            self._source, read_size=_CHUNK, read_across_frames=True, closefd=False)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            n = self._reader.readinto(b)
        except _zstd.ZstdError as exc:
            raise InvalidContent(f"corrupt zstd stream: {exc}") from None
        if n == 0 and not self._tracker.on_boundary:
            raise InvalidContent("truncated zstd stream: input ended inside a frame")
        return n

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


# --------------------------------------------------------------------------- public API


def _gzip_member() -> _Member:
    return _ZlibMember(_isal_zlib if _isal_zlib is not None else zlib)


def _decoder(kind: str, src: Any) -> io.RawIOBase:
    if kind == "gzip":
        return _MultiMemberReader(src, _gzip_member, kind, _GZIP_MAGIC)
    if kind == "bzip2":
        return _MultiMemberReader(
            src, lambda: _BufferingMember(bz2.BZ2Decompressor), kind, _BZIP2_MAGIC)
    if kind == "xz":
        return _MultiMemberReader(
            src, lambda: _BufferingMember(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)), kind,
            _XZ_MAGIC)
    if kind == "zstd":
        if _zstd is None:
            raise InvalidContent(
                "zstd-compressed content needs the 'zstandard' package, which is not installed")
        return _ZstdReader(src)
    return src


def open_decompressed(fileobj: BinaryIO, limit: int | None) -> BinaryIO:
    """Return a buffered stream of the decompressed content of ``fileobj``.

    The compression is detected from the first bytes, so ``fileobj`` may be a pipe or a
    socket. Uncompressed input is passed through (and counted against ``limit`` too).
    Closing the returned stream does not close ``fileobj``; the caller owns it.
    """
    head = _read_head(fileobj, _HEAD)
    kind = detect(head)
    src = _Prefixed(head, fileobj)
    limited = _Limited(_decoder(kind, src), limit, kind)
    return io.BufferedReader(limited, buffer_size=_CHUNK)  # type: ignore[return-value]


# --------------------------------------------------------------------------- compression


class Compressor:
    """Write-side wrapper: ``write()`` plaintext, ``close()`` finishes the stream.

    ``close()`` never closes the underlying ``fileobj``; a registry upload or a blob writer
    still has work to do with it (digest, commit).
    """

    def __init__(self, kind: str, sink: Any, inner: Any) -> None:
        self.kind = kind
        self._sink = sink
        self._inner = inner
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._inner is None:
            return self._sink.write(data)
        return self._inner.write(data)

    def flush(self) -> None:
        if self._inner is not None and self.kind == "gzip":
            self._inner.flush()
        if hasattr(self._sink, "flush"):
            self._sink.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._inner is not None:
            self._inner.close()
        if hasattr(self._sink, "flush"):
            self._sink.flush()

    def writable(self) -> bool:
        return True

    def __enter__(self) -> "Compressor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gzip_level(level: int | None) -> int | None:
    """``level`` uses zlib's 0-9 scale; ISA-L only has 0-3, so map it onto that range."""
    if level is None:
        return None
    if not 0 <= level <= 9:
        raise InvalidArgument(f"gzip compression level must be 0-9, not {level}")
    if _igzip is None:
        return level
    return 0 if level == 0 else min(3, (level + 2) // 3)


def compressor(kind: str, fileobj: BinaryIO, level: int | None = None) -> Compressor:
    """Wrap ``fileobj`` in a compressing writer ("gzip", "zstd" or "none").

    gzip output has mtime 0 and no file name so the same layer always compresses to the
    same bytes (and therefore the same digest).
    """
    if kind == "none":
        return Compressor(kind, fileobj, None)
    if kind == "gzip":
        import gzip as _gzip_mod

        lvl = _gzip_level(level)
        if _igzip is not None:
            kwargs: dict[str, Any] = {} if lvl is None else {"compresslevel": lvl}
            inner = _igzip.IGzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0, **kwargs)
        else:
            inner = _gzip_mod.GzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0,
                                       compresslevel=6 if lvl is None else lvl)
        return Compressor(kind, fileobj, inner)
    if kind == "zstd":
        if _zstd is None:
            raise Unavailable("zstd compression needs the 'zstandard' package")
        cctx = _zstd.ZstdCompressor(level=3 if level is None else level)
        return Compressor(kind, fileobj, cctx.stream_writer(fileobj, closefd=False))
    raise InvalidArgument(f"unsupported compression {kind!r}")
