"""hoist's own OCI runtime against real kernels features, and against runc on the SAME
bundle. Needs root, busybox-static, runc (for the comparisons) and gcc (for the keyctl
probe)."""
from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_support as rs  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(rs.BUSYBOX), reason="needs busybox-static"),
]

PROBE = ("echo pid=$$; id; hostname; pwd; ls /proc/self/fd | tr '\\n' ' '; echo; "
         "grep -E '^Cap(Eff|Bnd|Prm|Inh|Amb)' /proc/self/status; grep -E '^Sig(Blk|Ign)' /proc/self/status; "
         "probe; unshare -U true 2>/dev/null; echo unshare=$?; "
         "mount -t tmpfs t /mnt 2>/dev/null; echo mount=$?; "
         "touch /sys/x 2>/dev/null; echo sysw=$?; echo 1 > /proc/sys/kernel/domainname 2>/dev/null; "
         "echo procsys=$?; wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids/pids.max; "
         "ls /dev | tr '\\n' ' '; echo; readlink /dev/ptmx; readlink /dev/fd; "
         "grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status; ulimit -n; "
         "head -c 1 /dev/zero | wc -c; echo x > /dev/full 2>/dev/null; echo full=$?; "
         "ip -o link show lo | grep -c LOWER_UP; ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; echo ping=$?; "
         "ps -o pid,comm | sed -n 2p | tr -s ' '")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("hoistrt"))
    tpl = os.path.join(base, "tpl", "rootfs")
    os.makedirs(os.path.dirname(tpl))
    rs.make_rootfs(tpl)
    e = type("Env", (), {})()
    e.base, e.tpl = base, tpl
    e.rt_root = os.path.join(base, "rt")
    e.runc_root = os.path.join(base, "runc")
    e.n = 0

    def bundle(args, **over):
        e.n += 1
        cid = f"hrt{os.getpid()}x{e.n}"
        b = rs.Bundle(base, tpl, cid)
        spec = rs.docker_like_spec(args, f"/hoist-test/{cid}", **over)
        b.write(spec)
        return b, cid, spec
    e.bundle = bundle
    yield e
    from hoist.runtime.cgroups import open_cgroup
    try:
        open_cgroup("/hoist-test").destroy(timeout=1)  # the shared parent, empty by now
    except OSError:
        pass


def _assert_gone(cid: str) -> None:
    from hoist.runtime.cgroups import open_cgroup
    assert not open_cgroup(f"/hoist-test/{cid}").exists(), "cgroup left behind"
    with open("/proc/self/mountinfo") as f:
        assert cid not in f.read(), "mount left behind"


def test_probes_match_runc(env):
    b, cid, _ = env.bundle(["sh", "-c", PROBE])
    r = rs.run_hoist(env.rt_root, b.dir, cid, extra_fds=3)
    assert r.error == "" and r.code == 0, r
    out = r.out
    assert "pid=1\n" in out
    assert "uid=0(root) gid=0(root)" in out and "hoisttest\n" in out
    assert "\n/\n" in out
    # only 0-2 (+3 for ls' own directory fd): nothing of the monitor leaks in
    assert "0 1 2 3 \n" in out
    assert "CapEff:\t00000000a80425fb" in out and "CapBnd:\t00000000a80425fb" in out
    assert "CapInh:\t0000000000000000" in out and "CapAmb:\t0000000000000000" in out
    # nothing the monitor (python ignores SIGPIPE, SIGXFSZ) blocked or ignored leaks in
    assert "SigBlk:\t0000000000000000" in out
    ign = int(out.split("SigIgn:\t")[1].split()[0], 16)
    assert not ign & (1 << (signal.SIGPIPE - 1)) and not ign & (1 << (signal.SIGXFSZ - 1))
    assert not ign & (1 << (signal.SIGHUP - 1))
    assert "keyctl=Operation not permitted" in out
    assert "unshare=1" in out and "mount=1" in out and "sysw=1" in out and "procsys=1" in out
    assert "Seccomp:\t2" in out and "NoNewPrivs:\t0" in out
    assert "\n67108864\n100\n" in out  # memory and pids limits applied, visible inside
    assert "pts/ptmx\n/proc/self/fd\n" in out
    devline = [ln for ln in out.splitlines() if ln.startswith("core ") or ln.startswith("fd ")][0]
    assert set(devline.split()) >= {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
                                    "mqueue", "fd", "stdin", "stdout", "stderr", "ptmx"}
    assert "full=1" in out
    assert "\n1\nping=" in out  # lo is up in the new network namespace (as runc does it)
    lines = out.splitlines()
    # /proc/keys, /proc/timer_list masked (empty), /sys/firmware an empty tmpfs
    i = lines.index("procsys=1")
    assert lines[i + 1:i + 4] == ["0", "0", "0"]
    _assert_gone(cid)  # (no host mount under the bundle: other tests may mount meanwhile)
    assert not os.path.exists(os.path.join(env.rt_root, cid))
    with pytest.raises(ProcessLookupError):
        os.kill(r.pid, 0)
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
    assert rr.code == 0, rr.err
    assert rr.out == out, f"runc:\n{rr.out}\nhoist:\n{out}"


