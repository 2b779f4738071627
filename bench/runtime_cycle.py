"""Micro benchmark of the runtime path alone: create -> start -> wait -> delete of `true`
with hoist's runtime (in this process, acting as the monitor) vs `runc run` (+ delete)
on the SAME bundle (busybox rootfs, Docker-like spec with seccomp, cgroup limits).

    .venv/bin/python bench/runtime_cycle.py [--runs 20]

Needs root. runc's figure includes its own process start-up (it is a binary you exec);
hoist's includes the fork of this process, which is what the monitor does.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import runtime_support as rs  # noqa: E402

from hoist import linux  # noqa: E402
from hoist.runtime.base import Stdio  # noqa: E402
from hoist.runtime.cgroups import open_cgroup  # noqa: E402
from hoist.runtime.hoistrt import HoistRuntime  # noqa: E402


PHASES: dict[str, list[float]] = {"create": [], "start": [], "wait": [], "delete": []}


def hoist_cycle(rt: HoistRuntime, bundle: str, cid: str, devnull: int) -> float:
    t0 = time.perf_counter()
    c = rt.create(cid, bundle, Stdio(devnull, devnull, devnull))
    t1 = time.perf_counter()
    rt.start(cid)
    t2 = time.perf_counter()
    _, status = os.waitpid(c.pid, 0)
    t3 = time.perf_counter()
    rt.delete(cid)
    t4 = time.perf_counter()
    assert os.waitstatus_to_exitcode(status) == 0
    for name, a, b in (("create", t0, t1), ("start", t1, t2), ("wait", t2, t3), ("delete", t3, t4)):
        PHASES[name].append(b - a)
    return t4 - t0


def runc_cycle(root: str, bundle: str, cid: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["runc", "--root", root, "run", "-b", bundle, cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_spec(bundle: str) -> dict:
    """Docker's defaults from the spec generator (default seccomp profile, 14 caps,
    masks, cgroup namespace); the test suite's hand-written spec when it is absent."""
    try:
        from hoist.runtime.spec import SpecInput, generate
    except ImportError:
        return rs.docker_like_spec(["true"], "/hoist-bench/cycle")
    paths = []
    for name in ("hostname", "hosts", "resolv.conf"):
        paths.append(os.path.join(bundle, name))
        with open(paths[-1], "w") as f:
            f.write("\n")
    return generate(SpecInput("bench" + "0" * 59, {"Cmd": ["true"], "Env": [f"PATH={rs.PATH}"]},
                              {"Memory": 64 << 20}, os.path.join(bundle, "rootfs"), *paths,
                              "/hoist-bench/cycle"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("runtime_cycle: needs root")
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    base = tempfile.mkdtemp(prefix="hoist-rtbench-")
    try:
        tpl = os.path.join(base, "tpl", "rootfs")
        os.makedirs(os.path.dirname(tpl))
        rs.make_rootfs(tpl)
        b = rs.Bundle(base, tpl, "bundle")
        b.write(bench_spec(b.dir))
        rt = HoistRuntime(root=os.path.join(base, "rt"))
        devnull = os.open(os.devnull, os.O_RDWR)
        hoist_cycle(rt, b.dir, "warm", devnull)
        for v in PHASES.values():
            v.clear()
        h = [hoist_cycle(rt, b.dir, f"h{i}", devnull) for i in range(a.runs)]
        hm = statistics.median(h) * 1000
        print(f"hoist runtime: create+start+wait+delete of true: median {hm:.1f} ms "
              f"(min {min(h) * 1000:.1f}, n={a.runs})")
        print("  phases (median ms): " + ", ".join(
            f"{k} {statistics.median(v) * 1000:.1f}" for k, v in PHASES.items()))
        if shutil.which("runc"):
            root = os.path.join(base, "runc")
            runc_cycle(root, b.dir, "warm")
            r = [runc_cycle(root, b.dir, f"r{i}") for i in range(a.runs)]
            rm = statistics.median(r) * 1000
            print(f"runc run (creates, starts, waits, deletes):  median {rm:.1f} ms "
                  f"(min {min(r) * 1000:.1f}, n={a.runs})")
            print(f"ratio hoist/runc: {hm / rm:.2f}")
    finally:
        try:
            open_cgroup("/hoist-bench").destroy(timeout=1)  # the shared parent, now empty
        except OSError:
            pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
