"""Push and pull of a 300 MB image (three incompressible 100 MB layers) to the same
local reference registry (Debian's docker-registry), hoist vs a real dockerd.

    .venv/bin/python bench/push_pull.py [--runs 3] [--size-mb 100]

Every run starts from an empty registry (a fresh storage directory), so no blob is
"already there" and no cross-repository mount short-cuts a push; every pull starts from
an engine that no longer has the image. hoist pushes the layers as stored (uncompressed,
as ``load`` keeps them); dockerd gzips them, which is what it always does.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from imagegen import make_archive  # noqa: E402
from refregistry import free_port, start_registry  # noqa: E402
from run import Engine, _start_dockerd  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="hoist-bench-pp-", dir="/var/tmp")
    procs = []
    try:
        from conftest import start_hoistd
        os.makedirs(os.path.join(base, "hoist"))
        h = start_hoistd(os.path.join(base, "hoist"))
        procs.append(h)
        cli = [sys.executable, "-I", "-S", "-c",
               f"import sys; sys.path.insert(0, {REPO!r}); from hoist.cli.main import run; run()"]
        engines = [Engine("hoist", [*cli, "-H", h.host], dict(os.environ, PYTHONPATH=REPO,
                                                              DOCKER_CONFIG=os.path.join(base, "cfg")))]
        if not args.no_docker and shutil.which("dockerd"):
            d = _start_dockerd(os.path.join(base, "docker"))
            procs.append(d)
            docker = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"
            engines.append(Engine("docker", [docker], dict(os.environ, DOCKER_HOST=d.host,
                                                           DOCKER_CONFIG=os.path.join(base, "cfg"))))
        archive = os.path.join(base, "big.tar")
        make_archive(archive, "bench/big:1", layers=3, layer_size=args.size_mb * 1024 * 1024)
        port = free_port()
        results: dict[str, dict[str, list[float]]] = {}
        for e in engines:
            e.run("load", "-i", archive)
            res = results.setdefault(e.name, {"push": [], "pull": []})
            for i in range(args.runs):
                reg_dir = os.path.join(base, "registry")
                shutil.rmtree(reg_dir, ignore_errors=True)
                reg = start_registry(reg_dir, htpasswd=False, port=port)
                try:
                    name = f"127.0.0.1:{port}/bench/big:1"
                    e.run("tag", "bench/big:1", name)
                    t0 = time.perf_counter()
                    e.run("push", name)
                    res["push"].append(time.perf_counter() - t0)
                    e.run("rmi", "-f", name, "bench/big:1")
                    e.run("image", "prune", "-f", check=False)
                    t0 = time.perf_counter()
                    e.run("pull", name)
                    res["pull"].append(time.perf_counter() - t0)
                    e.run("tag", name, "bench/big:1")
                    e.run("rmi", name)
                finally:
                    reg.stop()
                print(f"{e.name} run {i + 1}: push {res['push'][-1]:.2f}s pull {res['pull'][-1]:.2f}s",
                      flush=True)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(base, ignore_errors=True)
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    print(f"\n# push/pull of 3 x {args.size_mb} MB incompressible layers, local reference registry "
          f"(medians of {args.runs} runs)\n")
    print("| operation | " + " | ".join(med) + " | ratio docker/hoist |")
    print("|---|" + "---|" * (len(med) + 1))
    for op in ("push", "pull"):
        ratio = f"{med['docker'][op] / med['hoist'][op]:.1f}x" if "docker" in med else "-"
        print(f"| {op} | " + " | ".join(f"{m[op]:.2f}s" for m in med.values()) + f" | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