def test_user_cwd_and_groups_match_runc(env):
    proc_over = ["sh", "-c", "id; pwd; grep -E '^Cap(Eff|Prm)' /proc/self/status; touch /x 2>&1; "
                             "echo $HOME; umask"]
    b, cid, spec = env.bundle(proc_over)
    spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 1000]}
    spec["process"]["cwd"] = "/home/user"
    spec["process"]["env"].append("HOME=/home/user")
    spec["root"]["readonly"] = True
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert "uid=1000(user) gid=1000(user) groups=10,1000(user)" in r.out
    assert "/home/user\n" in r.out
    assert "CapEff:\t0000000000000000" in r.out
    assert "Read-only file system" in r.out
    if shutil.which("runc"):
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        assert rr.out == r.out


def test_exit_codes_and_signals(env):
    b, cid, _ = env.bundle(["sh", "-c", "exit 3"])
    assert rs.run_hoist(env.rt_root, b.dir, cid).code == 3
    b, cid, _ = env.bundle(["sleep", "30"])

    def killer(rt, cid, created):
        time.sleep(0.1)
        st = rt.state(cid)["status"]
        rt.kill(cid, signal.SIGKILL)
        return st
    r = rs.run_hoist(env.rt_root, b.dir, cid, during=killer)
    assert r.extra == "running"
    assert r.code == 137
    _assert_gone(cid)
    # a signal the container's pid 1 handles
    b, cid, _ = env.bundle(["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done"])

    def term(rt, cid, created):
        time.sleep(0.3)
        rt.kill(cid, signal.SIGTERM)
    assert rs.run_hoist(env.rt_root, b.dir, cid, during=term).code == 42


@pytest.mark.parametrize("args,kind,code,msg", [
    (["foo"], "CommandNotFound", 127, 'exec: "foo": executable file not found in $PATH'),
    (["/nope"], "CommandNotFound", 127, 'exec: "/nope": stat /nope: no such file or directory'),
    (["/etc"], "CannotExecute", 126, 'exec: "/etc": permission denied'),
    (["/etc/passwd"], "CannotExecute", 126, 'exec: "/etc/passwd": permission denied'),
])
def test_exec_errors(env, args, kind, code, msg):
    b, cid, _ = env.bundle(args)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert (r.kind, r.code, r.error) == (kind, code, msg)
    _assert_gone(cid)
    if shutil.which("runc"):
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        assert msg.replace('"', '\\"') in rr.err  # runc words it the same (its log quotes)


def test_cwd_cannot_reach_host_fds(env):
    """-w /proc/self/fd/N must not land in a host directory (CVE-2024-21626)."""
    for n in range(3, 9):
        b, cid, spec = env.bundle(["sh", "-c", "pwd; ls"])
        spec["process"]["cwd"] = f"/proc/self/fd/{n}"
        b.write(spec)
        r = rs.run_hoist(env.rt_root, b.dir, cid, extra_fds=6)
        assert r.code != 0 and "chdir to cwd" in r.error, r
        _assert_gone(cid)


