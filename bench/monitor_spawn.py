"""Cost of the process model over the runtime itself: Supervisor.create (fork server →
monitor → runtime.create) minus the runtime.create time measured inside the monitor.

Usage (root): python bench/monitor_spawn.py [N] [runtime]
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def measure(n: int = 20, runtime: str = "hoist") -> dict[str, float]:
    from hoist.runtime.supervisor import MonitorSpec, Supervisor
    from runtime_support import docker_like_spec, make_rootfs

    base = tempfile.mkdtemp(prefix="hoist-monspawn-")
    sup = None
    total, inner, start, cycle = [], [], [], []
    try:
        rootfs = os.path.join(base, "rootfs")
        make_rootfs(rootfs)
        sup = Supervisor(os.path.join(base, "run"))
        for i in range(n):
            cid = f"monspawn{os.getpid()}-{i}"
            b = os.path.join(base, cid)
            os.makedirs(os.path.join(b, "bundle"))
            spec = docker_like_spec(["true"], f"/hoist-bench/{cid}")
            spec["root"] = {"path": rootfs, "readonly": True}
            with open(os.path.join(b, "bundle", "config.json"), "w") as f:
                json.dump(spec, f)
            t0 = time.perf_counter()
            m = sup.create(MonitorSpec(cid, os.path.join(b, "bundle"), os.path.join(b, "state"),
                                       runtime, False, False, os.path.join(b, "log.json")))
            t1 = time.perf_counter()
            m.start()
            t2 = time.perf_counter()
            m.wait(10)
            t3 = time.perf_counter()
            total.append((t1 - t0) * 1000)
            inner.append(m.runtime_create_ms)
            start.append((t2 - t1) * 1000)
            cycle.append((t3 - t0) * 1000)
    finally:
        if sup is not None:
            sup.close()
        shutil.rmtree(base, ignore_errors=True)
        from monitor_memory import remove_bench_cgroups  # bench/ is on sys.path as the script dir
        remove_bench_cgroups()
    med = statistics.median
    return {"n": n, "runtime": runtime, "create_ms": med(total), "runtime_create_ms": med(inner),
            "overhead_ms": med([a - b for a, b in zip(total, inner)]), "start_ms": med(start),
            "run_true_cycle_ms": med(cycle)}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rt = sys.argv[2] if len(sys.argv) > 2 else "hoist"
    print(json.dumps(measure(n, rt), indent=1))
