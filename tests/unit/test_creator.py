"""hoistrt.Creator: the child a spare monitor forks ahead of time to run one create.

The spare ignores SIGCHLD (as the fork server does). The creator must not: a process it
makes that ends before the creator itself has gone would be reaped by the kernel at
once, and the monitor (its subreaper) would never learn the exit status. Found by a
benchmark whose `run --rm ... true` waited for ever. No root needed."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from hoist import linux
from hoist.runtime import hoistrt
from hoist.runtime.base import Stdio


class QuickRuntime:
    "Its create makes a process that exits (7) while the creator still lives."

    def __init__(self, root):
        self.root = root

    def _create_for_parent(self, container_id, bundle, stdio):
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        time.sleep(0.3)
        r, w = os.pipe()
        return {"pid": pid, "poststart": [], "bundle": bundle}, [r, w]


signal.signal(signal.SIGCHLD, signal.SIG_IGN)    # as a spare monitor has it
creator = hoistrt.Creator.fork(make_runtime=QuickRuntime)
signal.signal(signal.SIGCHLD, signal.SIG_DFL)    # as the monitor has it by create
linux.prctl(36, 1)                               # PR_SET_CHILD_SUBREAPER, as the monitor
info, fds = creator.run({"root": "/nonexistent", "id": "c1", "bundle": "/b"},
                        Stdio(None, None, None))
assert len(fds) == 2, fds
made = info["pid"]
os.waitpid(creator.pid, 0)  # the creator is gone: what it made is ours now, as a zombie
try:
    pid, st = os.waitpid(made, os.WNOHANG)
except ChildProcessError:
    sys.exit("the made process was reaped by someone else: its status is lost")
assert pid == made, "the made process is not a zombie of ours"
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 7, st
print("ok")
"""


def test_process_made_by_a_creator_is_reaped_by_its_monitor():
    p = subprocess.run([sys.executable, "-c", SCRIPT, REPO], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr + p.stdout


SCRIPT_UNUSED = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from hoist.runtime import hoistrt
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
creator = hoistrt.Creator.fork()
creator.discard()                      # another runtime was asked for
pid, st = os.waitpid(creator.pid, 0)   # it sees EOF and ends
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st
print("ok")
"""


def test_unused_creator_ends():
    p = subprocess.run([sys.executable, "-c", SCRIPT_UNUSED, REPO], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr + p.stdout


SCRIPT_DIED_IDLE = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from hoist.runtime import hoistrt
from hoist.runtime.base import Stdio
creator = hoistrt.Creator.fork()
os.kill(creator.pid, signal.SIGKILL)
os.waitpid(creator.pid, 0)
# Its caller is told, and forks a child of its own instead (create_isolated).
assert creator.run({"root": "/nonexistent", "id": "c1", "bundle": "/b"},
                   Stdio(None, None, None)) is None
print("ok")
"""


def test_creator_that_died_idle_gives_way():
    p = subprocess.run([sys.executable, "-c", SCRIPT_DIED_IDLE, REPO], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr + p.stdout
