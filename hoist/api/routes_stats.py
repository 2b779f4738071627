"""Engine API routes for GET /containers/{id}/top and GET /containers/{id}/stats."""
from __future__ import annotations

import json
import time
from typing import Any, Iterator

from ..engine.containers import stats as cstats
from ..errors import InvalidArgument, NotFound
from .http import JSONResponse, Request, Router, StreamResponse, client_gone

INTERVAL = 1.0  # dockerd's stats collector ticks once a second


def register(r: Router, engine: Any) -> None:
    api = _StatsRoutes(engine.containers)
    r.add("GET", "/containers/{id}/top", api.top)
    r.add("GET", "/containers/{id}/stats", api.stats)


def _line(obj: dict[str, Any]) -> bytes:
    # Go's json.Encoder: compact, one object per line
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class _StatsRoutes:
    def __init__(self, svc: cstats.Containers) -> None:
        self.svc = svc

    def top(self, req: Request) -> Any:
        return cstats.top(self.svc, req.params["id"], req.arg("ps_args"))

    def _wait(self, req: Request, until: float) -> bool:
        """Sleep until the monotonic time ``until``; False if the client went away."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return True
            if client_gone(req.connection):
                return False
            time.sleep(min(left, 0.2))

    def stats(self, req: Request) -> Any:
        doc = self.svc.get(req.params["id"])  # 404 before anything else
        cid = doc["Id"]
        stream = req.flag("stream", True)
        one_shot = req.flag("one-shot") if req.api_version >= 1.41 else False
        if stream and one_shot:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        if not stream:
            first = cstats.current_frame(self.svc, cid)
            if one_shot or first["read"] == cstats.ZERO_TIME:
                return JSONResponse(cstats.chain(first, None))
            # precpu_stats from a sample one tick earlier, so CPU % is not 0
            if not self._wait(req, time.monotonic() + INTERVAL):
                return JSONResponse(cstats.chain(first, None))
            try:
                second = cstats.current_frame(self.svc, cid)
            except NotFound:
                second = cstats.empty_frame(doc["Name"], cid)
            return JSONResponse(cstats.chain(second, first))

        def gen() -> Iterator[bytes]:
            prev: dict[str, Any] | None = None
            tick = time.monotonic()
            while True:
                try:
                    cur = cstats.chain(cstats.current_frame(self.svc, cid), prev)
                except NotFound:
                    return  # removed: dockerd closes the stream
                prev = cur
                # a stopped container keeps getting zero frames, as from dockerd
                yield _line(cur)
                tick = max(tick + INTERVAL, time.monotonic())
                if not self._wait(req, tick):
                    return

        return StreamResponse(gen())
