import pytest

from hoist.detachkeys import DEFAULT_DETACH_KEYS, DetachMatcher, parse_detach_keys
from hoist.errors import InvalidArgument


def test_parse():
    assert parse_detach_keys("") == DEFAULT_DETACH_KEYS == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert parse_detach_keys("ctrl-@,ctrl-[") == b"\x00\x1b"
    with pytest.raises(InvalidArgument):
        parse_detach_keys("ctrl-1")
    with pytest.raises(InvalidArgument):
        parse_detach_keys("abc")


def test_matcher_passes_plain_input_and_stops_at_the_keys():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ls\n") == (b"ls\n", False)
    assert m.feed(b"ab\x10\x11cd") == (b"ab", True)


def test_matcher_holds_a_partial_match_across_chunks():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"a\x10") == (b"a", False)
    assert m.feed(b"\x11") == (b"", True)


def test_matcher_releases_a_broken_partial_match():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"\x10") == (b"", False)
    assert m.feed(b"z") == (b"\x10z", False)
    # a repeated first key keeps the newest as the possible start
    assert m.feed(b"\x10\x10") == (b"\x10", False)
    assert m.feed(b"\x11") == (b"", True)
