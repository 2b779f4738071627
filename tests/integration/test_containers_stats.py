"""docker top and docker stats against hoistd: the docker 28 CLI, docker-py, the hoist
CLI, and the JSON side by side with a real dockerd's."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid

import docker
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

DOCKER28 = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"
NET = ("--network", "none")
ZERO = "0001-01-01T00:00:00Z"
# the shell burns CPU; the sleeps give top a tree to show
BUSY = ("sh", "-c", "sleep 301 & sleep 302 & while :; do :; done")


def _name(tag: str) -> str:
    return f"st-{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def busy(hoistd):
    """A running container with a 64 MiB limit, using a CPU, with three processes."""
    name = _name("busy")
    cid = hoistd.docker("run", "-d", "--name", name, "-m", "64m", *NET, "busybox", *BUSY,
                        docker=DOCKER28).stdout.decode().strip()
    deadline = time.time() + 10
    while len(_cgroup_pids(cid)) < 3:  # both sleeps forked
        assert time.time() < deadline
        time.sleep(0.05)
    yield name, cid
    hoistd.docker("rm", "-f", name, docker=DOCKER28, check=False)


@pytest.fixture(scope="module")
def created(hoistd):
    name = _name("created")
    cid = hoistd.docker("create", "--name", name, *NET, "busybox", "true",
                        docker=DOCKER28).stdout.decode().strip()
    yield name, cid
    hoistd.docker("rm", "-f", name, docker=DOCKER28, check=False)


def _cgroup_pids(cid: str) -> set[int]:
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
        p = f"{base}/hoist/{cid}/cgroup.procs"
        if os.path.exists(p):
            with open(p) as f:
                return {int(x) for x in f.read().split()}
    return set()


# ----------------------------------------------------------------------- docker CLI

def test_docker_top_lists_exactly_the_container_processes(hoistd, busy):
    name, cid = busy
    out = hoistd.docker("top", name, docker=DOCKER28).stdout.decode().splitlines()
    assert out[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in out[1:]]
    assert {int(r[1]) for r in rows} == _cgroup_pids(cid)
    cmds = sorted(r[-1] for r in rows)
    assert cmds == ["sh -c sleep 301 & sleep 302 & while :; do :; done", "sleep 301", "sleep 302"]
    out = hoistd.docker("top", name, "-o", "pid,comm", docker=DOCKER28).stdout.decode().split()
    assert out[:2] == ["PID", "COMMAND"] and sorted(out[3::2]) == ["sh", "sleep", "sleep"]


def test_docker_top_errors(hoistd, busy, created):
    name, _ = busy
    for args, msg in ((("-o", "comm"), "Couldn't find PID field in ps output"),
                      (("--bogus",), "ps: error: unknown gnu long option"),
                      (("-o", "user=PID"), 'specifying "user=PID" is not allowed')):
        p = hoistd.docker("top", name, *args, docker=DOCKER28, check=False)
        assert p.returncode == 1 and p.stderr.decode() == f"Error response from daemon: {msg}\n"
    p = hoistd.docker("top", created[0], docker=DOCKER28, check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == f"Error response from daemon: Container {created[1]} is not running\n"


def test_docker_stats_no_stream_shows_limit_cpu_and_pids(hoistd, busy):
    name, cid = busy
    p = hoistd.docker("stats", "--no-stream", "--format", "{{json .}}", name, docker=DOCKER28)
    row = json.loads(p.stdout)
    assert row["Name"] == name and row["ID"] == cid[:12]
    assert row["MemUsage"].endswith(" / 64MiB") and not row["MemUsage"].startswith("0B")
    assert float(row["MemPerc"].rstrip("%")) > 0
    assert float(row["CPUPerc"].rstrip("%")) > 10  # a busy loop, measured over a second
    assert row["PIDs"] == "3" and row["NetIO"] == "0B / 0B"


def test_docker_stats_no_stream_on_a_stopped_container_shows_zeros(hoistd, created):
    p = hoistd.docker("stats", "--no-stream", "--format", "{{json .}}", created[0], docker=DOCKER28)
    row = json.loads(p.stdout)
    assert (row["CPUPerc"], row["MemUsage"], row["MemPerc"], row["PIDs"]) == \
        ("0.00%", "0B / 0B", "0.00%", "0")


def test_docker_stats_streams(hoistd, busy):
    name, _ = busy
    env = dict(os.environ, DOCKER_HOST=hoistd.host,
               DOCKER_CONFIG=os.path.join(hoistd.base, "dockercfg"))
    p = subprocess.Popen([DOCKER28, "stats", "--format", "{{json .}}", name], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        rows = []
        deadline = time.time() + 20
        while len(rows) < 3 and time.time() < deadline:
            line = p.stdout.readline()
            assert line, "docker stats ended"
            m = re.search(rb"\{.*\}", line)
            if m:
                rows.append(json.loads(m.group(0)))
        assert len(rows) >= 3 and all(r["Name"] == name for r in rows)
        assert rows[-1]["MemUsage"].endswith(" / 64MiB")
    finally:
        p.kill()  # the CLI we started, by its pid
        p.wait()


def test_hoist_cli_renders_stats_and_top(hoistd, busy):
    name, cid = busy
    lines = hoistd.hoist("stats", "--no-stream", name).stdout.decode().splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
                                "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    cols = re.split(r"\s{2,}", lines[1].strip())
    assert cols[0] == cid[:12] and cols[1] == name and cols[3].endswith("/ 64MiB")
    assert float(cols[2].rstrip("%")) > 10 and cols[-1] == "3"
    row = json.loads(hoistd.hoist("stats", "--no-stream", "--format", "{{json .}}", name).stdout)
    assert row["PIDs"] == "3" and row["MemUsage"].endswith("/ 64MiB")
    h = hoistd.hoist("top", name).stdout.decode().splitlines()
    k = hoistd.docker("top", name, docker=DOCKER28).stdout.decode().splitlines()
    assert h[0] == k[0] and len(h) == len(k) == 4


def test_hoist_stats_streams(hoistd, busy, created):
    import sys

    name, _ = busy
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    p = subprocess.Popen([sys.executable, "-m", "hoist.cli.main", "-H", hoistd.host, "stats",
                          "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", name, created[0]],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        seen: dict[str, str] = {}
        deadline = time.time() + 20
        while len(seen) < 2 and time.time() < deadline:
            line = p.stdout.readline().decode()
            assert line, "hoist stats ended"
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                seen[parts[0]] = parts[1].strip()
        assert seen[name].endswith("/ 64MiB 3") and seen[created[0]] == "0B / 0B 0"
    finally:
        p.kill()  # the CLI we started, by its pid
        p.wait()


# ------------------------------------------------------------------------ docker-py

def test_docker_py_top_and_stats(hoistd, busy, created):
    client = docker.DockerClient(base_url=hoistd.host, version="1.47", timeout=60)
    name, cid = busy
    c = client.containers.get(name)
    top = c.top()
    assert top["Titles"][1] == "PID" and {int(p[1]) for p in top["Processes"]} == _cgroup_pids(cid)
    assert c.top(ps_args="aux")["Titles"][:2] == ["USER", "PID"]

    s = c.stats(stream=False)
    assert s["name"] == "/" + name and s["id"] == cid and "networks" not in s
    assert s["preread"] != ZERO and s["preread"] < s["read"]
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > pre["system_cpu_usage"] and cpu["online_cpus"] == os.cpu_count()
    assert s["memory_stats"]["limit"] == 64 << 20 and s["memory_stats"]["usage"] > 0
    assert s["pids_stats"]["current"] == 3

    t = time.monotonic()
    one = c.stats(stream=False, one_shot=True)
    assert time.monotonic() - t < 0.9  # no priming wait
    assert one["preread"] == ZERO and one["precpu_stats"]["cpu_usage"]["total_usage"] == 0

    frames = []
    gen = client.api.stats(cid, stream=True, decode=True)
    for f in gen:
        frames.append(f)
        if len(frames) == 3:
            break
    gen.close()
    assert frames[0]["preread"] == ZERO
    for a, b in zip(frames, frames[1:]):
        assert b["preread"] == a["read"] and b["precpu_stats"] == a["cpu_stats"]

    z = client.containers.get(created[0]).stats(stream=False)
    assert z["read"] == ZERO and z["memory_stats"] == {} and z["pids_stats"] == {}

    r = client.api._get(client.api._url("/containers/{0}/stats", cid),
                        params={"stream": "1", "one-shot": "1"})
    assert r.status_code == 400 and r.json() == {"message": "cannot have stream=true and one-shot=true"}
    with pytest.raises(docker.errors.NotFound):
        client.api.stats("no-such-container", stream=False)


def test_stats_stream_outlives_stop_and_ends_on_removal(hoistd):
    api = docker.APIClient(base_url=hoistd.host, version="1.47", timeout=60)
    name = _name("life")
    hoistd.docker("run", "-d", "--name", name, *NET, "busybox", "sleep", "300", docker=DOCKER28)
    frames: list[dict] = []
    done = threading.Event()

    def read() -> None:
        for f in api.stats(name, stream=True, decode=True):
            frames.append(f)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.time() + 10
        while len(frames) < 2:
            assert time.time() < deadline
            time.sleep(0.1)
        hoistd.docker("kill", name, docker=DOCKER28)
        n = len(frames)
        while len(frames) < n + 2:  # zero frames keep coming, as from dockerd
            assert time.time() < deadline + 10
            time.sleep(0.1)
        assert frames[-1]["read"] == ZERO and not done.is_set()
    finally:
        hoistd.docker("rm", "-f", name, docker=DOCKER28, check=False)
    assert done.wait(5), "the stream did not end when the container was removed"


# ------------------------------------------------------------- side by side: dockerd

def _shape(obj):
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


@pytest.fixture(scope="module")
def both(hoistd, dockerd):
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    made = []
    out = {}
    for d in (hoistd, dockerd):
        run, stopped = _name("cmp"), _name("cmpstop")
        d.docker("run", "-d", "--name", run, "-m", "32m", *NET, "busybox", "sleep", "300",
                 docker=DOCKER28)
        d.docker("create", "--name", stopped, *NET, "busybox", "true", docker=DOCKER28)
        made.append((d, run, stopped))
        out[d is hoistd] = (docker.APIClient(base_url=d.host, version="1.41", timeout=60), run, stopped)
    yield out[True], out[False]
    for d, run, stopped in made:
        d.docker("rm", "-f", run, stopped, docker=DOCKER28, check=False)


def test_stats_json_has_dockerds_shape(both):
    (h, hrun, hstop), (k, krun, kstop) = both
    hs, ks = h.stats(hrun, stream=False), k.stats(krun, stream=False)
    assert list(hs) == list(ks)
    assert _shape(hs) == _shape(ks)
    assert hs["memory_stats"]["limit"] == ks["memory_stats"]["limit"] == 32 << 20
    assert hs["pids_stats"] == ks["pids_stats"] == {"current": 1}
    hz, kz = h.stats(hstop, stream=False), k.stats(kstop, stream=False)
    for z, name in ((hz, hstop), (kz, kstop)):
        assert z.pop("name") == "/" + name and len(z.pop("id")) == 64
    assert hz == kz
    ho, ko = h.stats(hrun, stream=False, one_shot=True), k.stats(krun, stream=False, one_shot=True)
    assert _shape(ho) == _shape(ko) and ho["preread"] == ko["preread"] == ZERO


def test_top_answers_as_dockerd_does(both):
    (h, hrun, hstop), (k, krun, kstop) = both
    for args in (None, "aux", "-o pid,comm", "-eLf"):
        ht, kt = h.top(hrun, ps_args=args), k.top(krun, ps_args=args)
        assert ht["Titles"] == kt["Titles"], args
        assert [p[-1] for p in ht["Processes"]] == [p[-1] for p in kt["Processes"]] == \
            (["sleep"] if args == "-o pid,comm" else ["sleep 300"])
    # (not "f": what bare BSD options select depends on ps's session, not on the daemon)
    for args in ("-o comm", "--bogus", "-o user=PID", "-Z bogus"):
        with pytest.raises(docker.errors.APIError) as he:
            h.top(hrun, ps_args=args)
        with pytest.raises(docker.errors.APIError) as ke:
            k.top(krun, ps_args=args)
        assert (he.value.status_code, he.value.explanation) == \
            (ke.value.status_code, ke.value.explanation), args
    with pytest.raises(docker.errors.APIError) as he:
        h.top(hstop)
    with pytest.raises(docker.errors.APIError) as ke:
        k.top(kstop)
    assert he.value.status_code == ke.value.status_code == 409
    assert re.sub("[0-9a-f]{64}", "ID", he.value.explanation) == \
        re.sub("[0-9a-f]{64}", "ID", ke.value.explanation)


def test_top_and_stats_of_a_paused_container(both):
    for api, run, _ in both:
        api.pause(run)
        try:
            assert [p[-1] for p in api.top(run)["Processes"]] == ["sleep 300"]
            s = api.stats(run, stream=False, one_shot=True)
            assert s["pids_stats"] == {"current": 1} and s["read"] != ZERO
        finally:
            api.unpause(run)