def test_symlinked_mount_targets_stay_inside(env, tmp_path):
    b, cid, spec = env.bundle(["sh", "-c", "cat /lnk/hello; ls /inside"])
    rootfs = os.path.join(b.dir, "rootfs")
    os.makedirs(os.path.join(rootfs, "inside"))
    # absolute and climbing links: resolved as if the rootfs were "/"
    os.symlink("/../../../../../inside", os.path.join(rootfs, "lnk"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("hi from bind\n")
    spec["mounts"].append({"destination": "/lnk", "type": "bind", "source": str(src),
                           "options": ["rbind", "ro"]})
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0, r
    assert r.out == "hi from bind\nhello\n"
    # proc onto a symlink is refused outright
    b, cid, spec = env.bundle(["true"])
    rootfs = os.path.join(b.dir, "rootfs")
    os.rmdir(os.path.join(rootfs, "proc"))
    os.symlink("/tmp", os.path.join(rootfs, "proc"))
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.kind == "InvalidArgument" and "symlink" in r.error, r
    _assert_gone(cid)


def test_terminal(env):
    b, cid, spec = env.bundle(["sh", "-c", "tty; stat -c 'console=%t' /dev/console; stty size"])
    spec["process"]["terminal"] = True
    spec["process"]["consoleSize"] = {"height": 33, "width": 101}
    b.write(spec)

    # the console fd only exists in the monitor: read it there
    def during(rt, cid, created):
        out = b""
        deadline = time.time() + 5
        while time.time() < deadline:
            r, _, _ = select.select([created.console], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(created.console, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if b"101" in out:
                    break
        return out.decode(errors="replace")
    r = rs.run_hoist(env.rt_root, b.dir, cid, terminal=True, during=during)
    assert r.code == 0, r
    assert "/dev/pts/0" in r.extra and "33 101" in r.extra, r.extra
    assert "console=88" in r.extra  # /dev/console is the pty: major 136 (hex 88)


def test_exec_pause_resume_stats(env):
    b, cid, _ = env.bundle(["sleep", "30"])

    def during(rt, cid, created):
        from hoist.runtime.base import Stdio
        res = {}
        outr, outw = os.pipe()
        proc = {"args": ["sh", "-c", "echo $$; hostname; cat /proc/1/cmdline; echo; "
                                     "grep CapEff /proc/self/status; id -u; pwd; "
                                     "cat /proc/self/cgroup | grep memory"],
                "env": [f"PATH={rs.PATH}"], "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000},
                "capabilities": {"bounding": rs.DOCKER_CAPS}}
        c = rt.exec(cid, b.dir, proc, Stdio(None, outw, outw))
        os.close(outw)
        os.waitpid(c.pid, 0)
        data = b""
        while chunk := os.read(outr, 4096):
            data += chunk
        os.close(outr)
        res["exec"] = data.decode()
        try:
            rt.exec(cid, b.dir, dict(proc, args=["nope"]), Stdio(None, None, None))
        except Exception as e:  # noqa: BLE001
            res["exec_err"] = f"{type(e).__name__}: {e}"
        rt.pause(cid)
        res["paused"] = rt.state(cid)["status"]
        with open(f"/proc/{created.pid}/status") as f:
            res["frozen_state"] = [ln for ln in f if ln.startswith("State:")][0].split()[1]
        rt.resume(cid)
        res["resumed"] = rt.state(cid)["status"]
        st = rt.cgroup(cid).stats()
        res["stats"] = [st.memory_limit, st.pids_current, st.cpu_total_ns > 0, len(st.cpu_percpu_ns)]
        rt.kill(cid, signal.SIGKILL)
        return res
    r = rs.run_hoist(env.rt_root, b.dir, cid, during=during)
    assert r.code == 137, r
    ex = r.extra["exec"].splitlines()
    assert ex[0] != "1" and int(ex[0]) > 1          # inside the pid namespace, not init
    assert ex[1] == "hoisttest"
    assert ex[2].startswith("sleep")
    assert ex[3] == "CapEff:\t0000000000000000" and ex[4] == "1000" and ex[5] == "/tmp"
    assert ex[6].endswith(f"/hoist-test/{cid}")
    assert r.extra["exec_err"] == 'CommandNotFound: exec: "nope": executable file not found in $PATH'
    assert r.extra["paused"] == "paused" and r.extra["frozen_state"] in ("D", "S")
    assert r.extra["resumed"] == "running"
    assert r.extra["stats"][0] == 64 << 20 and r.extra["stats"][1] == 1
    assert r.extra["stats"][3] == os.cpu_count()
    _assert_gone(cid)


def test_cgroup_cpuset_inherited_on_host(env):
    import subprocess
    from hoist.runtime.cgroups import open_cgroup
    cg = open_cgroup(f"/hoist-test/cpuset-{os.getpid()}")
    cg.create()
    p = subprocess.Popen(["sleep", "30"])
    try:
        if "cpuset" in cg.v1:
            with open(os.path.join(cg.v1["cpuset"], "cpuset.cpus")) as f:
                assert f.read().strip() != ""
        cg.add(p.pid)  # would fail with ENOSPC on an empty v1 cpuset
        assert cg.pids() == [p.pid]
        cg.destroy()   # kills what is left inside, then removes every directory
        assert p.wait(5) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not cg.exists()


def test_docker_default_spec_matches_runc(env):
    """The spec branch's generator (Docker's defaults: caps, masks, devices, the default
    seccomp profile, cgroup namespace) run by hoist and by runc: the same answers."""
    spec_mod = pytest.importorskip("hoist.runtime.spec")
    env.n += 1
    cid = f"hrt{os.getpid()}d{env.n}"
    b = rs.Bundle(env.base, env.tpl, cid)
    paths = {}
    for name in ("hostname", "hosts", "resolv.conf"):
        paths[name] = os.path.join(b.dir, name)
        with open(paths[name], "w") as f:
            f.write(f"{name} file\n")
    probe = PROBE.replace("ls /dev | tr '\\n' ' '; echo; ", "ls /dev | tr '\\n' ' '; echo; cat /etc/hosts; ")
    spec = spec_mod.generate(spec_mod.SpecInput(
        container_id=cid + "0" * 40, config={"Cmd": ["sh", "-c", probe], "Env": [f"PATH={rs.PATH}"]},
        host_config={"Memory": 64 << 20, "PidsLimit": 100}, rootfs=os.path.join(b.dir, "rootfs"),
        hostname_path=paths["hostname"], hosts_path=paths["hosts"],
        resolv_conf_path=paths["resolv.conf"], cgroups_path=f"/hoist-test/{cid}"))
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    for want in ("pid=1\n", "CapEff:\t00000000a80425fb", "keyctl=Operation not permitted",
                 "unshare=1", "mount=1", "sysw=1", "procsys=1", "Seccomp:\t2", "hosts file\n",
                 "\n67108864\n100\n"):
        assert want in r.out, (want, r.out)
    _assert_gone(cid)
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
    assert rr.code == 0, rr.err
    assert rr.out == r.out, f"runc:\n{rr.out}\nhoist:\n{r.out}"


def test_sysctl_domainname_oom_rlimits_match_runc(env):
    b, cid, spec = env.bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname; "
                                           "cat /proc/self/oom_score_adj; ulimit -n; ulimit -u; "
                                           "ls /proc/sys/net/ipv4/ip_forward -l | cut -c1-10"])
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    spec["domainname"] = "example.org"
    spec["process"]["oomScoreAdj"] = 500
    spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256},
                                  {"type": "RLIMIT_NPROC", "hard": 77, "soft": 77}]
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert r.out.splitlines()[:5] == ["1", "example.org", "500", "256", "77"]
    if shutil.which("runc"):
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        # this runc leaves the spec's "domainname" unset ("(none)"); the rest must agree
        a, o = rr.out.splitlines(), r.out.splitlines()
        assert a[:1] + a[2:] == o[:1] + o[2:]
    b, cid, spec = env.bundle(["true"])
    spec["linux"]["sysctl"] = {"kernel/../../etc": "1"}
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.kind == "InvalidArgument" and "sysctl" in r.error, r
    _assert_gone(cid)


