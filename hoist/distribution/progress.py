"""Docker's JSON progress messages (the stream of ``POST /images/create`` and push).

Byte progress is throttled: a message per layer at most every 100 ms (and the last one),
as dockerd does, so a fast loopback transfer does not drown the client in JSON.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

Emit = Callable[[dict[str, Any]], None]


def status(emit: Emit, text: str, ident: str = "") -> None:
    msg: dict[str, Any] = {"status": text}
    if ident:
        msg["id"] = ident
    emit(msg)


def detail(emit: Emit, text: str, ident: str) -> None:
    """A per-layer state change (``Pulling fs layer``, ``Pushed``…): empty progressDetail."""
    emit({"status": text, "progressDetail": {}, "id": ident})


def bar(current: int, total: int, start: float) -> str:
    """JSONProgress.String() at docker's default width: bar, numbers, time left."""
    from ..cli.output import human_duration, human_size
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(50, int(current / total * 100) // 2)
    box = f"[{'=' * pct}>{' ' * (50 - pct)}] "
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else f"{human_size(current):>8}"
    left = ""
    if current < total and current > 0:
        elapsed = time.time() - start
        remaining = elapsed / current * (total - current)
        left = " " + human_duration(remaining)
    return box + numbers + left


class ByteProgress:
    """Reports ``Downloading``/``Pushing``/``Extracting`` for one layer, throttled."""

    def __init__(self, emit: Emit, action: str, ident: str, total: int, interval: float = 0.1) -> None:
        self.emit = emit
        self.action = action
        self.ident = ident
        self.total = total
        self.current = 0
        self.start = time.time()
        self._last = 0.0
        self._interval = interval
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        with self._lock:
            self.current += n
            now = time.monotonic()
            if now - self._last < self._interval and self.current < self.total:
                return
            self._last = now
            cur = self.current
        self.emit({"status": self.action, "progressDetail": {"current": cur, "total": self.total},
                   "progress": bar(cur, self.total, self.start), "id": self.ident})

    def reset(self, current: int) -> None:
        with self._lock:
            self.current = current
