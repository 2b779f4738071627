"""docker commit and docker update against hoistd: the real docker 28 CLI, docker-py and
hoist's own CLI; the committed image runs and shows the container's changes, and an
update reaches the container's cgroup files."""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time

import pytest

DOCKER28 = "/usr/local/bin/docker"
NET = ("--network", "none")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(DOCKER28),
                                reason="needs root and the docker 28 CLI")


def dk(d, *args, check=True, input=None):
    return d.docker(*args, docker=DOCKER28, check=check, input=input, timeout=120)


def out(p) -> str:
    return p.stdout.decode().strip()


_runs = iter(range(1_000_000))


def run_out(d, image: str, *cmd: str) -> bytes:
    """A container's stdout, read from its log after it exited: this checks the image,
    not attach (whose output on hoistd can still race a quick exit)."""
    name = f"cu-run-{os.getpid()}-{next(_runs)}"
    try:
        dk(d, "run", "-d", "--name", name, *NET, image, *cmd)
        dk(d, "wait", name)
        return dk(d, "logs", name).stdout
    finally:
        dk(d, "rm", "-f", name, check=False)


def py_run(client, image: str, *cmd: str) -> bytes:
    c = client.containers.run(image, list(cmd) or None, detach=True, network_mode="none")
    try:
        c.wait()
        return c.logs(stdout=True, stderr=False)
    finally:
        c.remove(force=True)


def _memory_limit_file(cid: str) -> str:
    from hoist.runtime.cgroups import open_cgroup
    cg = open_cgroup(f"/hoist/{cid}")
    return cg._f("memory", "memory.max" if cg.layout.unified else "memory.limit_in_bytes")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _last_layer_names(d, image: str) -> list[str]:
    """The entries of the image's top layer, from ``docker save``."""
    tar = dk(d, "save", image).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        layer = tf.extractfile(manifest[0]["Layers"][-1]).read()
    with tarfile.open(fileobj=io.BytesIO(layer)) as lt:
        return [m.name for m in lt.getmembers()]


@pytest.fixture
def cleanup(hoistd):
    names: list[tuple[str, str]] = []
    yield names
    for kind, n in reversed(names):
        if kind == "c":
            dk(hoistd, "rm", "-f", n, check=False)
        else:
            dk(hoistd, "rmi", "-f", n, check=False)


def test_commit_stopped_container_with_changes(hoistd, cleanup):
    cleanup += [("c", "cm-files"), ("i", "cm/files:1")]
    dk(hoistd, "run", "--name", "cm-files", *NET, "busybox", "sh", "-c",
       "echo hi > /new.txt; rm /bin/ls; echo changed > /etc/passwd; mkdir -p /opt/d; "
       "rm -rf /home; mkdir /home; touch /home/only")
    dk(hoistd, "wait", "cm-files")
    base_layers = json.loads(out(dk(hoistd, "image", "inspect", "-f", "{{json .RootFS.Layers}}",
                                    "busybox")))
    img = out(dk(hoistd, "commit", "-a", "me <me@x>", "-m", "a message",
                 "-c", 'CMD ["cat", "/new.txt", "/etc/passwd"]', "-c", "ENV Z=1",
                 "cm-files", "cm/files:1"))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", img)
    info = json.loads(out(dk(hoistd, "image", "inspect", "cm/files:1")))[0]
    assert info["Id"] == img and info["Author"] == "me <me@x>" and info["Comment"] == "a message"
    assert info["Config"]["Cmd"] == ["cat", "/new.txt", "/etc/passwd"]
    assert "Z=1" in info["Config"]["Env"]
    assert info["RootFS"]["Layers"][:-1] == base_layers and len(info["RootFS"]["Layers"]) == 2
    assert info["Parent"] == out(dk(hoistd, "image", "inspect", "-f", "{{.Id}}", "busybox"))
    hist = out(dk(hoistd, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                  "cm/files:1")).splitlines()
    assert hist[0].startswith("sh -c echo hi > /new.txt") and hist[0].endswith("|a message")
    # The new image runs with the container's changes.
    assert run_out(hoistd, "cm/files:1") == b"hi\nchanged\n"
    assert run_out(hoistd, "cm/files:1", "sh", "-c", "test -e /bin/ls && echo ls-present; "
                   "ls /home; test -d /opt/d && echo dir-ok") == b"only\ndir-ok\n"
    names = _last_layer_names(hoistd, "cm/files:1")
    assert "bin/.wh.ls" in names and "new.txt" in names and "home/.wh..wh..opq" in names
    # the runtime's mountpoints for /etc/hosts, hostname and resolv.conf are not changes
    assert not any(n.startswith(("etc/hosts", "etc/hostname", "etc/resolv.conf")) for n in names)


