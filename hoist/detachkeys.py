"""Docker's detach keys (``--detach-keys``, default ctrl-p ctrl-q): the syntax, and the
matcher the daemon runs over a TTY attach's stdin (the client sends the keys through;
the daemon ends the attach, not the container)."""
from __future__ import annotations

from .errors import InvalidArgument

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str) -> bytes:
    """Comma separated ``ctrl-<x>`` or single characters; "" means the default."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in spec.split(","):
        if part.startswith("ctrl-") and len(part) == 6:
            ch = part[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in _CTRL:
                out.append(_CTRL[ch])
            else:
                raise InvalidArgument(f"Unknown character: '{part}'")
        elif len(part) == 1:
            out.append(ord(part))
        else:
            raise InvalidArgument(f"Unknown character: '{part}'")
    return bytes(out)


class DetachMatcher:
    """Feed stdin chunks; get back what to pass on, and whether the keys were typed.

    A partial match is held back (it may be the start of the sequence) and released
    when the next byte breaks it, as dockerd's escape proxy does."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                self.held = cand
                if cand == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            out += self.held
            self.held = b""
            if self.keys.startswith(bytes([b])):
                self.held = bytes([b])
            else:
                out.append(b)
        return bytes(out), False
