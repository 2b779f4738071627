"""Runtime lookup by name: "hoist" (in-process, the default), "runc", "crun"."""
from __future__ import annotations

import os
import shutil

from ..errors import InvalidArgument, Unavailable
from .base import Runtime

BINARIES = ("runc", "crun")


def get_runtime(name: str, root: str | None = None) -> Runtime:
    """``root`` is the runtime's state directory (default /run/hoist/<name>)."""
    root = root or os.path.join("/run/hoist", "runtime" if name == "hoist" else name)
    if name == "hoist":
        from .hoistrt import HoistRuntime  # lazily: its imports are only paid when used
        return HoistRuntime(root)
    if name in BINARIES:
        from .ociruntime import OCIRuntimeBinary
        path = shutil.which(name)
        if not path:
            raise Unavailable(f"runtime {name}: binary not found in PATH")
        return OCIRuntimeBinary(name, path, root)
    raise InvalidArgument(f"unknown runtime {name!r} (known: hoist, runc, crun)")