def test_commit_unchanged_container_adds_an_empty_layer_entry(hoistd, cleanup):
    cleanup += [("c", "cm-empty"), ("i", "cm/empty")]
    dk(hoistd, "run", "--name", "cm-empty", *NET, "busybox", "true")
    dk(hoistd, "wait", "cm-empty")
    dk(hoistd, "commit", "cm-empty", "cm/empty")
    base = out(dk(hoistd, "image", "inspect", "-f", "{{json .RootFS.Layers}}", "busybox"))
    assert out(dk(hoistd, "image", "inspect", "-f", "{{json .RootFS.Layers}}", "cm/empty")) == base
    top = out(dk(hoistd, "history", "--format", "{{.Size}} {{.CreatedBy}}", "cm/empty")).splitlines()[0]
    assert top == "0B true"


def test_commit_running_container_pauses_it_and_keeps_it_running(hoistd, cleanup):
    cleanup += [("c", "cm-live"), ("i", "cm/live"), ("i", "cm/live2")]
    dk(hoistd, "run", "-d", "--name", "cm-live", *NET, "busybox", "sh", "-c",
       "echo live > /live; sleep 300")
    for _ in range(50):
        if dk(hoistd, "exec", "cm-live", "cat", "/live", check=False).stdout == b"live\n":
            break
        time.sleep(0.1)
    since = str(time.time() - 1)
    dk(hoistd, "commit", "cm-live", "cm/live")
    dk(hoistd, "commit", "--pause=false", "cm-live", "cm/live2")
    until = str(time.time() + 1)
    assert out(dk(hoistd, "inspect", "-f", "{{.State.Status}}", "cm-live")) == "running"
    assert run_out(hoistd, "cm/live", "cat", "/live") == b"live\n"
    ev = out(dk(hoistd, "events", "--since", since, "--until", until, "--format",
                "{{.Type}} {{.Actor.Attributes.name}} {{.Action}} {{.Actor.Attributes.imageRef}}"))
    ours = [e.split(" ", 2)[2] for e in ev.splitlines()
            if e.startswith("container cm-live ") and e.split()[2] in ("pause", "unpause", "commit")]
    assert ours == ["pause <no value>", "unpause <no value>", "commit cm/live:latest", "commit cm/live2:latest"]


def test_commit_errors_match_dockerd_wording(hoistd, cleanup):
    cleanup += [("c", "cm-err")]
    dk(hoistd, "create", "--name", "cm-err", *NET, "busybox", "true")
    r = dk(hoistd, "commit", "-c", "FROM x", "cm-err", check=False)
    assert r.returncode == 1 and b"from is not a valid change command" in r.stderr
    r = dk(hoistd, "commit", "cm-nosuch", check=False)
    assert r.returncode == 1 and b"No such container: cm-nosuch" in r.stderr
    r = dk(hoistd, "commit", "cm-err", "UPPER", check=False)
    assert r.returncode == 1 and b"invalid reference format" in r.stderr
    # an untagged commit of a created (never started) container works
    img = out(dk(hoistd, "commit", "cm-err"))
    cleanup.append(("i", img))
    assert dk(hoistd, "image", "inspect", "-f", "{{json .RepoTags}}", img).stdout.strip() == b"[]"


