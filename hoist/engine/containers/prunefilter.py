"""``POST /containers/prune`` filters, as dockerd accepts them: until, label, label!.
Without this reading, a filtered prune would remove every stopped container."""
from __future__ import annotations

from typing import Any, Callable

from ..images import _check_filters, _match_labels, _until


def prune_filter(filters: dict[str, list[str]], created: Callable[[dict[str, Any]], float]
                 ) -> Callable[[dict[str, Any]], bool]:
    """A predicate on a container's inspect doc: True when the prune may remove it.
    ``created`` reads the doc's creation time (unix seconds)."""
    _check_filters(filters, {"until", "label", "label!"})
    until = _until(filters["until"][-1]) if filters.get("until") else None

    def ok(doc: dict[str, Any]) -> bool:
        if until is not None and created(doc) >= until:
            return False
        labels = doc["Config"].get("Labels") or {}
        if filters.get("label") and not _match_labels(labels, filters["label"]):
            return False
        if filters.get("label!") and _match_labels(labels, filters["label!"], any_=True):
            return False
        return True

    return ok
