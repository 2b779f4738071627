"""The same `docker run` through hoistd (hoist's own runtime) and through a real dockerd:
what a process sees inside must be Docker's defaults -- capability sets, seccomp and
no-new-privs, mounts and their ro/rw, masked and read-only paths, denied syscalls."""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# Each line: a name and what it saw; compared line by line between the daemons.
PROBE = r"""
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp|NoNewPrivs)' /proc/self/status
echo "kcore=$(wc -c < /proc/kcore 2>&1)"
echo "keys=$(cat /proc/keys 2>&1 | wc -l)"
echo "sysrq=$(echo 0 2>&1 > /proc/sysrq-trigger && echo writable || echo denied)"
echo "sys=$(touch /sys/kernel/x >/dev/null 2>&1 && echo writable || echo read-only)"
echo "mount=$(mount -t tmpfs none /mnt >/dev/null 2>&1 && echo ok || echo denied)"
echo "unshare=$(unshare -U true >/dev/null 2>&1 && echo ok || echo denied)"
echo "hostname-set=$(hostname other >/dev/null 2>&1 && echo ok || echo denied)"
echo "mknod=$(mknod /tmp/d c 1 3 >/dev/null 2>&1 && echo ok || echo denied)"
echo "devices=$(ls /dev | sort | tr '\n' ' ')"
awk '{print $2, $3, substr($4, 1, 2)}' /proc/self/mounts | grep -v -E '^/ |^/etc/(hosts|hostname|resolv.conf) ' | sort
id
sed -E 's#/(docker|hoist)/[0-9a-f]{64}#/<container>#' /proc/self/cgroup
ulimit -n; ulimit -Hn; pwd; hostname | wc -c; echo "A=$A HOME=$HOME"
cat /proc/1/cmdline | tr '\0' ' '; echo
for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us cpu/cpu.shares; do
    echo "$f=$(cat /sys/fs/cgroup/$f 2>/dev/null)"
done
"""


@pytest.fixture(scope="module")
def peer(hoistd, dockerd):
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    return dockerd


@pytest.mark.parametrize("flags", [
    [],
    ["--cap-drop", "ALL", "--cap-add", "CHOWN", "--security-opt", "no-new-privileges"],
    ["--user", "65534:65534", "--read-only"],
    ["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"],
    ["--tmpfs", "/run:size=64k", "-v", "/etc:/hostetc:ro", "--ulimit", "nofile=100:200",
     "-w", "/tmp", "--hostname", "probe-host", "-e", "A=1"],
    ["-m", "64m", "--pids-limit", "20", "--cpus", "0.5", "--cpu-shares", "512"],
    ["--init"],
])
def test_inside_view_is_dockers(hoistd, peer, flags):
    args = ["run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", PROBE]
    ours = hoistd.docker(*args, check=False)
    theirs = peer.docker(*args, check=False)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    ours_lines, their_lines = ours.stdout.decode().splitlines(), theirs.stdout.decode().splitlines()
    assert ours_lines == their_lines, "\n".join(
        f"{a!r:70} {b!r}" for a, b in zip(ours_lines, their_lines) if a != b)
    if not flags:
        text = "\n".join(ours_lines)
        assert "CapEff:\t00000000a80425fb" in text
        # masked (a /dev/null bind: 0 bytes), or absent from this kernel's /proc
        assert any(line in ("kcore=0", "kcore=") for line in ours_lines)
        assert "mount=denied" in text and "unshare=denied" in text and "sys=read-only" in text


def _keys(d, p=""):
    out = set()
    if isinstance(d, dict):
        for k, v in d.items():
            out.add(f"{p}/{k}")
            if k != "Labels":
                out |= _keys(v, f"{p}/{k}")
    elif isinstance(d, list) and d and isinstance(d[0], dict):
        out |= _keys(d[0], p + "[]")
    return out


# dockerd 20.10 speaks API 1.41; these went away by 1.47, which hoistd speaks.
_OLDER_API_ONLY = {"/HostConfig/KernelMemory", "/HostConfig/KernelMemoryTCP"}


def test_documents_have_dockerds_keys(hoistd, peer):
    """inspect, a ps entry and exec inspect carry every key dockerd's do (clients
    index them without checking), and none it does not have."""
    import docker

    seen = {}
    for name, d in (("hoist", hoistd), ("docker", peer)):
        api = docker.APIClient(base_url=f"unix://{d.sock}")
        c = api.create_container("busybox", ["sleep", "100"],
                                 host_config=api.create_host_config(network_mode="none"))
        try:
            api.start(c["Id"])
            ps = [x for x in api.containers() if x["Id"] == c["Id"]][0]
            ex = api.exec_inspect(api.exec_create(c["Id"], ["true"])["Id"])
            seen[name] = [_keys(api.inspect_container(c["Id"])), _keys(ps), _keys(ex)]
        finally:
            api.remove_container(c["Id"], force=True)
    for what, ours, theirs in zip(("inspect", "ps", "exec inspect"), seen["hoist"], seen["docker"]):
        assert ours == theirs - _OLDER_API_ONLY, (what, sorted(theirs - ours), sorted(ours - theirs))


def test_events_match_dockerds(hoistd, peer):
    """The events of a short container's life: same actions in the same order, with the
    container's labels among the attributes."""
    import time

    seen = {}
    for name, d in (("hoist", hoistd), ("docker", peer)):
        since = f"{time.time():.3f}"
        cid = d.docker("run", "-d", "--network", "none", "--label", "team=blue", "busybox",
                       "true").stdout.decode().strip()
        d.docker("wait", cid)
        d.docker("rm", cid)
        out = d.docker("events", "--since", since, "--until", f"{time.time() + 0.5:.3f}",
                       "--filter", f"container={cid}", "--format", "{{json .}}").stdout.decode()
        evs = [json.loads(line) for line in out.splitlines()]
        seen[name] = [(e["Action"], sorted(e["Actor"]["Attributes"])) for e in evs]
        assert all(e["Actor"]["Attributes"]["team"] == "blue" for e in evs), evs
    assert seen["hoist"] == seen["docker"]


def test_runc_through_hoistd_sees_the_same(hoistd):
    """--runtime runc hands the same bundle to runc: the inside view is the same as
    with hoist's own runtime (which is the default, and what /info says)."""
    info = json.loads(hoistd.docker("info", "--format", "{{json .}}").stdout)
    assert info["DefaultRuntime"] == "hoist" and "runc" in info["Runtimes"]
    args = ["run", "--rm", "--network", "none", "busybox", "sh", "-c", PROBE]
    ours = hoistd.docker(*args)
    theirs = hoistd.docker("run", "--runtime", "runc", *args[1:])
    assert ours.stdout.decode().splitlines() == theirs.stdout.decode().splitlines()
    cid = hoistd.docker("create", "--runtime", "runc", "busybox", "true").stdout.decode().strip()
    try:
        doc = json.loads(hoistd.docker("inspect", cid).stdout)[0]
        assert doc["HostConfig"]["Runtime"] == "runc"
    finally:
        hoistd.docker("rm", cid)
    p = hoistd.docker("run", "--rm", "--runtime", "nosuch", "busybox", "true", check=False)
    assert p.returncode == 125 and b"unknown or invalid runtime name: nosuch" in p.stderr