def test_update_reaches_the_cgroup_and_host_config(hoistd, cleanup):
    cleanup += [("c", "up-live")]
    cid = out(dk(hoistd, "run", "-d", "--name", "up-live", *NET, "busybox", "sleep", "300"))
    r = dk(hoistd, "update", "-m", "64m", "--memory-swap", "128m", "--pids-limit", "77",
           "--cpu-shares", "512", "--restart", "on-failure:3", "up-live")
    assert out(r) == "up-live"
    limit = _read(_memory_limit_file(cid))
    assert limit == str(64 << 20)
    hc = json.loads(out(dk(hoistd, "inspect", "-f", "{{json .HostConfig}}", "up-live")))
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["CpuShares"]) == \
        (64 << 20, 128 << 20, 77, 512)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    stats_pids = dk(hoistd, "exec", "up-live", "cat", "/sys/fs/cgroup/pids/pids.max", check=False)
    if stats_pids.returncode == 0:  # the container sees its own cgroup (cgroupns)
        assert stats_pids.stdout == b"77\n"
    # growing beyond the stored swap limit needs --memory-swap too, as in dockerd
    r = dk(hoistd, "update", "-m", "200m", "up-live", check=False)
    assert r.returncode == 1 and b"Memory limit should be smaller than already set memoryswap limit" in r.stderr
    assert f"Cannot update container {cid}".encode() in r.stderr
    dk(hoistd, "update", "-m", "200m", "--memory-swap", "-1", "up-live")
    assert _read(_memory_limit_file(cid)) == str(200 << 20)
    r = dk(hoistd, "update", "-m", "3m", "up-live", check=False)
    assert r.returncode == 1 and b"Minimum memory limit allowed is 6MB" in r.stderr
    r = dk(hoistd, "update", "--cpus", "0.5", "--cpu-quota", "20000", "up-live", check=False)
    assert b"Conflicting options: Nano CPUs and CPU Quota cannot both be set" in r.stderr
    r = dk(hoistd, "update", "-m", "64m", "up-nosuch", check=False)
    assert r.returncode == 1 and b"No such container: up-nosuch" in r.stderr


def test_update_of_stopped_container_applies_at_start(hoistd, cleanup):
    cleanup += [("c", "up-stopped")]
    cid = out(dk(hoistd, "create", "--name", "up-stopped", *NET, "-m", "32m", "busybox",
                 "sleep", "300"))
    dk(hoistd, "update", "-m", "48m", "up-stopped")  # within the default 2 x 32m swap
    assert out(dk(hoistd, "inspect", "-f", "{{.HostConfig.Memory}}", "up-stopped")) == str(48 << 20)
    dk(hoistd, "start", "up-stopped")
    assert _read(_memory_limit_file(cid)) == str(48 << 20)


def test_docker_py_commit_and_update(hoistd, cleanup):
    docker = pytest.importorskip("docker")
    cleanup += [("c", "py-cu"), ("i", "py/cu:v1"), ("i", "py/cu:v2")]
    client = docker.DockerClient(base_url=hoistd.host, version="1.47")
    try:
        c = client.containers.run("busybox", ["sh", "-c", "echo py > /py.txt; sleep 300"],
                                  name="py-cu", detach=True, network_mode="none")
        for _ in range(50):
            if c.exec_run(["cat", "/py.txt"]).output == b"py\n":
                break
            time.sleep(0.1)
        img = c.commit(repository="py/cu", tag="v1", message="from py", author="py",
                       changes=["LABEL made=by-py", "WORKDIR /tmp", 'ENTRYPOINT ["cat"]'])
        assert img.tags == ["py/cu:v1"] and img.labels["made"] == "by-py"
        assert img.attrs["Config"]["Entrypoint"] == ["cat"] and img.attrs["Config"]["Cmd"] is None
        assert py_run(client, "py/cu:v1", "/py.txt") == b"py\n"
        img2 = c.commit(repository="py/cu", tag="v2", conf={"Cmd": ["cat", "/py.txt"]})
        assert img2.attrs["Config"]["Cmd"] == ["cat", "/py.txt"]
        assert py_run(client, "py/cu:v2") == b"py\n"
        assert c.update(mem_limit="96m", memswap_limit="192m", cpu_shares=256) == {"Warnings": None}
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 96 << 20
        assert _read(_memory_limit_file(c.id)) == str(96 << 20)
        with pytest.raises(docker.errors.APIError, match="Minimum memory limit allowed is 6MB"):
            c.update(mem_limit="1m")
    finally:
        client.close()


