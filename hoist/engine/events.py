"""The event bus behind ``GET /events``: every action publishes one Docker-shaped event."""
from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    type: str                 # image, container, network, volume, daemon
    action: str               # tag, untag, delete, import, load, save, pull, push, prune...
    actor_id: str
    attributes: tuple[tuple[str, str], ...] = ()
    time_nano: int = field(default_factory=time.time_ns)

    def to_json(self) -> dict[str, Any]:
        attrs = dict(self.attributes)
        d: dict[str, Any] = {
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": attrs},
            "scope": "local", "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        if self.type in ("image", "container"):
            # The pre-1.22 fields the docker CLI still prints for image/container events.
            d["status"] = self.action
            d["id"] = self.actor_id
            if "image" in attrs:
                d["from"] = attrs["image"]
        return d


class EventBus:
    def __init__(self, history: int = 1000) -> None:
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: set[queue.SimpleQueue[Event]] = set()

    def publish(self, type: str, action: str, actor_id: str, **attributes: str) -> Event:
        ev = Event(type, action, actor_id, tuple(sorted(attributes.items())))
        with self._lock:
            self._history.append(ev)
            subs = list(self._subscribers)
        for q in subs:
            q.put(ev)
        return ev

    def subscribe(self, since_nano: int | None = None) -> tuple[list[Event], "queue.SimpleQueue[Event]"]:
        """Past events at or after ``since_nano`` plus a queue of everything newer."""
        q: queue.SimpleQueue[Event] = queue.SimpleQueue()
        with self._lock:
            past = [e for e in self._history if since_nano is not None and e.time_nano >= since_nano]
            self._subscribers.add(q)
        return past, q

    def unsubscribe(self, q: "queue.SimpleQueue[Event]") -> None:
        with self._lock:
            self._subscribers.discard(q)
