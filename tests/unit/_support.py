"""Helpers shared by the unit tests."""
from __future__ import annotations

import errno
import os
from pathlib import Path


def user_xattrs_work(path: Path) -> bool:
    """Whether the file system under ``path`` stores ``user.*`` xattrs."""
    probe = path / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise
    finally:
        probe.unlink()
