"""A small streaming tar reader and writer (ustar + PAX + the GNU long-name records).

Why not :mod:`tarfile`: in stream mode it treats a truncated or garbled header after the
first member as a clean end of archive, skips the data of unread members without checking
that it was really there, and decodes binary PAX values (``security.capability``) through
text codecs. Layer extraction needs the opposite: every short read is an error, xattr
values stay bytes, and the size of every metadata record is bounded before it is read.

The reader follows Go's ``archive/tar`` (which produced most layers in the wild) where the
formats leave room for interpretation: header-only entry types carry no data whatever
their size field says, a stream may end on a header boundary without the two zero blocks,
and PAX global headers are parsed but not applied.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable

from ..errors import Conflict, InvalidContent

__all__ = [
    "BLOCK", "REGULAR", "HARDLINK", "SYMLINK", "CHAR", "BLOCKDEV", "DIRECTORY", "FIFO",
    "TarEntry", "TarReader", "TarWriter", "write_tar_entries", "xattr_transportable",
]

BLOCK = 512
REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHAR = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"

_HEADER_ONLY = frozenset({HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO})
_ZERO_BLOCK = bytes(BLOCK)
_MAX_META = 1 << 20        # bound on PAX / GNU long-name data per entry (Go uses the same)
_XATTR_PAX = "SCHILY.xattr."
_COPY = 1 << 20
_NS = 1_000_000_000
_PAX_TIME = re.compile(rb"^(-?)(\d{1,19})(?:\.(\d{1,32}))?$")


def xattr_transportable(name: str) -> bool:
    """Whether an xattr travels inside layers (both when reading and when writing).

    ``user.*`` is plain data and ``security.capability`` is how file capabilities
    (``setcap``) ship in images. Everything else is host state: ``trusted.overlay.*`` would
    let an archive forge overlayfs opaque/redirect markers, and ``security.selinux`` /
    ``system.*`` (ACLs) belong to the host's policy, so they are never carried.
    """
    return name.startswith("user.") or name == "security.capability"


@dataclass(slots=True)
class TarEntry:
    """One archive member. ``mode`` holds only the permission bits (incl. setuid/sticky)."""

    name: str
    type: str = REGULAR
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    uname: str = ""
    gname: str = ""
    atime_ns: int | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------- parsing


def _cstr(field_: bytes) -> bytes:
    end = field_.find(b"\0")
    return field_ if end < 0 else field_[:end]


def _text(raw: bytes) -> str:
    # surrogateescape keeps arbitrary bytes round-trippable through os.* calls.
    return raw.decode("utf-8", "surrogateescape")


def _number(field_: bytes, what: str) -> int:
    """Octal ASCII, or GNU base-256 (high bit of the first byte set)."""
    if field_ and field_[0] & 0x80:
        first = field_[0] & 0x7F
        if first & 0x40:  # sign bit of the base-256 form
            first |= 0x80
        return int.from_bytes(bytes([first]) + field_[1:], "big", signed=True)
    digits = _cstr(field_).strip(b" ")
    if not digits:
        return 0
    # int() alone would also take "+7", "1_0" or inner blanks; only octal digits are valid.
    if digits.translate(None, b"01234567"):
        raise InvalidContent(f"invalid tar header: bad {what} field {field_!r}")
    return int(digits, 8)


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156], "checksum")
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    if stored == unsigned:
        return True
    # Some old writers summed signed chars; accept that variant too, as GNU tar does.
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 0x20
    return stored == signed


def _parse_pax(data: bytes) -> dict[str, bytes]:
    """Parse ``"%d %s=%s\\n"`` records strictly; a malformed record fails the archive."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if not data[pos:].strip(b"\0"):
            break  # NUL padding after the last record
        space = data.find(b" ", pos, pos + 21)
        length_txt = data[pos:space] if space > pos else b""
        if not length_txt.isdigit():
            raise InvalidContent("invalid PAX header: bad record length")
        length = int(length_txt)
        end = pos + length
        if length <= len(length_txt) + 1 or end > len(data) or data[end - 1] != 0x0A:
            raise InvalidContent("invalid PAX header: record overruns its header")
        key, eq, value = data[space + 1: end - 1].partition(b"=")
        if not eq or not key:
            raise InvalidContent("invalid PAX header: record without key")
        try:
            out[key.decode("utf-8")] = value
        except UnicodeDecodeError:
            raise InvalidContent("invalid PAX header: key is not UTF-8") from None
        pos = end
    return out