def test_hoist_cli_commit_and_update(hoistd, cleanup):
    cleanup += [("c", "hc-cu"), ("i", "hoist/cu:1")]
    hoistd.hoist("run", "--name", "hc-cu", *NET, "busybox", "sh", "-c", "echo h > /h.txt")
    hoistd.hoist("wait", "hc-cu")
    img = out(hoistd.hoist("commit", "-m", "msg", "-a", "me", "-c", "ENV Z=1", "-c",
                           'CMD ["cat", "/h.txt"]', "hc-cu", "hoist/cu:1"))
    assert img.startswith("sha256:")
    cfg = out(hoistd.hoist("image", "inspect", "-f", "{{.Author}} {{.Config.Env}}", "hoist/cu:1"))
    assert cfg.startswith("me [") and "Z=1" in cfg
    assert run_out(hoistd, "hoist/cu:1") == b"h\n"
    hoistd.hoist("update", "-m", "64m", "--memory-swap", "128m", "--restart", "always", "hc-cu")
    hc = json.loads(out(hoistd.hoist("inspect", "-f", "{{json .HostConfig}}", "hc-cu")))
    assert hc["Memory"] == 64 << 20 and hc["RestartPolicy"]["Name"] == "always"
    r = hoistd.hoist("update", "-m", "1m", "hc-cu", check=False)
    assert r.returncode == 1 and b"Minimum memory limit allowed is 6MB" in r.stderr



def _norm(data: bytes, cid: str) -> str:
    text = data.decode().replace(cid, "<id>")
    return re.sub(r"sha256:[0-9a-f]{64}", "<image>", text)


def _update_commit_steps(d, cli: str) -> list[tuple[int, str, str]]:
    run = (lambda *a: dk(d, *a, check=False)) if cli == "docker" else \
        (lambda *a: d.hoist(*a, check=False))
    name, img = f"cmp-cu-{cli}", f"cmp/cu-{cli}:1"
    run("rm", "-f", name)
    cid = out(run("create", "--name", name, *NET, "-m", "32m", "busybox", "sleep", "300"))
    steps = [
        ("start", name),
        ("update", "-m", "48m", name),
        ("update", "-m", "100m", name),
        ("update", "-m", "3m", name),
        ("update", "--cpus", "0.5", "--cpu-quota", "20000", name),
        ("update", "--cpus", "0.5", "--pids-limit", "50", "--cpu-shares", "512", name),
        ("update", "--cpu-quota", "20000", name),
        ("update", "--memory-reservation", "1m", name),
        ("update", "--restart", "always", name),
        ("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
         "{{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}", name),
        ("update", "-m", "64m", "cmp-cu-nosuch"),
        ("exec", name, "sh", "-c", "echo c > /c.txt; rm /bin/ls"),
        ("commit", "-a", "me", "-m", "msg", "-c", 'CMD ["cat", "/c.txt"]', "-c", "ENV A=1",
         name, img),
        ("image", "inspect", "-f", "{{json .Config.Cmd}} {{json .Config.Env}} {{.Author}} {{.Comment}} "
         "{{len .RootFS.Layers}}", img),
        ("history", "--format", "{{.CreatedBy}}|{{.Comment}}", img),
        ("inspect", "-f", "{{.State.Status}}", name),
        ("commit", "-c", "FROM x", name),
        ("commit", "cmp-cu-nosuch"),
    ]
    try:
        return [(p.returncode, _norm(p.stdout, cid), _norm(p.stderr, cid))
                for p in (run(*st) for st in steps)]
    finally:
        run("rm", "-f", name)
        run("rmi", img)


@pytest.mark.parametrize("cli", ["docker", "hoist"])
def test_update_and_commit_outputs_match_dockerd(hoistd, dockerd, cli):
    """The same command lines, through docker 28's CLI or hoist's, on dockerd and on
    hoistd: exit codes, outputs and error messages agree (restart-policy errors are left
    out: dockerd 20.10 words them differently from v1.47)."""
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    theirs = _update_commit_steps(dockerd, cli)
    ours = _update_commit_steps(hoistd, cli)
    assert theirs[2][0] == 1 and "Memory limit should be smaller" in theirs[2][2]
    for i, (h, k) in enumerate(zip(ours, theirs)):
        assert h == k, i


def test_update_restart_policy_applies_to_the_running_container(hoistd, cleanup):
    pytest.importorskip("hoist.engine.containers.restart")
    cleanup += [("c", "up-restart")]
    dk(hoistd, "run", "-d", "--name", "up-restart", *NET, "busybox", "sh", "-c",
       "sleep 1; exit 3")
    dk(hoistd, "update", "--restart", "on-failure:1", "up-restart")
    deadline = time.time() + 20
    count = "0"
    while time.time() < deadline:
        count = out(dk(hoistd, "inspect", "-f", "{{.RestartCount}}", "up-restart"))
        if count == "1":
            break
        time.sleep(0.2)
    assert count == "1"  # restarted once by the updated policy, then left exited
