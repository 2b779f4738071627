"""Run an exec to its end with a deadline, collecting its output (health probes)."""
from __future__ import annotations

import os
import signal
import struct
import time
from typing import Any


def run_to_end(proc: Any, timeout_s: float, keep: int = 8192) -> tuple[int, bytes]:
    """``proc``: a not yet started supervisor.ExecProcess. Returns (exit code, the first
    ``keep`` bytes of stdout and stderr as they came); (-1, output so far) when it did not
    finish in time, and then the process is killed."""
    deadline = time.monotonic() + timeout_s
    stream = proc.attach(False, True, True)
    out = bytearray()
    buf = b""
    timed_out = False
    with stream:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            stream.settimeout(left)
            try:
                data = stream.recv(65536)
            except TimeoutError:
                timed_out = True
                break
            except OSError:
                break
            if not data:
                break
            buf += data
            while len(buf) >= 8:
                (n,) = struct.unpack(">I", buf[4:8])
                if len(buf) < 8 + n:
                    break
                if len(out) < keep:
                    out += buf[8:8 + n]
                buf = buf[8 + n:]
    if timed_out:
        _kill_pid(proc.pid)
        return -1, bytes(out)
    st = proc.wait(max(1.0, deadline - time.monotonic()))
    if st is None:
        _kill_pid(proc.pid)
        return -1, bytes(out)
    return st.code, bytes(out)


def _kill_pid(pid: int) -> None:
    """SIGKILL a probe we started that is still running (it timed out). Through a pidfd:
    once opened, the signal reaches that process or none, even if it exits meanwhile."""
    if pid <= 0:
        return
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