def _pax_int(value: bytes, key: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise InvalidContent(f"invalid PAX header: bad {key} value")
    return int(value)


def _pax_time(value: bytes, key: str) -> int:
    m = _PAX_TIME.match(value)
    if not m:
        raise InvalidContent(f"invalid PAX header: bad {key} value")
    sign, whole, frac = m.groups()
    ns = int(whole) * _NS + int((frac or b"").ljust(9, b"0")[:9])
    return -ns if sign else ns


@dataclass(slots=True)
class _Header:
    name: bytes
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: bytes
    uname: bytes
    gname: bytes
    devmajor: int
    devminor: int
    old_regular: bool  # typeflag NUL: pre-POSIX, where a trailing "/" meant a directory


def _parse_header(block: bytes) -> _Header:
    if not _checksum_ok(block):
        raise InvalidContent("invalid tar header: checksum mismatch (corrupt or not a tar)")
    name = _cstr(block[0:100])
    if block[257:263] == b"ustar\0":  # POSIX ustar: name may be split into prefix/name
        prefix = _cstr(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    flag = block[156:157]
    typ = "0" if flag in (b"\0", b"7") else flag.decode("latin-1")
    return _Header(
        name=name, type=typ,
        mode=_number(block[100:108], "mode"),
        uid=_number(block[108:116], "uid"),
        gid=_number(block[116:124], "gid"),
        size=_number(block[124:136], "size"),
        mtime=_number(block[136:148], "mtime"),
        linkname=_cstr(block[157:257]),
        uname=_cstr(block[265:297]),
        gname=_cstr(block[297:329]),
        # Device numbers are only meaningful (and only filled in) for device entries.
        devmajor=_number(block[329:337], "devmajor") if typ in ("3", "4") else 0,
        devminor=_number(block[337:345], "devminor") if typ in ("3", "4") else 0,
        old_regular=flag == b"\0",
    )


class TarReader:
    """Pull-style reader: ``next()`` returns the next entry (``None`` at the end), and
    ``readinto()`` reads the current entry's data. Unread data is skipped (and checked to
    be present) when moving on."""

    def __init__(self, stream: BinaryIO | Any) -> None:
        self._src = stream
        self._remaining = 0   # data bytes of the current entry not yet consumed
        self._pad = 0         # padding after the current entry's data
        self._ended = False
        self._scratch = bytearray(_COPY)
        self._src_readinto = getattr(stream, "readinto", None)

    # -- raw input ------------------------------------------------------------------

    def _read_raw(self, view: memoryview) -> int:
        if self._src_readinto is not None:
            n = self._src_readinto(view)
            return n or 0
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._read_raw(view[got:])
            if not k:
                break
            got += k
        return bytes(buf[:got])

    def _discard(self, n: int, what: str) -> None:
        view = memoryview(self._scratch)
        while n:
            k = self._read_raw(view[: min(n, len(view))])
            if not k:
                raise InvalidContent(f"truncated layer archive: stream ended inside {what}")
            n -= k

    def _read_block(self, eof_ok: bool) -> bytes | None:
        block = self._read_exact(BLOCK)
        if len(block) == BLOCK:
            return block
        if not block and eof_ok:
            return None
        raise InvalidContent("truncated layer archive: stream ended inside a tar header")

    # -- entries --------------------------------------------------------------------

    def next(self) -> TarEntry | None:
        if self._ended:
            return None
        self._discard(self._remaining + self._pad, "entry data")
        self._remaining = self._pad = 0
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        meta_bytes = 0
        while True:
            pending = bool(pax) or long_name is not None or long_link is not None
            block = self._read_block(eof_ok=not pending)
            if block is None:
                self._ended = True  # EOF on a header boundary: Go accepts it, so do we
                return None
            if block == _ZERO_BLOCK:
                if pending:
                    raise InvalidContent("invalid tar: extended header without an entry")
                self._end_of_archive()
                return None
            hdr = _parse_header(block)
            if hdr.type in ("x", "g", "L", "K"):
                meta_bytes += hdr.size
                data = self._read_meta(hdr, meta_bytes)
                if hdr.type == "x":
                    pax.update(_parse_pax(data))
                elif hdr.type == "g":
                    _parse_pax(data)  # validated, then ignored like Docker/containerd do
                elif hdr.type == "L":
                    long_name = _cstr(data)
                else:
                    long_link = _cstr(data)
                continue
            return self._entry(hdr, pax, long_name, long_link)

    def _end_of_archive(self) -> None:
        second = self._read_block(eof_ok=True)
        if second is not None and second != _ZERO_BLOCK:
            raise InvalidContent("invalid tar: data after a zero block is not a zero block")
        self._ended = True

    def _read_meta(self, hdr: _Header, total: int) -> bytes:
        if hdr.size < 0 or total > _MAX_META:
            raise InvalidContent("invalid tar: extended header records are too large")
        data = self._read_exact(hdr.size)
        if len(data) != hdr.size:
            raise InvalidContent("truncated layer archive: stream ended inside a PAX header")
        self._discard(-hdr.size % BLOCK, "header padding")
        return data

    def _entry(self, hdr: _Header, pax: dict[str, bytes], long_name: bytes | None,
               long_link: bytes | None) -> TarEntry:
        typ = hdr.type
        if typ == "S" or any(k.startswith("GNU.sparse.") for k in pax):
            raise InvalidContent("sparse files in layer archives are not supported")
        raw_name = pax.get("path", long_name if long_name is not None else hdr.name)
        if hdr.old_regular and raw_name.endswith(b"/"):
            typ = DIRECTORY  # pre-POSIX archives mark directories only by a trailing slash
        if typ not in (REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO):
            raise InvalidContent(f"unsupported tar entry type {typ!r} for {_text(raw_name)!r}")
        raw_link = pax.get("linkpath", long_link if long_link is not None else hdr.linkname)
        size = _pax_int(pax["size"], "size") if "size" in pax else hdr.size
        if size < 0:
            raise InvalidContent("invalid tar header: negative size")
        mtime_ns = _pax_time(pax["mtime"], "mtime") if "mtime" in pax else hdr.mtime * _NS
        entry = TarEntry(
            name=_text(raw_name), type=typ, mode=hdr.mode & 0o7777,
            uid=_pax_int(pax["uid"], "uid") if "uid" in pax else hdr.uid,
            gid=_pax_int(pax["gid"], "gid") if "gid" in pax else hdr.gid,
            size=size, mtime_ns=mtime_ns, linkname=_text(raw_link),
            devmajor=hdr.devmajor, devminor=hdr.devminor,
            uname=_text(pax.get("uname", hdr.uname)), gname=_text(pax.get("gname", hdr.gname)),
            atime_ns=_pax_time(pax["atime"], "atime") if "atime" in pax else None,
            xattrs={k[len(_XATTR_PAX):]: v for k, v in pax.items() if k.startswith(_XATTR_PAX)},
        )
        data_len = 0 if typ in _HEADER_ONLY else size
        self._remaining = data_len
        self._pad = -data_len % BLOCK
        return entry

    def __iter__(self) -> "TarReader":
        return self

    def __next__(self) -> TarEntry:
        entry = self.next()
        if entry is None:
            raise StopIteration
        return entry

    # -- data -----------------------------------------------------------------------

    def readinto(self, buf: Any) -> int:
        """Read data of the current entry; 0 once it is exhausted."""
        if not self._remaining:
            return 0
        view = memoryview(buf).cast("B")
        n = self._read_raw(view[: min(len(view), self._remaining)])
        if not n:
            raise InvalidContent("truncated layer archive: stream ended inside file data")
        self._remaining -= n
        return n

    def read(self, n: int = -1) -> bytes:
        want = self._remaining if n < 0 else min(n, self._remaining)
        buf = bytearray(want)
        view = memoryview(buf)
        got = 0
        while got < want:
            got += self.readinto(view[got:])
        return bytes(buf)

    def drain(self) -> None:
        """Consume whatever follows the end-of-archive blocks (record padding), so that a
        compressed stream below us reaches its own end and verifies its trailer."""
        view = memoryview(self._scratch)
        while self._read_raw(view):
            pass


# --------------------------------------------------------------------------- writing


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _fits_octal(value: int, width: int) -> bool:
    return 0 <= value < 8 ** (width - 1)


def _base256(value: int, width: int) -> bytes:
    raw = value.to_bytes(width, "big", signed=True)
    return bytes([raw[0] | 0x80]) + raw[1:]


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:  # the length counts its own digits
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for the ustar fields, or None if PAX is needed."""
    if not name.isascii():
        return None
    if len(name) <= 100:
        return b"", name
    for i in range(min(len(name) - 1, 155), 0, -1):
        if name[i:i + 1] == b"/" and len(name) - i - 1 <= 100 and name[i + 1:]:
            return name[:i], name[i + 1:]
    return None


def _raw_header(name: bytes, prefix: bytes, typ: str, entry: TarEntry, size: int,
                mtime: int, linkname: bytes, uname: bytes, gname: bytes) -> bytes:
    buf = bytearray(BLOCK)
    buf[0:len(name)] = name
    buf[100:108] = _octal(entry.mode & 0o7777, 8)
    buf[108:116] = _octal(entry.uid, 8) if _fits_octal(entry.uid, 8) else _octal(0, 8)
    buf[116:124] = _octal(entry.gid, 8) if _fits_octal(entry.gid, 8) else _octal(0, 8)
    buf[124:136] = _octal(size, 12) if _fits_octal(size, 12) else _octal(0, 12)
    buf[136:148] = _octal(mtime, 12) if _fits_octal(mtime, 12) else _octal(0, 12)
    buf[148:156] = b" " * 8
    buf[156] = ord(typ)
    buf[157:157 + len(linkname)] = linkname
    buf[257:265] = b"ustar\x0000"
    buf[265:265 + len(uname)] = uname
    buf[297:297 + len(gname)] = gname
    if typ in (CHAR, BLOCKDEV):
        for start, value in ((329, entry.devmajor), (337, entry.devminor)):
            # No PAX key exists for device numbers; GNU base-256 covers the large ones.
            buf[start:start + 8] = _octal(value, 8) if _fits_octal(value, 8) else _base256(value, 8)
    buf[345:345 + len(prefix)] = prefix
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


def _short_ascii(raw: bytes, width: int) -> bool:
    return len(raw) <= width and raw.isascii()


def encode_header(entry: TarEntry) -> bytes:
    """The header block(s) for ``entry``: a PAX 'x' header first when ustar can't hold it."""
    name = entry.name.encode("utf-8", "surrogateescape")
    link = entry.linkname.encode("utf-8", "surrogateescape")
    uname = entry.uname.encode("utf-8", "surrogateescape")
    gname = entry.gname.encode("utf-8", "surrogateescape")
    size = entry.size if entry.type == REGULAR else 0
    mtime = entry.mtime_ns // _NS
    pax: dict[str, bytes] = {}
    split = _split_ustar(name)
    if split is None:
        pax["path"] = name
        split = (b"", name[:100])
    if not _short_ascii(link, 100):
        pax["linkpath"] = link
    for key, value, width in (("uid", entry.uid, 8), ("gid", entry.gid, 8),
                              ("size", size, 12), ("mtime", mtime, 12)):
        if not _fits_octal(value, width):
            pax[key] = str(value).encode()
    for key, raw in (("uname", uname), ("gname", gname)):
        if not _short_ascii(raw, 32):
            pax[key] = raw
    for xname in sorted(entry.xattrs):
        pax[_XATTR_PAX + xname] = entry.xattrs[xname]
    out = b""
    if pax:
        records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
        pax_name = (b"PaxHeaders/" + name.rstrip(b"/").rsplit(b"/", 1)[-1])[:100]
        pax_entry = TarEntry(name="", type="x", mode=0o644)
        out = _raw_header(pax_name, b"", "x", pax_entry, len(records), 0, b"", b"", b"")
        out += records + bytes(-len(records) % BLOCK)
    return out + _raw_header(split[1], split[0], entry.type, entry, size, mtime,
                             link[:100], uname[:32], gname[:32])


def _sendfile_fd(out: Any) -> int | None:
    """The fd to sendfile() into, only for plain files/pipes/sockets opened by ``open()``.

    A compressing wrapper (gzip, zstd) may expose the fd of the file *under* it through
    ``fileno()``; writing there directly would bypass the compressor, so anything that is
    not exactly a FileIO (or a BufferedWriter over one) gets ordinary writes.
    """
    raw = out.raw if type(out) is io.BufferedWriter else out
    if type(raw) is not io.FileIO:
        return None
    try:
        return raw.fileno()
    except (OSError, ValueError):
        return None


class TarWriter:
    """Streams entries into ``out``; ``close()`` writes the end-of-archive blocks but
    leaves ``out`` open."""

    def __init__(self, out: BinaryIO | Any) -> None:
        self._out = out
        self._fd = _sendfile_fd(out)
        self._buf = bytearray(_COPY)

    def add(self, entry: TarEntry, data: bytes = b"") -> None:
        if entry.type == REGULAR and len(data) != entry.size:
            raise ValueError("data length does not match entry.size")
        self._out.write(encode_header(entry))
        if entry.type == REGULAR and data:
            self._out.write(data)
            self._out.write(bytes(-len(data) % BLOCK))

    def add_from_fd(self, entry: TarEntry, fd: int) -> None:
        """Write a regular-file entry whose ``size`` bytes come from ``fd`` (from offset 0)."""
        self._out.write(encode_header(entry))
        if entry.size:
            self._copy_fd(fd, entry.size)
            self._out.write(bytes(-entry.size % BLOCK))

    def _copy_fd(self, fd: int, size: int) -> None:
        if self._fd is not None:
            self._out.flush()
            offset = 0
            while offset < size:
                try:
                    n = os.sendfile(self._fd, fd, offset, min(size - offset, 1 << 30))
                except OSError:
                    if offset:
                        raise
                    self._fd = None  # e.g. sendfile unsupported for this pair; fall back
                    return self._copy_fd(fd, size)
                if not n:
                    raise Conflict("file shrank while it was being archived")
                offset += n
            return
        view = memoryview(self._buf)
        offset = 0
        while offset < size:
            n = os.preadv(fd, [view[: min(len(view), size - offset)]], offset)
            if not n:
                raise Conflict("file shrank while it was being archived")
            self._out.write(view[:n])
            offset += n

    def close(self) -> None:
        self._out.write(bytes(2 * BLOCK))
        if hasattr(self._out, "flush"):
            self._out.flush()


def write_tar_entries(out: BinaryIO | Any, entries: Iterable[tuple[TarEntry, bytes]]) -> None:
    """Write a complete archive of in-memory ``(entry, data)`` pairs."""
    writer = TarWriter(out)
    for entry, data in entries:
        writer.add(entry, data)
    writer.close()
