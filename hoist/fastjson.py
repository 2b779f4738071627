"""JSON through the C scanner and encoder alone, for hot paths.

The CLI: ``json.decoder`` compiles regular expressions when imported, which brings in
``re`` and ``enum``: about a fifth of a whole ``hoist images`` run. The monitors: each
Python-level json function a monitor runs writes to pages it would otherwise share
with the fork server. The C scanner works on its own, so simple documents are decoded
with it; anything it cannot take (or a malformed document) goes to :mod:`json` for the
exact answer or error.
"""
from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """The attributes the C scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_CONSTANTS.__getitem__)


_scan = _json.make_scanner(_Context())


def loads(data: bytes | bytearray | str) -> object:
    text = bytes(data).decode("utf-8") if not isinstance(data, str) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration:
        end = -1
    if end < 0 or text[end:].strip(_WHITESPACE):
        import json

        return json.loads(text)  # raises json's precise error
    return obj


def _not_serializable(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj: object, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps for plain data (dict, list, str, int, float, bool, None), through the
    same C encoder json uses; anything else raises TypeError as json.dumps would."""
    item_sep, key_sep = separators
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    #  skipkeys, allow_nan) -- the positional form json.encoder passes c_make_encoder.
    enc = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None,
                             key_sep, item_sep, False, False, True)
    return "".join(enc(obj, 0))