def test_exec_with_terminal(env):
    b, cid, _ = env.bundle(["sleep", "30"])

    def during(rt, cid, created):
        from hoist.runtime.base import Stdio
        proc = {"args": ["sh", "-c", "tty; echo done"], "env": [f"PATH={rs.PATH}"], "cwd": "/",
                "terminal": True, "user": {"uid": 0, "gid": 0},
                "capabilities": {k: rs.DOCKER_CAPS for k in ("bounding", "effective", "permitted")}}
        c = rt.exec(cid, b.dir, proc, Stdio(None, None, None, terminal=True))
        out = b""
        deadline = time.time() + 5
        while time.time() < deadline and b"done" not in out:
            r, _, _ = select.select([c.console], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(c.console, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        os.waitpid(c.pid, 0)
        os.close(c.console)
        rt.kill(cid, signal.SIGKILL)
        return out.decode(errors="replace")
    r = rs.run_hoist(env.rt_root, b.dir, cid, during=during)
    assert r.code == 137
    assert "/dev/pts/0" in r.extra and "done" in r.extra, r.extra
    _assert_gone(cid)


def test_v2_freezer_on_the_unified_hierarchy():
    """The host's cgroup2 tree (controller-less on a hybrid host, the only one on pure
    v2) exercises the v2 code for real: membership, cgroup.freeze, removal."""
    import subprocess
    from hoist.runtime import cgroups
    lay = cgroups.host_layout()
    if not lay.v2:
        pytest.skip("no cgroup2 hierarchy mounted")
    cg = cgroups.Cgroup(f"/hoist-test-v2-{os.getpid()}", cgroups.Layout({}, lay.v2, True))
    cg.create()
    p = subprocess.Popen(["sleep", "30"])
    try:
        cg.add(p.pid)
        assert cg.pids() == [p.pid]
        cg.freeze()
        assert cg.frozen()
        cg.thaw()
        assert not cg.frozen()
        cg.destroy()
        assert p.wait(5) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not cg.exists()


@pytest.mark.parametrize("change,msg", [
    (lambda s: s["linux"].update(namespaces=[n for n in s["linux"]["namespaces"] if n["type"] != "uts"]),
     "uts namespace"),
    (lambda s: s["linux"].update(namespaces=[n for n in s["linux"]["namespaces"] if n["type"] != "mount"]),
     "mount namespace is required"),
    (lambda s: s["linux"].update(sysctl={"vm.swappiness": "1"}), "not namespaced"),
    (lambda s: (s["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}),
                s["linux"].update(namespaces=[n for n in s["linux"]["namespaces"]
                                              if n["type"] != "network"])), "private network namespace"),
])
def test_host_changing_specs_refused(env, change, msg):
    b, cid, spec = env.bundle(["true"])
    change(spec)
    b.write(spec)
    hostname = os.uname().nodename
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.kind == "InvalidArgument" and msg in r.error.lower(), r
    assert os.uname().nodename == hostname
    _assert_gone(cid)


def test_hooks(env, tmp_path):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1 $(cat)\" >> {log}\n")
    hook.chmod(0o755)
    b, cid, spec = env.bundle(["true"])
    spec["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}]
                     for k in ("prestart", "createRuntime", "poststart", "poststop")}
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    lines = log.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["prestart", "createRuntime", "poststart", "poststop"]
    import json
    st = json.loads(lines[0].split(" ", 1)[1])
    assert st["id"] == cid and st["pid"] == r.pid and st["status"] == "created"
    # a failing createRuntime hook fails create and leaves nothing behind
    b, cid, spec = env.bundle(["true"])
    spec["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.kind == "HoistError" and "createRuntime hook /bin/false failed" in r.error, r
    _assert_gone(cid)


def test_concurrent_containers(env):
    """Several monitors at once: shared parent cgroups, the seccomp cache, pid namespaces."""
    bundles = [env.bundle(["sh", "-c", "echo $$"]) for _ in range(6)]
    kids = []
    for b, cid, _ in bundles:
        pid = os.fork()
        if pid == 0:
            try:
                r = rs.run_hoist(env.rt_root, b.dir, cid)
                os._exit(0 if (r.code, r.out, r.error) == (0, "1\n", "") else 1)
            except BaseException:  # noqa: BLE001
                os._exit(2)
        kids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids]
    assert codes == [0] * len(kids)
    for _, cid, _ in bundles:
        _assert_gone(cid)


@pytest.mark.parametrize("prop,tag", [("rshared", "shared:"), ("rprivate", ""), ("rslave", "")])
def test_rootfs_propagation(env, prop, tag):
    b, cid, spec = env.bundle(["sh", "-c", "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo"])
    spec["linux"]["rootfsPropagation"] = prop
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert (tag in r.out) if tag else ("shared:" not in r.out), r.out
    _assert_gone(cid)  # nothing propagated back to the host
    # runc before 1.2.7/1.3 never applied "shared" to the new root (opencontainers/runc
    # #1755, fixed by #4724); hoist does what the fix does, so compare the others only
    if shutil.which("runc") and prop != "rshared":
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        assert rr.code == 0
        assert ("shared:" in rr.out) == ("shared:" in r.out), (rr.out, r.out)


def test_devices_and_bind_options_match_runc(env, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("data\n")
    b, cid, spec = env.bundle(["sh", "-c", "ls -ln /dev/net/tun /dev/fuse | cut -c1-10,35-; "
                                           "cat /ro/f; touch /ro/g 2>/dev/null; echo ro=$?; "
                                           "touch /rw/g; echo rw=$?; awk '$5 == \"/ro\" {print $6}' "
                                           "/proc/self/mountinfo"])
    spec["linux"]["devices"] = [
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]
    spec["mounts"] += [
        {"destination": "/ro", "type": "bind", "source": str(src), "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/rw", "type": "bind", "source": str(src), "options": ["bind", "rw"]}]
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert "ro=1\nrw=0\n" in r.out and "data\n" in r.out
    assert r.out.strip().endswith("ro,nosuid,nodev,relatime") or "ro,nosuid,nodev" in r.out
    # created with mknod (not bound from the host) with the spec's modes
    assert "crw-------  10, 200" in r.out and "crw-rw-rw-  10, 229" in r.out
    (src / "g").unlink()
    if shutil.which("runc"):
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        assert rr.out == r.out, (rr.out, r.out)


def test_oom_kill_is_visible_in_stats(env):
    b, cid, spec = env.bundle(["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"])
    spec["linux"]["resources"]["memory"] = {"limit": 16 << 20}
    b.write(spec)

    def during(rt, cid, created):
        deadline = time.time() + 20
        while time.time() < deadline:
            st = rt.cgroup(cid).stats()
            if st.oom_kills:
                return st.oom_kills
            if rt.state(cid)["status"] == "stopped":
                break
            time.sleep(0.02)
        return rt.cgroup(cid).stats().oom_kills
    r = rs.run_hoist(env.rt_root, b.dir, cid, during=during)
    assert r.extra and r.extra >= 1, r
    assert "survived" not in r.out
    _assert_gone(cid)


def test_lifecycle_errors_and_delete_before_start(env):
    b, cid, _ = env.bundle(["true"])

    def before(rt, cid, created):
        res = {"state": rt.state(cid)["status"]}
        try:
            rt.create(cid, b.dir, __import__("hoist.runtime.base", fromlist=["Stdio"]).Stdio(None, None, None))
        except Exception as e:  # noqa: BLE001
            res["dup"] = type(e).__name__
        return res

    def during(rt, cid, created):
        try:
            rt.start(cid)
        except Exception as e:  # noqa: BLE001
            return type(e).__name__
    r = rs.run_hoist(env.rt_root, b.dir, cid, before_start=before, during=during)
    assert r.before == {"state": "created", "dup": "Conflict"}
    assert r.extra == "Conflict" and r.code == 0
    # created, never started, deleted: the blocked init goes, and everything with it
    b, cid, _ = env.bundle(["true"])
    pid = os.fork()
    if pid == 0:
        from hoist.runtime.base import Stdio
        from hoist.runtime.hoistrt import HoistRuntime
        rt = HoistRuntime(root=env.rt_root)
        try:
            c = rt.create(cid, b.dir, Stdio(None, None, None))
            rt.delete(cid)
            os.waitpid(c.pid, 0)
            os._exit(0 if not os.path.exists(os.path.join(env.rt_root, cid)) else 1)
        except BaseException:  # noqa: BLE001
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    _assert_gone(cid)


def test_no_new_privs_and_ambient_caps_match_runc(env):
    b, cid, spec = env.bundle(["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp|Cap(Eff|Amb|Inh))' /proc/self/status"])
    caps = ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]
    spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    spec["process"]["noNewPrivileges"] = True
    spec["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted",
                                                         "inheritable", "ambient")}
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert "NoNewPrivs:\t1" in r.out and "Seccomp:\t2" in r.out
    assert "CapEff:\t0000000000000401" in r.out and "CapAmb:\t0000000000000401" in r.out
    if shutil.which("runc"):
        assert rs.run_runc(env.runc_root, b.dir, cid + "r").out == r.out


def test_stats_read_what_runc_made(env):
    """runc creates its cgroup at the same cgroupsPath: one stats reader for both."""
    import subprocess
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    from hoist.runtime.cgroups import open_cgroup
    b, cid, _ = env.bundle(["sleep", "30"])
    rid = cid + "r"
    subprocess.run(["runc", "--root", env.runc_root, "run", "-d", "-b", b.dir, rid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    try:
        cg = open_cgroup(f"/hoist-test/{cid}")
        st = cg.stats()
        assert st.memory_limit == 64 << 20 and st.pids_current == 1 and st.pids_limit == 100
        assert st.memory_usage > 0
        assert len(cg.pids()) == 1
        cg.freeze()
        state = subprocess.run(["runc", "--root", env.runc_root, "state", rid], capture_output=True,
                               text=True).stdout
        assert '"status": "paused"' in state
        cg.thaw()
    finally:
        subprocess.run(["runc", "--root", env.runc_root, "delete", "-f", rid], capture_output=True)
    assert not open_cgroup(f"/hoist-test/{cid}").exists()


@pytest.mark.parametrize("cgroupns", [True, False])
def test_v2_layout_end_to_end(env, cgroupns):
    """hoist's runtime with the v2 code paths, on the host's (controller-less) cgroup2
    tree: membership, the container's /sys/fs/cgroup, freeze, removal."""
    from hoist.runtime import cgroups
    lay = cgroups.host_layout()
    if not lay.v2:
        pytest.skip("no cgroup2 hierarchy")
    v2 = cgroups.Layout({}, lay.v2, True)
    b, cid, spec = env.bundle(["sh", "-c", "grep ^0:: /proc/self/cgroup; ls /sys/fs/cgroup | grep -c procs; "
                                           "sleep 0.3; echo after"])
    spec["linux"]["resources"] = {}  # no controllers on that tree
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/sys/fs/cgroup"] + [
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]}]
    if cgroupns:
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    b.write(spec)

    def during(rt, cid, created):
        rt.pause(cid)
        st = rt.state(cid)["status"]
        with open(os.path.join(rt.cgroup(cid).v2, "cgroup.procs")) as f:
            procs = f.read().split()
        rt.resume(cid)
        return [st, str(created.pid) in procs]
    r = rs.run_hoist(env.rt_root, b.dir, cid, during=during, cgroup_layout=v2)
    assert r.code == 0 and r.error == "", r
    assert r.extra == ["paused", True]
    first = r.out.splitlines()[0]
    assert first == ("0::/" if cgroupns else f"0::/hoist-test/{cid}")
    assert r.out.splitlines()[1] == "1"   # the container's own directory, not the host tree's
    assert r.out.endswith("after\n")
    assert not cgroups.Cgroup(f"/hoist-test/{cid}", v2).exists()


