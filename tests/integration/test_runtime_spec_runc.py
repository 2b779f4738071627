"""The generated spec runs under runc with Docker's security defaults in force.

Each test builds a busybox rootfs (Debian's busybox-static), generates a spec, writes a
bundle and runs ``runc run`` on it; the container prints probes that we check. Container
ids are unique and every container is deleted by id in a finally.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from hoist.errors import InvalidArgument
from hoist.runtime.spec import INIT_SOURCE, SpecInput, generate
from hoist.runtime.validate import validate

RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(RUNC), reason="runc not installed"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static not installed"),
]


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rootfs")
    root.chmod(0o755)  # mktemp makes it 0700: a non-root user could not reach /bin
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "mnt", "root", "home/app"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    # Run the install chrooted, so the applet links point at /bin/busybox of the rootfs.
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:root\napp:x:1000:\nextra:x:2000:app\n")
    return str(root)


CRUN = shutil.which("crun")
_CRUN = [CRUN or "crun"]


@pytest.fixture()
def run(rootfs, tmp_path):
    def _run(script: str, config: dict | None = None, host_config: dict | None = None,
             runtime: list[str] | None = None):
        runtime = runtime or [RUNC]
        cid = "hoist-spec-test-" + uuid.uuid4().hex[:12]
        (tmp_path / "hostname").write_text("box\n")
        (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
        (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        cfg = {"Cmd": ["/bin/sh", "-c", script], **(config or {})}
        spec = generate(SpecInput(
            container_id=cid, config=cfg, host_config=host_config or {}, rootfs=rootfs,
            hostname_path=str(tmp_path / "hostname"), hosts_path=str(tmp_path / "hosts"),
            resolv_conf_path=str(tmp_path / "resolv.conf"),
            cgroups_path="/hoist-spec-test/" + cid))
        validate(spec)
        bundle = tmp_path / "bundle"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(spec))
        try:
            p = subprocess.run([*runtime, "run", "--bundle", str(bundle), cid],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        finally:
            subprocess.run([*runtime, "delete", "-f", cid], capture_output=True, timeout=30)
        return p
    return _run


def _status(out: str, field: str) -> str:
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {out!r}")


def _masked_probe() -> str:
    # /proc/kcore is missing on some kernels: probe the first masked file this host has.
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"):
        if os.path.exists(path) and os.path.getsize(path) == 0:
            with open(path, "rb") as f:
                if f.read(1):
                    return path
    pytest.skip("no readable masked /proc file on this host")


def test_default_security(run):
    masked = _masked_probe()
    p = run(f"cat /proc/self/status; echo masked=$(wc -c < {masked});"
            " mount -t tmpfs x /mnt && echo MOUNTED; touch /sys/x && echo TOUCHED;"
            " echo user=$(id -u):$(id -g);"
            " echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE; true")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert _status(out, "CapEff") == "00000000a80425fb"
    assert _status(out, "CapBnd") == "00000000a80425fb"
    assert _status(out, "CapInh") == "0000000000000000"
    assert _status(out, "CapAmb") == "0000000000000000"
    assert _status(out, "Seccomp") == "2"
    assert _status(out, "NoNewPrivs") == "0"
    assert "masked=0" in out
    assert "MOUNTED" not in out and "TOUCHED" not in out and "WROTE" not in out
    assert "user=0:0" in out


@pytest.mark.skipif(not CRUN, reason="crun not installed")
def test_crun_accepts_the_same_spec(run):
    masked = _masked_probe()
    p = run(f"grep -E '^(CapEff|Seccomp):' /proc/self/status; wc -c < {masked};"
            " mount -t tmpfs x /mnt && echo MOUNTED; id -G; true",
            config={"User": "app"}, host_config={"Memory": 64 << 20, "Init": True}, runtime=_CRUN)
    if b"hybrid mode not supported" in p.stderr:
        pytest.skip("crun does not run containers on hybrid cgroup v1/v2 hosts")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert _status(out, "CapEff") == "0000000000000000"  # non-root: nothing effective
    assert _status(out, "Seccomp") == "2"
    assert "MOUNTED" not in out
    assert out.split("\n")[2] == "0" and set(out.split("\n")[3].split()) == {"1000", "2000"}
    p = run("grep CapEff /proc/self/status", runtime=_CRUN)
    assert _status(p.stdout.decode(), "CapEff") == "00000000a80425fb"


def test_no_new_privileges(run):
    p = run("grep NoNewPrivs /proc/self/status",
            host_config={"SecurityOpt": ["no-new-privileges:true"]})
    assert _status(p.stdout.decode(), "NoNewPrivs") == "1"


def test_seccomp_blocks_what_caps_would_allow(run):
    # Creating a user namespace needs no capability, only the unshare syscall, which the
    # default profile allows only with CAP_SYS_ADMIN: so seccomp alone decides here.
    if subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode != 0:
        pytest.skip("this host does not allow user namespaces")
    p = run("unshare -U true && echo USERNS; true")
    assert b"USERNS" not in p.stdout, p.stderr.decode()
    p = run("unshare -U true && echo USERNS; true", host_config={"SecurityOpt": ["seccomp=unconfined"]})
    assert b"USERNS" in p.stdout, p.stderr.decode()


def test_seccomp_unconfined_and_custom_profile(run):
    p = run("grep Seccomp: /proc/self/status", host_config={"SecurityOpt": ["seccomp=unconfined"]})
    assert _status(p.stdout.decode(), "Seccomp") == "0"
    # A Docker-format profile that allows everything but mkdir.
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                          "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                       "subArchitectures": ["SCMP_ARCH_X86"]}],
                          "syscalls": [{"names": ["mkdir", "mkdirat"],
                                        "action": "SCMP_ACT_ERRNO"}]})
    p = run("mkdir /tmp/d && echo MADE; echo done", host_config={"SecurityOpt": [f"seccomp={profile}"]})
    assert p.stdout.decode().split() == ["done"], p.stderr.decode()


def test_hostname_and_env(run):
    p = run("hostname; echo $HOSTNAME; cat /etc/hostname; pwd",
            config={"Hostname": "probe", "WorkingDir": "/tmp"})
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().split() == ["probe", "probe", "box", "/tmp"]


def test_cap_drop_all(run):
    p = run("grep CapEff /proc/self/status", host_config={"CapDrop": ["ALL"]})
    assert p.returncode == 0, p.stderr.decode()
    assert _status(p.stdout.decode(), "CapEff") == "0000000000000000"


def test_cap_add_sys_admin_allows_mount(run):
    p = run("mount -t tmpfs x /mnt && echo MOUNTED", host_config={"CapAdd": ["sys_admin"]})
    assert b"MOUNTED" in p.stdout, p.stderr.decode()


def test_privileged_gets_all_caps(run):
    with open("/proc/self/status") as f:
        host_bnd = _status(f.read(), "CapBnd")
    p = run("grep Cap /proc/self/status; grep Seccomp: /proc/self/status; touch /sys/x; "
            "wc -c < /proc/kcore", host_config={"Privileged": True})
    out = p.stdout.decode()
    assert _status(out, "CapEff") == host_bnd
    assert _status(out, "Seccomp") == "0"


def test_user_and_groups(run):
    p = run("id -u; id -g; id -G; echo $HOME", config={"User": "app"},
            host_config={"GroupAdd": ["wheel", "3000"]})
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().split("\n")
    assert lines[0] == "1000" and lines[1] == "1000"
    assert set(lines[2].split()) == {"1000", "2000", "10", "3000"}


def test_numeric_user_group(run):
    p = run("id -u; id -g", config={"User": "4242:4343"})
    assert p.stdout.decode().split() == ["4242", "4343"]


def test_binds_tmpfs_readonly_rootfs(run, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("hello")
    p = run("cat /data/f; echo w > /data/g && echo WROTE; echo x > /run/x && echo TMP;"
            " grep ' /run ' /proc/mounts; touch /etc/zz && echo ROOTW",
            host_config={"Binds": [f"{src}:/data:ro"], "Tmpfs": {"/run": "rw,size=64k"},
                         "ReadonlyRootfs": True})
    out = p.stdout.decode()
    assert out.startswith("hello")
    assert "WROTE" not in out and "ROOTW" not in out
    assert "TMP" in out and "size=64k" in out


def test_init_and_limits(run):
    if not os.path.exists(INIT_SOURCE):
        pytest.skip("tini-static not installed")
    p = run("cat /proc/1/cmdline | tr '\\0' ' '; echo; ulimit -n; cat /proc/self/oom_score_adj",
            host_config={"Init": True, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                         "OomScoreAdj": 100, "Memory": 64 << 20, "PidsLimit": 50})
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().split("\n")
    assert lines[0].startswith("/sbin/docker-init -- /bin/sh")
    assert lines[1] == "1024" and lines[2] == "100"


def test_bad_input_fails_before_kernel_work(rootfs, tmp_path):
    base = dict(container_id="x" * 64, rootfs=rootfs, hostname_path="", hosts_path="",
                resolv_conf_path="", cgroups_path="/hoist/x")
    with pytest.raises(InvalidArgument, match="unable to find user nobody: no matching "
                                              "entries in passwd file"):
        generate(SpecInput(config={"Cmd": ["true"], "User": "nobody"}, host_config={}, **base))
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        generate(SpecInput(config={"Cmd": ["true"]}, host_config={"Memory": 1 << 20}, **base))


# --- the same probes under dockerd ------------------------------------------------------

_PROBE = ("grep -E '^(Cap|Seccomp:|NoNewPrivs|Groups)' /proc/self/status; id; ulimit -n;"
          " awk '{print $2, $3, substr($4, 1, 2)}' /proc/self/mounts | grep -v '^/ '")


def _normalize(out: str) -> list[str]:
    # Mount sources differ (image layers, the engine's files); compare mount point,
    # file system type and ro/rw only.
    return [line.strip() for line in out.splitlines() if line.strip()]


_CG = "/sys/fs/cgroup"


@pytest.mark.parametrize("flags, config, host_config, extra", [
    ([], {}, {}, ""),
    (["--user", "app", "--group-add", "wheel"], {"User": "app"}, {"GroupAdd": ["wheel"]}, ""),
    (["--user", "4242:4343"], {"User": "4242:4343"}, {}, ""),
    (["--cap-drop", "ALL", "--cap-add", "net_admin"], {}, {"CapDrop": ["ALL"], "CapAdd": ["net_admin"]}, ""),
    (["--read-only", "--tmpfs", "/run:rw,size=64k,exec", "--shm-size", "1m"], {},
     {"ReadonlyRootfs": True, "Tmpfs": {"/run": "rw,size=64k,exec"}, "ShmSize": 1 << 20},
     "grep -E ' /(run|dev/shm) ' /proc/self/mounts"),
    (["--init", "--security-opt", "no-new-privileges"], {},
     {"Init": True, "SecurityOpt": ["no-new-privileges"]}, "cat /proc/1/cmdline | tr '\\0' ' '"),
    # (--privileged is not compared: dockerd 20.10 asks for every capability the kernel
    # knows and fails where its own bounding set is smaller; hoist gives what it holds.)
    (["--ulimit", "nofile=1024:2048", "--sysctl", "net.ipv4.ip_forward=1"], {},
     {"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
      "Sysctls": {"net.ipv4.ip_forward": "1"}},
     "ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward"),
    (["-m", "64m", "--cpus", "0.5", "--pids-limit", "50", "--cpu-shares", "512"], {},
     {"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 50, "CpuShares": 512},
     f"cat {_CG}/memory/memory.limit_in_bytes {_CG}/cpu/cpu.cfs_quota_us "
     f"{_CG}/cpu/cpu.cfs_period_us {_CG}/cpu/cpu.shares {_CG}/pids/pids.max"),
    # (dockerd orders same-depth binds by map iteration, so each bind has its own depth)
    (["-v", "{src}:/data:ro", "-v", "{src}/sub:/data/sub", "--mount",
      "type=bind,source={src},target=/a/b/c,readonly", "--mount", "type=tmpfs,target=/t,tmpfs-size=65536",
      "--tmpfs", "/etc/x"],
     {}, {"Binds": ["{src}:/data:ro", "{src}/sub:/data/sub"],
          "Mounts": [{"Type": "bind", "Source": "{src}", "Target": "/a/b/c", "ReadOnly": True},
                     {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 65536}}],
          "Tmpfs": {"/etc/x": ""}},
     "cat /data/f; grep ' /t ' /proc/self/mounts"),
    # (no -t: `runc run` would need a terminal of its own)
    (["--hostname", "probe", "--workdir", "/tmp", "-e", "A=1", "-e", "PATH=/bin"],
     {"Hostname": "probe", "WorkingDir": "/tmp", "Env": ["A=1", "PATH=/bin"]}, {},
     "hostname; pwd; echo $A $PATH $HOME $HOSTNAME"),
])
def test_same_as_dockerd(dockerd, rootfs, run, tmp_path, flags, config, host_config, extra):
    if "Init" in host_config and not os.path.exists(INIT_SOURCE):
        pytest.skip("tini-static not installed")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_text("data\n")
    flags = [f.replace("{src}", str(src)) for f in flags]
    host_config = json.loads(json.dumps(host_config).replace("{src}", str(src)))
    tag = "hoist-spec-cmp:" + uuid.uuid4().hex[:8]
    tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
    dockerd.docker("import", "-", tag, input=tar)
    try:
        theirs = dockerd.docker("run", "--rm", "--network", "none", *flags, tag,
                                "/bin/sh", "-c", f"{_PROBE}; {extra}", timeout=120)
    finally:
        dockerd.docker("rmi", "-f", tag, check=False)
    ours = run(f"{_PROBE}; {extra}", config=config, host_config=host_config)
    assert ours.returncode == 0, ours.stderr.decode()
    assert _normalize(ours.stdout.decode()) == _normalize(theirs.stdout.decode()), \
        (ours.stdout.decode(), theirs.stdout.decode())
