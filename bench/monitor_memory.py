"""PSS that hoist keeps per running container: N monitors (+ a share of the fork server
and of its idle spare monitor).

Usage (root): python bench/monitor_memory.py [N] [runtime]
Builds a busybox bundle, starts N `sleep` containers through the Supervisor, reads
/proc/<pid>/smaps_rollup of every monitor, of the fork server and of its spare (with
the spare's creator), prints the figures.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def remove_bench_cgroups() -> None:
    """The (by then empty) parent cgroup the bench containers were made under."""
    for ctrl in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(os.path.join("/sys/fs/cgroup", ctrl, "hoist-bench"))
        except OSError:
            pass


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for k in kids:
        if os.getsid(k) == k:
            continue  # a monitor (its own session), counted on its own; not its container
        out.append(k)
        out += _descendants(k)
    return out


def rollup(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def measure(n: int = 50, runtime: str = "hoist") -> dict[str, float]:
    from hoist.runtime.supervisor import MonitorSpec, Supervisor
    from runtime_support import docker_like_spec, make_rootfs

    base = tempfile.mkdtemp(prefix="hoist-monmem-")
    monitors = []
    sup = None
    try:
        rootfs = os.path.join(base, "rootfs")
        make_rootfs(rootfs)
        sup = Supervisor(os.path.join(base, "run"))
        t0 = time.perf_counter()
        for i in range(n):
            cid = f"monmem{os.getpid()}-{i}"
            b = os.path.join(base, cid)
            os.makedirs(os.path.join(b, "bundle"))
            spec = docker_like_spec(["sleep", "1000"], f"/hoist-bench/{cid}")
            spec["root"] = {"path": rootfs, "readonly": True}
            with open(os.path.join(b, "bundle", "config.json"), "w") as f:
                json.dump(spec, f)
            m = sup.create(MonitorSpec(cid, os.path.join(b, "bundle"), os.path.join(b, "state"),
                                       runtime, False, False, os.path.join(b, "log.json")))
            m.start()
            monitors.append(m)
        per_start = (time.perf_counter() - t0) / n
        time.sleep(0.2)
        rolls = [rollup(m.monitor_pid) for m in monitors]
        # The fork server with its idle spare monitor and that spare's creator: fixed
        # costs, shared out over the containers.
        mons = {m.monitor_pid for m in monitors}
        fixed = [sup._proc.pid] + [p for p in _descendants(sup._proc.pid) if p not in mons]
        fs = {"Pss": sum(rollup(p)["Pss"] for p in fixed)}
        pss = sum(r["Pss"] for r in rolls) + fs["Pss"]
        return {"n": n, "pss_per_container_kib": pss / n,
                "monitor_private_kib": sum(r.get("Private_Dirty", 0) + r.get("Private_Clean", 0)
                                           for r in rolls) / n,
                "monitor_rss_kib": sum(r["Rss"] for r in rolls) / n,
                "forkserver_and_spare_pss_kib": fs["Pss"], "create_start_ms": per_start * 1000}
    finally:
        for m in monitors:
            try:
                m.kill(signal.SIGKILL)
            except Exception:
                pass
        for m in monitors:
            m.wait(10)
        if sup is not None:
            sup.close()
        shutil.rmtree(base, ignore_errors=True)
        remove_bench_cgroups()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rt = sys.argv[2] if len(sys.argv) > 2 else "hoist"
    print(json.dumps(measure(n, rt), indent=1))
