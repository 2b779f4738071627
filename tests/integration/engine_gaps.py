"""What hoistd does not serve yet, in one place.

Tests that compare hoist with Docker run against both daemons; a test that needs one of
these features is skipped on hoistd, naming the gap, and runs everywhere else. Remove a
name here when the feature lands, and its tests run against hoistd again.
"""
from __future__ import annotations

import pytest

HOISTD_MISSING = {
}


def is_hoistd(daemon) -> bool:
    return daemon.sock.endswith("/hoist.sock")


def needs(daemon, *features: str) -> None:
    if not is_hoistd(daemon):
        return
    for f in features:
        if f in HOISTD_MISSING:
            pytest.skip(f"hoistd: {HOISTD_MISSING[f]}")


def lacks(daemon, feature: str) -> bool:
    """For a test that checks a gap's feature only in passing."""
    return is_hoistd(daemon) and feature in HOISTD_MISSING
