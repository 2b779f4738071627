"""Side-by-side benchmarks: hoist vs Docker (Debian's docker.io) vs Podman, same machine,
same inputs, one run. Reports medians of several runs and the ratios.

    .venv/bin/python bench/run.py [--runs 5] [--size-mb 100] [--out bench/results/latest.md]

Each engine gets a private data root and socket; every daemon started here is stopped
by its PID. Traffic stays on unix sockets.
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

from imagegen import make_archive  # noqa: E402


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - t0


def median_of(fn, runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


class Engine:
    def __init__(self, name: str, cli: list[str], env: dict[str, str],
                 run_flags: tuple[str, ...] = ()) -> None:
        self.name, self.cli, self.env = name, cli, env
        self.run_flags = list(run_flags)  # after "run": what this engine needs here

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.cli, *args], env=self.env, capture_output=True, check=check)

    def time(self, *args: str) -> float:
        return timed([*self.cli, *args], self.env)


def start_engines(base: str) -> tuple[list[Engine], list]:
    from conftest import start_hoistd
    engines, procs = [], []
    os.makedirs(os.path.join(base, "hoist"))
    h = start_hoistd(os.path.join(base, "hoist"))
    procs.append(h)
    # The same isolated launcher `make setup` installs as /usr/local/bin/hoist.
    cli = [sys.executable, "-I", "-S", "-c",
           f"import sys; sys.path.insert(0, {REPO!r}); from hoist.cli.main import run; run()"]
    engines.append(Engine("hoist", [*cli, "-H", h.host], dict(os.environ, PYTHONPATH=REPO)))
    if shutil.which("dockerd"):
        d = _start_dockerd(os.path.join(base, "docker"))
        procs.append(d)
        docker = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"
        engines.append(Engine("docker", [docker], dict(os.environ, DOCKER_HOST=d.host)))
    if shutil.which("podman"):
        root = os.path.join(base, "podman")
        # podman asks runc for nofile/nproc limits above this sandbox's hard limits
        # ("error setting rlimit type 7"); the limits everyone else inherits, given
        # explicitly, let it run.
        import resource
        ulimits = []
        # (nproc: conmon's own hard limit here is lower than ours; 32768 is under it.)
        for name, which, cap in (("nofile", resource.RLIMIT_NOFILE, 1 << 20),
                                 ("nproc", resource.RLIMIT_NPROC, 32768)):
            soft, hard = resource.getrlimit(which)
            hard = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
            soft = hard if soft == resource.RLIM_INFINITY else min(soft, hard)
            ulimits += ["--ulimit", f"{name}={soft}:{hard}"]
        engines.append(Engine("podman", ["podman", "--root", root + "/storage", "--runroot", root + "/run",
                                         "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                                         "--events-backend", "file"], dict(os.environ), tuple(ulimits)))
    return engines, procs


def _unmount_under(base: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for m in sorted((p for p in points if p.startswith(base + "/")), reverse=True):
        subprocess.run(["umount", "-l", m], check=False, capture_output=True)


def _start_dockerd(base: str):
    from conftest import Daemon, _wait_socket
    os.makedirs(base, exist_ok=True)
    sock = os.path.join(base, "docker.sock")
    log = open(os.path.join(base, "dockerd.log"), "ab")
    proc = subprocess.Popen(["dockerd", "--host", "unix://" + sock, "--data-root", base + "/data",
                             "--exec-root", base + "/exec", "--pidfile", base + "/dockerd.pid",
                             "--bridge", "none", "--iptables=false", "--ip6tables=false"],
                            stdout=log, stderr=log, start_new_session=True)
    _wait_socket(sock, proc, 60)
    return Daemon(sock, base + "/data", proc, base)


def bench_load_save(engines: list[Engine], base: str, runs: int, size_mb: int) -> dict[str, dict[str, float]]:
    archive = os.path.join(base, "big.tar")
    tag = "bench/big:1"
    make_archive(archive, tag, layers=3, layer_size=size_mb * 1024 * 1024)
    out: dict[str, dict[str, float]] = {}
    for e in engines:
        loads, saves = [], []
        for _ in range(runs):
            e.run("rmi", "-f", tag, check=False)
            e.run("image", "prune", "-f", check=False)
            loads.append(e.time("load", "-i", archive))
            dst = os.path.join(base, f"out-{e.name}.tar")
            saves.append(e.time("save", "-o", dst, tag))
            os.unlink(dst)
        out[e.name] = {"load": statistics.median(loads), "save": statistics.median(saves)}
        e.run("rmi", "-f", tag, check=False)
    os.unlink(archive)
    return out


def bench_images(engines: list[Engine], base: str, runs: int) -> dict[str, float]:
    small = os.path.join(base, "small.tar")
    make_archive(small, "bench/small:1", layers=1, layer_size=1024)
    out = {}
    for e in engines:
        e.run("load", "-i", small)
        for i in range(10):
            e.run("tag", "bench/small:1", f"bench/small:t{i}")
        e.run("images")  # warm
        out[e.name] = median_of(lambda: e.time("images"), max(runs, 10))
    return out


def bench_run(engines: list[Engine], base: str, runs: int) -> dict[str, float]:
    """`run --rm busybox true`, the whole CLI run, for every engine that has busybox.

    The engines take turns, one run each per round, so that a busy spell of this
    (shared, noisy) machine lands on all of them alike rather than on one engine's
    whole series, with a pause before each run for what the last one left running;
    the figure per engine is the median of its runs."""
    ready: list[tuple[Engine, list[str]]] = []
    for e in engines:
        if e.run("image", "inspect", "busybox", check=False).returncode != 0:
            continue
        # --pull=never: a benchmark must never reach a remote registry.
        args = ["run", *e.run_flags, "--pull=never", "--rm", "--network", "none", "busybox", "true"]
        warm = e.run(*args, check=False)  # the first run pays one-off costs in every engine
        if warm.returncode != 0:
            print(f"{e.name}: cannot run containers here: {warm.stderr.decode()[-300:]}",
                  file=sys.stderr)
            continue
        ready.append((e, args))
    times: dict[str, list[float]] = {e.name: [] for e, _ in ready}
    for _ in range(max(runs, 10)):
        for e, args in ready:
            time.sleep(0.2)  # let the previous engine's after-work (clean-up, events) settle
            times[e.name].append(e.time(*args))
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_many(engines: list[Engine], base: str, count: int) -> dict[str, dict[str, float]]:
    """Start `count` detached sleep containers; report the time to start them all."""
    out: dict[str, dict[str, float]] = {}
    for e in engines:
        if e.run("image", "inspect", "busybox", check=False).returncode != 0:
            continue
        if e.run("run", *e.run_flags, "--pull=never", "--rm", "--network", "none", "busybox", "true",
                 check=False).returncode != 0:
            continue
        t0 = time.perf_counter()
        ids = []
        for _ in range(count):
            p = e.run("run", *e.run_flags, "--pull=never", "-d", "--network", "none", "busybox",
                      "sleep", "600")
            ids.append(p.stdout.decode().strip())
        elapsed = time.perf_counter() - t0
        out[e.name] = {"start_all": elapsed}
        for i in range(0, len(ids), 20):
            e.run("rm", "-f", *ids[i:i + 20], check=False)
    return out


def share_busybox(engines: list[Engine]) -> None:
    """Give every engine hoist's busybox image (offline, byte-identical)."""
    hoist = engines[0]
    if hoist.run("image", "inspect", "busybox", check=False).returncode != 0:
        hoist.run("image", "bootstrap", "busybox")  # offline, from Debian's busybox-static
    saved = hoist.run("save", "busybox").stdout
    for e in engines[1:]:
        subprocess.run([*e.cli, "load"], input=saved, env=e.env, capture_output=True, check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=100, help="size of each of the 3 layers")
    ap.add_argument("--containers", type=int, default=100, help="detached containers to start")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.md"))
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="hoist-bench-", dir="/var/tmp")
    engines, procs = start_engines(base)
    try:
        ls = bench_load_save(engines, base, args.runs, args.size_mb)
        im = bench_images(engines, base, args.runs)
        share_busybox(engines)
        rr = bench_run(engines, base, args.runs)
        many = bench_many(engines, base, args.containers)
    finally:
        for p in procs:
            p.stop()
        _unmount_under(base)  # podman leaves its storage's private bind mount behind
        shutil.rmtree(base, ignore_errors=True)
    lines = [f"# hoist benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)", "",
             f"Medians of {args.runs} runs. Ratio = other engine's time / hoist's time (higher is better for hoist).", "",
             "| benchmark | " + " | ".join(e.name for e in engines) + " | ratios |", "|---|" + "---|" * (len(engines) + 1)]

    def row(name: str, vals: dict[str, float]) -> str:
        h = vals["hoist"]
        ratios = ", ".join(f"{k}/hoist = {v / h:.2f}x" for k, v in vals.items() if k != "hoist")
        cells = (f"{vals[e.name]:.3f}s" if e.name in vals else "-" for e in engines)
        return f"| {name} | " + " | ".join(cells) + f" | {ratios} |"

    lines.append(row(f"load 3x{args.size_mb} MB", {k: v["load"] for k, v in ls.items()}))
    lines.append(row(f"save 3x{args.size_mb} MB", {k: v["save"] for k, v in ls.items()}))
    lines.append(row("images (CLI wall time)", im))
    if "hoist" in rr:
        lines.append(row("run --rm busybox true (CLI wall time)", rr))
    if "hoist" in many:
        lines.append(row(f"start {args.containers} detached sleep containers",
                         {k: v["start_all"] for k, v in many.items()}))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