@pytest.mark.parametrize("dest,typ", [("/proc", "tmpfs"), ("/proc/self", "bind"), ("/proc/sys/kernel", "bind"),
                                      ("/proc/../proc/1", "bind")])
def test_mounts_over_proc_refused(env, tmp_path, dest, typ):
    b, cid, spec = env.bundle(["true"])
    m = {"destination": dest, "type": typ, "source": str(tmp_path) if typ == "bind" else "tmpfs",
         "options": ["rbind"] if typ == "bind" else []}
    spec["mounts"].append(m)
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.kind == "InvalidArgument" and "/proc" in r.error, r
    _assert_gone(cid)


def test_privileged_spec_matches_runc(env):
    spec_mod = pytest.importorskip("hoist.runtime.spec")
    env.n += 1
    cid = f"hrt{os.getpid()}p{env.n}"
    b = rs.Bundle(env.base, env.tpl, cid)
    os.makedirs(os.path.join(b.dir, "rootfs", "mnt"), exist_ok=True)
    paths = []
    for name in ("hostname", "hosts", "resolv.conf"):
        paths.append(os.path.join(b.dir, name))
        with open(paths[-1], "w") as f:
            f.write("\n")
    probe = ("grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; ls /dev | wc -l; "
             "mount -t tmpfs x /mnt && echo mounted; wc -c < /proc/keys | tr -d ' ' | grep -qv '^0$' && echo unmasked; "
             "grep -E ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1; ip -o link show lo | grep -c LOWER_UP")
    spec = spec_mod.generate(spec_mod.SpecInput(
        cid + "0" * 40, {"Cmd": ["sh", "-c", probe], "Env": [f"PATH={rs.PATH}"]}, {"Privileged": True},
        os.path.join(b.dir, "rootfs"), *paths, f"/hoist-test/{cid}"))
    b.write(spec)
    r = rs.run_hoist(env.rt_root, b.dir, cid)
    assert r.code == 0 and r.error == "", r
    assert "CapEff:\t000001ffffffffff" in r.out or "CapEff:\t000001fffeffffff" in r.out
    assert "Seccomp:\t0" in r.out and "mounted\n" in r.out and "\nrw\n" in r.out
    _assert_gone(cid)
    if shutil.which("runc"):
        rr = rs.run_runc(env.runc_root, b.dir, cid + "r")
        assert rr.out == r.out, (rr.out, r.out)
