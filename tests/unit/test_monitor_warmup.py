"""monitor.warm_up: the fork server's one rehearsal of a monitor's life. It must finish
quickly and leave the server as it found it (signals, fds, files)."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from hoist.runtime import monitor
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # as the fork server has it
fds = sorted(os.listdir("/proc/self/fd"))
scratch = sys.argv[2]
t0 = time.monotonic()
monitor.warm_up(scratch)
took = time.monotonic() - t0
assert signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
assert signal.set_wakeup_fd(-1) == -1
assert sorted(os.listdir("/proc/self/fd")) == fds, (fds, os.listdir("/proc/self/fd"))
log = open(os.path.join(scratch, "log.json")).read()
assert '"log":"warm\\n"' in log.replace(" ", "") and '"stream":"stderr"' in log, log
print("took", took)
"""


def test_warm_up_runs_a_monitor_life_and_cleans_up(tmp_path):
    scratch = tmp_path / "w"
    scratch.mkdir()
    p = subprocess.run([sys.executable, "-c", SCRIPT, REPO, str(scratch)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "warm-up skipped" not in p.stdout + p.stderr
    assert float(p.stdout.split()[-1]) < 2.0
