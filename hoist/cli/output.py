"""Output helpers that reproduce the docker CLI's formatting byte for byte.

* sizes and durations: go-units ``HumanSizeWithPrecision``/``HumanSize``/``BytesSize``
  and ``HumanDuration``;
* times: Go's ``time.Time.String()``, RFC 3339 and docker's fixed-width RFC 3339 nano;
* tables: Go's ``text/tabwriter`` column algorithm (docker uses minwidth 10, tabwidth 1,
  padding 3, pad with spaces);
* JSON: Go's ``json.Indent``/``json.Compact`` applied to the daemon's raw bytes, so
  ``inspect`` prints exactly what the daemon sent, re-indented;
* Docker JSON message streams (pull/load/import/build style) as ``jsonmessage`` shows
  them.
"""
from __future__ import annotations

import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from datetime import datetime
    from typing import Any, Callable, Iterable

# ---------------------------------------------------------------------- sizes

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scale(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.<p>g``: like C's, which Python's ``%g`` also follows."""
    return "%.*g" % (precision, value)


def human_size_precision(size: float, precision: int) -> str:
    """go-units HumanSizeWithPrecision: decimal units, ``precision`` significant digits."""
    value, unit = _scale(float(size), 1000.0, _DECIMAL)
    return _go_g(value, precision) + unit


def human_size(size: float) -> str:
    """go-units HumanSize (4 significant digits)."""
    return human_size_precision(size, 4)


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits (``23.54GiB``)."""
    value, unit = _scale(float(size), 1024.0, _BINARY)
    return _go_g(value, 4) + unit


# ---------------------------------------------------------------------- durations


def human_duration(seconds: float) -> str:
    """go-units HumanDuration for a duration in seconds."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(ts: float, now: float | None = None) -> str:
    """``<duration> ago`` for a unix timestamp (docker's CreatedSince)."""
    return human_duration((time.time() if now is None else now) - ts) + " ago"


# ---------------------------------------------------------------------- times


def _offset(tm: time.struct_time) -> str:
    off = tm.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 3600:02d}{(off % 3600) // 60:02d}"


def go_time_string(ts: int | float) -> str:
    """Go's ``time.Unix(ts, 0).String()`` in local time: ``2024-01-02 15:04:05 +0000 UTC``."""
    tm = time.localtime(int(ts))
    return time.strftime("%Y-%m-%d %H:%M:%S ", tm) + _offset(tm) + " " + (tm.tm_zone or "UTC")


def _rfc_zone(tm: time.struct_time) -> str:
    off = tm.tm_gmtoff or 0
    if off == 0:
        return "Z"
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 3600:02d}:{(off % 3600) // 60:02d}"


def rfc3339(ts: int | float) -> str:
    """Go's ``time.Unix(ts, 0).Format(time.RFC3339)`` in local time."""
    tm = time.localtime(int(ts))
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + _rfc_zone(tm)


def rfc3339_nano_fixed(ns: int) -> str:
    """docker's ``2006-01-02T15:04:05.000000000Z07:00`` for a time in nanoseconds."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    tm = time.localtime(secs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{frac:09d}" + _rfc_zone(tm)


def split_fraction(text: str) -> tuple[str, str | None, str]:
    """``12:00:00.123456789+00:00`` → (``12:00:00``, ``123456789``, ``+00:00``); the
    digits are None when there is no fractional part."""
    head, dot, rest = text.partition(".")
    if not dot:
        return text, None, ""
    n = 0
    while n < len(rest) and rest[n].isdigit():
        n += 1
    return head, rest[:n], rest[n:]


def parse_rfc3339(text: Any) -> "datetime | None":
    """An RFC 3339 time as the daemon writes it (nanoseconds, ``Z`` or an offset)."""
    if not isinstance(text, str) or "T" not in text:
        return None
    from datetime import datetime  # only for the few commands that show dates

    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    head, digits, rest = split_fraction(t)
    if digits is not None:
        # Python parses at most microseconds; Go writes nanoseconds.
        t = head + "." + digits[:6].ljust(6, "0") + rest
    try:
        return datetime.fromisoformat(t)
    except ValueError:
        return None


def ansic(value: str) -> str:
    """docker's ``reformatDate``: an RFC 3339 time → Go's ANSIC layout, else unchanged."""
    dt = parse_rfc3339(value)
    if dt is None:
        return value
    return dt.strftime("%a %b ") + f"{dt.day:2d}" + dt.strftime(" %H:%M:%S %Y")


# ---------------------------------------------------------------------- text


def truncate_id(image_id: str) -> str:
    """docker's stringid.TruncateID: drop the ``algo:`` prefix, keep 12 characters."""
    i = image_id.find(":")
    if i >= 0:
        image_id = image_id[i + 1:]
    return image_id[:12]


def _char_width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, max_width: int) -> str:
    """docker's formatter.Ellipsis: cut to ``max_width`` display cells, ending in "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[:max_width - 1] + "…"
    widths = []
    total = 0
    for ch in s:
        total += _char_width(ch)
        widths.append(total)
    if total <= max_width:
        return s
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return s[:i + 1] + "…"
    return s


def tabwrite(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3,
             padchar: str = " ") -> str:
    """Go's text/tabwriter (flags 0) over ``text``: tab-terminated cells are aligned in
    columns; a column block is a run of consecutive lines that have that cell."""
    lines = [ln.split("\t") for ln in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, cell in enumerate(cells):
                if j < len(widths):
                    if j == len(cells) - 1:
                        parts.append(cell)
                    else:
                        parts.append(cell + padchar * (widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                w = len(lines[this][column]) + padding
                if w > width:
                    width = w
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


def table(headers: list[str], rows: Iterable[Iterable[str]], **kw: int) -> str:
    """A docker default table: header line plus one line per row, tab-aligned."""
    body = ["\t".join(headers)]
    body.extend("\t".join(r) for r in rows)
    return tabwrite("\n".join(body) + "\n", **kw)


# ---------------------------------------------------------------------- JSON


def go_reformat_json(raw: bytes | str, indent: str | None = "    ", prefix: str = "") -> str:
    """Go's ``json.Indent(dst, raw, prefix, indent)`` (or ``json.Compact`` when ``indent``
    is None): whitespace between tokens is rewritten, strings and numbers are kept
    exactly as the daemon wrote them."""
    src = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
    out: list[str] = []
    compact = indent is None
    depth = 0
    need_indent = False
    in_str = False
    esc = False
    n = len(src)
    i = 0

    def newline(d: int) -> None:
        if not compact:
            out.append("\n" + prefix + indent * d)  # type: ignore[operator]

    while i < n:
        c = src[i]
        if in_str:
            # copy the rest of the string in one go
            j = i
            while j < n:
                cj = src[j]
                if esc:
                    esc = False
                elif cj == "\\":
                    esc = True
                elif cj == '"':
                    break
                j += 1
            out.append(src[i:j + 1])
            i = j + 1
            in_str = False
            continue
        if c in " \t\r\n":
            i += 1
            continue
        if need_indent and c not in "]}":
            need_indent = False
            depth += 1
            newline(depth)
        if c == '"':
            out.append(c)
            in_str = True
            i += 1
            continue
        if c in "{[":
            need_indent = True
            out.append(c)
        elif c == ",":
            out.append(c)
            newline(depth)
        elif c == ":":
            out.append(c if compact else ": ")
        elif c in "}]":
            if need_indent:
                need_indent = False
            else:
                depth -= 1
                newline(depth)
            out.append(c)
        else:
            j = i
            while j < n and src[j] not in " \t\r\n,:{}[]\"":
                j += 1
            out.append(src[i:j])
            i = j
            continue
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------- message streams


class StreamError(Exception):
    """An ``error``/``errorDetail`` message in a JSON message stream."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def display_messages(messages: Iterable[Any], write: Callable[[str], None], *,
                     is_terminal: bool = False,
                     aux: Callable[[dict[str, Any]], None] | None = None) -> None:
    """docker's jsonmessage.DisplayJSONMessagesStream for a non-interactive output.

    Raises :class:`StreamError` at the first error message (after printing what came
    before it, as docker does)."""
    for m in messages:
        if not isinstance(m, dict):
            continue
        detail = m.get("errorDetail")
        if detail or m.get("error"):
            msg = ""
            if isinstance(detail, dict):
                msg = detail.get("message") or ""
            raise StreamError(msg or str(m.get("error") or "unknown error"))
        if m.get("aux") is not None:
            if aux is not None:
                aux(m["aux"])
            continue
        progress = m.get("progressDetail")
        progress_msg = m.get("progress") or ""
        if isinstance(progress, dict) and ((progress.get("current") or 0) > 0
                                           or (progress.get("total") or 0) > 0):
            continue  # progress bars are only drawn on a terminal; hoist never draws them
        parts = []
        if m.get("timeNano"):
            parts.append(rfc3339_nano_fixed(int(m["timeNano"])) + " ")
        elif m.get("time"):
            parts.append(rfc3339_nano_fixed(int(m["time"]) * 1_000_000_000) + " ")
        if m.get("id"):
            parts.append(f"{m['id']}: ")
        if m.get("from"):
            parts.append(f"(from {m['from']}) ")
        status = m.get("status") or ""
        if progress_msg:
            parts.append(f"{status} {progress_msg}\n")
        elif m.get("stream"):
            parts.append(str(m["stream"]))
        else:
            parts.append(f"{status}\n")
        write("".join(parts))
