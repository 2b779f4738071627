"""Engine API routes for ``POST /commit`` and ``POST /containers/{id}/update``."""
from __future__ import annotations

from typing import Any

from ..engine.containers.commit import CommitOptions, commit
from ..engine.containers.update import update
from .http import JSONResponse, Request, Router


def register(r: Router, engine: Any) -> None:
    svc = engine.containers

    def post_commit(req: Request) -> Any:
        body = req.json_body()
        # dockerd: pause=false (or 0) commits without freezing; absent or empty means pause.
        pause = req.arg("pause") == "" or req.flag("pause")
        opts = CommitOptions(repo=req.arg("repo"), tag=req.arg("tag"), comment=req.arg("comment"),
                             author=req.arg("author"), pause=pause,
                             changes=tuple(req.args("changes")), config=body)
        return JSONResponse({"Id": commit(svc, req.arg("container"), opts)}, 201)

    def post_update(req: Request) -> Any:
        return update(svc, req.params["id"], req.json_body(), req.api_version)

    r.add("POST", "/commit", post_commit)
    r.add("POST", "/containers/{id}/update", post_update)
