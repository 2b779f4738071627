"""The fork server fills pymalloc's free blocks before it forks monitors, so that a
monitor's allocations go to fresh pools of its own rather than into holes on pages it
shares with the server (each such page would be copied). No root needed."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from hoist.runtime import forkserver as fs

avail = fs._pymalloc_avail()
assert sorted(avail) == list(range(16, 513, 16)), avail
for size in avail:  # each filler takes exactly one block of its size class
    o = fs._filler(size)
    assert size - 16 < sys.getsizeof(o) <= size, (size, sys.getsizeof(o))

# Make holes: many objects of several sizes, every other one freed.
junk = [b"x" * (n % 400 + 2) for n in range(40000)]
del junk[::2]
before = sum(fs._pymalloc_avail().values())
fs._fill_free_blocks()
after = sum(fs._pymalloc_avail().values())
assert before > 10000, before
assert after < before / 5, (before, after)
assert len(fs._FILLERS) >= before / 2
print("ok", before, after)
"""


def test_free_blocks_are_filled():
    p = subprocess.run([sys.executable, "-c", SCRIPT, REPO], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr + p.stdout
    assert p.stdout.startswith("ok")
