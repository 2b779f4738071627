"""Inspect's ``Mounts``: the container's bind and tmpfs mounts in dockerd's MountPoint
shape, derived from HostConfig with the same parsing the spec generator uses."""
from __future__ import annotations

from typing import Any, Mapping

from ...errors import InvalidArgument
from ...runtime.spec import _api_mount, parse_bind


def _point(m: dict[str, Any], mode: str) -> dict[str, Any]:
    opts = m["options"]
    if m["type"] == "tmpfs":
        return {"Type": "tmpfs", "Source": "", "Destination": m["destination"], "Mode": "",
                "RW": "ro" not in opts, "Propagation": ""}
    return {"Type": "bind", "Source": m["source"], "Destination": m["destination"],
            "Mode": mode, "RW": "ro" not in opts, "Propagation": opts[-1]}


def mount_points(hc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per Binds item and Mounts item. An entry the spec generator would
    refuse is left out here: starting the container reports it (as it does today)."""
    out: list[dict[str, Any]] = []
    for b in hc.get("Binds") or ():
        try:
            m = parse_bind(b)
        except (InvalidArgument, AttributeError, TypeError):
            continue
        parts = str(b).split(":")
        out.append(_point(m, parts[2] if len(parts) == 3 else ""))
    for api in hc.get("Mounts") or ():
        try:
            m = _api_mount(api)
        except (InvalidArgument, AttributeError, TypeError):
            continue
        out.append(_point(m, ""))
    return out
