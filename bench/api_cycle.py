"""The whole container cycle through hoistd's Engine API, without any CLI:
create -> start -> wait -> remove of `busybox true`, against `runc run` of the same
bundle (the config.json hoistd generated for such a container, on a copy of its rootfs).

    .venv/bin/python bench/api_cycle.py [--runs 20]

Needs root. Starts a private hoistd (stopped by PID at the end).
"""
from __future__ import annotations

import argparse
import json
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

from hoist.client.http import Client  # noqa: E402

BODY = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}


def api_cycle(client: Client) -> float:
    t0 = time.perf_counter()
    cid = client.post_json("/containers/create", None, BODY)["Id"]
    client.request("POST", f"/containers/{cid}/start")
    status = client.post_json(f"/containers/{cid}/wait")
    client.request("DELETE", f"/containers/{cid}")
    elapsed = time.perf_counter() - t0
    assert status.get("StatusCode") == 0, status
    return elapsed


def runc_bundle(client: Client, base: str) -> str:
    """A bundle with hoistd's own spec for `busybox true` and a copy of the rootfs."""
    cid = client.post_json("/containers/create", None, {**BODY, "Cmd": ["sleep", "30"]})["Id"]
    client.request("POST", f"/containers/{cid}/start")
    try:
        info = client.get_json(f"/containers/{cid}/json")
        pid = info["State"]["Pid"]
        bundle = os.path.join(base, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(rootfs)
        # The container's own view of its root, copied as plain files.
        # /proc, /sys and /dev inside are kernel views: cp complains about some of them
        subprocess.run(["cp", "-a", f"/proc/{pid}/root/.", rootfs], check=False,
                       stderr=subprocess.DEVNULL)
        spec = _find_spec(cid)
    finally:
        client.request("DELETE", f"/containers/{cid}", {"force": "1"})
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["process"]["args"] = ["true"]
    spec["process"]["terminal"] = False
    spec["mounts"] = [m for m in spec["mounts"] if m.get("type") != "bind"]
    spec.setdefault("linux", {})["cgroupsPath"] = "/hoist-bench/runc-cycle"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def _find_spec(cid: str) -> dict:
    for root, _dirs, files in os.walk(BASE):
        if "config.json" in files and cid in root:
            with open(os.path.join(root, "config.json")) as f:
                return json.load(f)
    raise SystemExit(f"no config.json for {cid} under {BASE}")


def runc_cycle(root: str, bundle: str, n: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(["runc", "--root", root, "run", "-b", bundle, f"bench-{os.getpid()}-{n}"],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


BASE = ""


def main() -> None:
    global BASE
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    from conftest import start_hoistd

    BASE = tempfile.mkdtemp(prefix="hoist-api-cycle-", dir="/var/tmp")
    d = start_hoistd(BASE)
    try:
        d.hoist("image", "bootstrap", "busybox")
        client = Client(d.host, autostart=False)
        api_cycle(client)  # warm
        hoist_times = [api_cycle(client) for _ in range(args.runs)]
        bundle = runc_bundle(client, BASE)
        runc_root = os.path.join(BASE, "runc-root")
        runc_cycle(runc_root, bundle, -1)
        runc_times = [runc_cycle(runc_root, bundle, i) for i in range(args.runs)]
    finally:
        d.stop()
        shutil.rmtree(BASE, ignore_errors=True)
    h, r = statistics.median(hoist_times), statistics.median(runc_times)
    print(f"API create->start->wait->remove: median {h * 1000:.1f} ms over {args.runs} runs")
    print(f"runc run (same spec and rootfs): median {r * 1000:.1f} ms")
    print(f"ratio hoist/runc = {h / r:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
