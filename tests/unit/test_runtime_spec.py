"""Spec generation: Docker's defaults and every kind of bad input (no root needed)."""
from __future__ import annotations

import json
import os

import pytest

from hoist.errors import InvalidArgument
from hoist.runtime import capabilities as capmod
from hoist.runtime.capabilities import (CAPABILITIES, DEFAULT_CAPS, all_caps, cap_mask,
                                        normalize_cap, tweak_caps)
from hoist.runtime.seccomp import (default_seccomp, docker_profile_seccomp,
                                   parse_docker_profile, render)
from hoist.runtime.seccomp_default import DEFAULT_RULES
from hoist.runtime.spec import (DEFAULT_DEVICE_RULES, DEFAULT_PATH, INIT_PATH, INIT_SOURCE,
                                MASKED_PATHS, READONLY_PATHS, SpecInput, generate, parse_bind,
                                parse_cpuset, parse_device_cgroup_rule)
from hoist.runtime.validate import validate

CID = "0123456789abcdef" * 4
AMD64 = ("amd64", "SCMP_ARCH_X86_64")


@pytest.fixture()
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root\napp:x:1000:\n")
    return str(root)


@pytest.fixture()
def gen(rootfs, tmp_path):
    def _gen(config=None, host_config=None, **kw):
        cfg = {"Cmd": ["/bin/sh"]}
        cfg.update(config or {})
        spec = generate(SpecInput(container_id=CID, config=cfg, host_config=host_config or {},
                                  rootfs=rootfs, hostname_path="/run/h/hostname",
                                  hosts_path="/run/h/hosts", resolv_conf_path="/run/h/resolv.conf",
                                  cgroups_path="/hoist/" + CID, **kw))
        validate(spec)
        json.dumps(spec)  # plain data only
        return spec
    return _gen


def _mount(spec, dest):
    found = [m for m in spec["mounts"] if m["destination"] == dest]
    assert len(found) == 1, (dest, [m["destination"] for m in spec["mounts"]])
    return found[0]


# --- defaults --------------------------------------------------------------------------

def test_process_defaults(gen):
    s = gen()
    p = s["process"]
    assert s["ociVersion"].startswith("1.0.")
    assert p["args"] == ["/bin/sh"]
    assert p["env"] == [f"PATH={DEFAULT_PATH}", f"HOSTNAME={CID[:12]}", "HOME=/root"]
    assert p["cwd"] == "/"
    assert p["terminal"] is False
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert p["noNewPrivileges"] is False
    assert p["oomScoreAdj"] == 0
    caps = p["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        assert caps[key] == list(DEFAULT_CAPS)
    assert caps["inheritable"] == [] and caps["ambient"] == []
    assert cap_mask(caps["effective"]) == 0xA80425FB
    nofile = [r for r in p["rlimits"] if r["type"] == "RLIMIT_NOFILE"]
    assert len(nofile) == 1 and nofile[0]["soft"] == nofile[0]["hard"] > 0


def test_root_hostname_and_cgroups(gen, rootfs):
    s = gen()
    assert s["root"] == {"path": rootfs, "readonly": False}
    assert s["hostname"] == CID[:12]
    assert "domainname" not in s
    assert s["linux"]["cgroupsPath"] == "/hoist/" + CID
    s = gen({"Hostname": "web", "Domainname": "example.org"}, {"ReadonlyRootfs": True})
    assert s["hostname"] == "web" and s["domainname"] == "example.org"
    assert s["root"]["readonly"] is True
    assert "HOSTNAME=web" in s["process"]["env"]


@pytest.mark.parametrize("name", ["bad host", "-x", "x" * 65, "a..b", "ünï"])
def test_bad_hostname(gen, name):
    with pytest.raises(InvalidArgument, match="invalid hostname format"):
        gen({"Hostname": name})
    with pytest.raises(InvalidArgument, match="invalid domainname format"):
        gen({"Domainname": name})


def test_nofile_default_is_dockers_when_allowed(gen, monkeypatch):
    import hoist.runtime.spec as specmod
    monkeypatch.setattr(specmod, "has_cap", lambda name: True)
    nofile = [r for r in gen()["process"]["rlimits"] if r["type"] == "RLIMIT_NOFILE"][0]
    assert nofile["soft"] == nofile["hard"] == 1048576


def test_default_mounts_in_dockers_order(gen):
    s = gen()
    dests = [m["destination"] for m in s["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                     "/dev/shm", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert _mount(s, "/proc")["type"] == "proc"
    dev = _mount(s, "/dev")
    assert dev["type"] == "tmpfs" and "mode=755" in dev["options"] and "size=65536k" in dev["options"]
    assert {"nosuid", "strictatime"} <= set(dev["options"])
    pts = _mount(s, "/dev/pts")
    assert pts["type"] == "devpts"
    assert {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} <= set(pts["options"])
    sysfs = _mount(s, "/sys")
    assert sysfs["type"] == "sysfs" and {"ro", "nosuid", "noexec", "nodev"} <= set(sysfs["options"])
    cg = _mount(s, "/sys/fs/cgroup")
    assert cg["type"] == "cgroup" and "ro" in cg["options"]
    assert _mount(s, "/dev/mqueue")["type"] == "mqueue"
    shm = _mount(s, "/dev/shm")
    assert shm["type"] == "tmpfs" and "size=67108864" in shm["options"] and "mode=1777" in shm["options"]
    hosts = _mount(s, "/etc/hosts")
    assert hosts == {"destination": "/etc/hosts", "type": "bind", "source": "/run/h/hosts",
                     "options": ["rbind", "rprivate"]}


@pytest.mark.skipif(not os.path.isfile(INIT_SOURCE), reason="tini not installed")
def test_mount_order_with_user_mounts(gen, tmp_path):
    s = gen(host_config={"Init": True, "Binds": [f"{tmp_path}:/etc/b", f"{tmp_path}:/a"],
                         "Tmpfs": {"/etc/t": "", "/t": ""},
                         "Mounts": [{"Type": "tmpfs", "Target": "/m/t"},
                                    {"Type": "bind", "Source": str(tmp_path), "Target": "/z"}]})
    assert [m["destination"] for m in s["mounts"]][6:] == [
        "/dev/shm", INIT_PATH, "/a", "/z", "/t", "/etc/b", "/etc/resolv.conf", "/etc/hostname",
        "/etc/hosts", "/etc/t", "/m/t"]


def test_shm_size(gen):
    assert "size=1048576" in _mount(gen(host_config={"ShmSize": 1 << 20}), "/dev/shm")["options"]


def test_linux_defaults(gen):
    lx = gen()["linux"]
    assert [n["type"] for n in lx["namespaces"]] == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert all("path" not in n for n in lx["namespaces"])
    assert lx["maskedPaths"] == list(MASKED_PATHS)
    assert lx["maskedPaths"] == [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap"]
    assert lx["readonlyPaths"] == list(READONLY_PATHS) == [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    devs = lx["resources"]["devices"]
    assert devs[0] == {"allow": False, "access": "rwm"}
    assert devs == list(DEFAULT_DEVICE_RULES)
    allowed = {(d.get("type"), d.get("major"), d.get("minor"), d["access"]) for d in devs if d["allow"]}
    for mm in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)):
        assert ("c", *mm, "rwm") in allowed
    assert ("c", 136, None, "rwm") in allowed
    assert {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"} in devs
    assert "memory" not in lx["resources"] and "cpu" not in lx["resources"]
    assert lx["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "sysctl" not in lx and "devices" not in lx


def test_command_merging(gen):
    assert gen({"Entrypoint": ["/e", "-x"], "Cmd": ["a"]})["process"]["args"] == ["/e", "-x", "a"]
    assert gen({"Entrypoint": "/e", "Cmd": None})["process"]["args"] == ["/e"]
    assert gen({"Cmd": "echo"})["process"]["args"] == ["echo"]


@pytest.mark.parametrize("cfg", [{"Cmd": None}, {"Cmd": []}, {"Cmd": [], "Entrypoint": []}])
def test_no_command(gen, cfg):
    with pytest.raises(InvalidArgument, match="no command specified"):
        gen(cfg)


def test_bad_command_type(gen):
    with pytest.raises(InvalidArgument, match="Cmd must be a list"):
        gen({"Cmd": ["a", 1]})


def test_env_rules(gen):
    env = gen({"Tty": True, "Env": ["A=1", "PATH=/x", "TERM=vt100", "EMPTY=", "UNSET"]})["process"]["env"]
    assert env == ["PATH=/x", f"HOSTNAME={CID[:12]}", "TERM=vt100", "A=1", "EMPTY=", "HOME=/root"]
    assert "HOME=/home/app" in gen({"User": "app"})["process"]["env"]
    assert gen({"Env": ["HOME=/h"]})["process"]["env"][-1] == "HOME=/h"
    assert gen({"Env": ["PATH", "B=1"]})["process"]["env"] == [f"HOSTNAME={CID[:12]}", "B=1", "HOME=/root"]
    env = gen({"Tty": True})["process"]["env"]
    assert "TERM=xterm" in env
    assert gen({"Tty": True})["process"]["terminal"] is True
    with pytest.raises(InvalidArgument, match="invalid environment variable"):
        gen({"Env": ["=x"]})
    with pytest.raises(InvalidArgument, match="invalid environment variable"):
        gen({"Env": ["A=\0"]})


def test_working_dir(gen):
    assert gen({"WorkingDir": "/srv/app/"})["process"]["cwd"] == "/srv/app"
    with pytest.raises(InvalidArgument, match="needs to be an absolute path"):
        gen({"WorkingDir": "rel"})


def test_user(gen):
    s = gen({"User": "app"}, {"GroupAdd": ["wheel", "555"]})
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 555]}
    s = gen({"User": "123:456"})
    assert s["process"]["user"] == {"uid": 123, "gid": 456, "additionalGids": [456]}
    with pytest.raises(InvalidArgument,
                       match="^unable to find user ghost: no matching entries in passwd file$"):
        gen({"User": "ghost"})


# --- capabilities ----------------------------------------------------------------------

def test_cap_table():
    assert len(CAPABILITIES) == 41 and CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    assert len(DEFAULT_CAPS) == 14
    assert cap_mask(DEFAULT_CAPS) == 0xA80425FB


@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "cap_net_admin", "Cap_Net_Admin",
                                  " CAP_NET_ADMIN "])
def test_cap_names(name):
    assert normalize_cap(name) == "CAP_NET_ADMIN"


def test_cap_unknown():
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_FLY"'):
        normalize_cap("fly")


def test_cap_tweaks(monkeypatch):
    monkeypatch.setattr(capmod, "own_bounding_set", lambda: None)
    monkeypatch.setattr(capmod, "_last_cap", lambda: 40)
    assert tweak_caps(None, None) == list(DEFAULT_CAPS)
    assert tweak_caps(["sys_admin"], ["chown"]) == [c for c in DEFAULT_CAPS if c != "CAP_CHOWN"] + ["CAP_SYS_ADMIN"]
    # Drops apply to the base set, adds come after: adding what is dropped keeps it.
    assert sorted(tweak_caps(["chown"], ["chown"])) == sorted(DEFAULT_CAPS)
    assert tweak_caps(None, ["ALL"]) == []
    assert tweak_caps(["NET_ADMIN", "kill"], ["all"]) == ["CAP_NET_ADMIN", "CAP_KILL"]
    assert tweak_caps(["ALL"], ["mknod"]) == [c for c in CAPABILITIES if c != "CAP_MKNOD"]
    assert tweak_caps(None, None, privileged=True) == list(CAPABILITIES)
    monkeypatch.setattr(capmod, "_last_cap", lambda: 37)
    assert all_caps() == list(CAPABILITIES)[:38]
    monkeypatch.setattr(capmod, "own_bounding_set", lambda: 0b101)
    assert all_caps() == ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]


def test_caps_in_spec(gen):
    s = gen(host_config={"CapAdd": ["NET_ADMIN"], "CapDrop": ["cap_net_raw"]})
    caps = s["process"]["capabilities"]
    assert "CAP_NET_ADMIN" in caps["effective"] and "CAP_NET_RAW" not in caps["bounding"]
    assert caps["inheritable"] == [] and caps["ambient"] == []
    with pytest.raises(InvalidArgument, match="unknown capability"):
        gen(host_config={"CapAdd": ["bogus"]})


def test_privileged(gen):
    s = gen(host_config={"Privileged": True})
    lx = s["linux"]
    assert s["process"]["capabilities"]["bounding"] == all_caps()
    assert "maskedPaths" not in lx and "readonlyPaths" not in lx
    assert "seccomp" not in lx
    assert lx["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in _mount(s, "/sys")["options"]
    assert "ro" not in _mount(s, "/sys/fs/cgroup")["options"]
    assert isinstance(lx["devices"], list)
    if os.path.exists("/dev/null"):
        assert any(d["path"] == "/dev/null" and d["major"] == 1 and d["minor"] == 3
                   for d in lx["devices"])


# --- security options ------------------------------------------------------------------

@pytest.mark.parametrize("opt, expected", [
    ("no-new-privileges", True), ("no-new-privileges:true", True),
    ("no-new-privileges=true", True), ("no-new-privileges:false", False),
])
def test_no_new_privileges(gen, opt, expected):
    assert gen(host_config={"SecurityOpt": [opt]})["process"]["noNewPrivileges"] is expected


@pytest.mark.parametrize("opt", ["bogus", "no-new-privileges:maybe", "foo=bar"])
def test_bad_security_opt(gen, opt):
    with pytest.raises(InvalidArgument, match="security-opt"):
        gen(host_config={"SecurityOpt": [opt]})


def test_masked_and_readonly_paths_from_host_config(gen):
    lx = gen(host_config={"MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": []})["linux"]
    assert lx["maskedPaths"] == ["/proc/kcore"] and "readonlyPaths" not in lx
    lx = gen(host_config={"MaskedPaths": None})["linux"]
    assert lx["maskedPaths"] == list(MASKED_PATHS)
    for bad in (["proc/x"], ["/proc/../etc"], [1]):
        with pytest.raises(InvalidArgument, match="MaskedPaths"):
            gen(host_config={"MaskedPaths": bad})


def test_volumes_from_rejected(gen):
    with pytest.raises(InvalidArgument, match="volumes are not supported yet"):
        gen(host_config={"VolumesFrom": ["other"]})


def test_docker_cli_host_config_defaults(gen):
    """What docker 28's CLI sends for a plain `docker run`: all accepted, Docker's defaults."""
    hc = {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
          "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
          "AutoRemove": True, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [24, 80],
          "CapAdd": None, "CapDrop": None, "CgroupnsMode": "", "Dns": [], "DnsOptions": [],
          "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "",
          "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
          "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
          "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0,
          "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
          "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
          "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
          "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
          "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
          "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None,
          "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
          "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None}
    s = gen({"Cmd": ["sh"], "Env": ["PATH=/usr/bin"], "Tty": False, "OpenStdin": False,
             "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
             "Labels": {}}, hc)
    assert s["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert s["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPS)
    assert s["linux"]["resources"]["devices"] == list(DEFAULT_DEVICE_RULES)


def test_systempaths_unconfined(gen):
    lx = gen(host_config={"SecurityOpt": ["systempaths=unconfined"]})["linux"]
    assert "maskedPaths" not in lx and "readonlyPaths" not in lx
    with pytest.raises(InvalidArgument, match="security-opt"):
        gen(host_config={"SecurityOpt": ["systempaths=maybe"]})


def test_seccomp_unconfined(gen):
    for opt in ("seccomp=unconfined", "seccomp:unconfined"):
        assert "seccomp" not in gen(host_config={"SecurityOpt": [opt]})["linux"]
    assert "apparmor" not in json.dumps(gen(host_config={"SecurityOpt": ["apparmor=unconfined"]}))


def test_seccomp_custom_profile(gen):
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]},
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    sc = docker_profile_seccomp(json.dumps(profile), DEFAULT_CAPS, arch=AMD64, kernel=(6, 1))
    assert sc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert sc["defaultErrnoRet"] == 1
    assert [c["names"] for c in sc["syscalls"]] == [["read", "write"], ["chown"]]
    assert sc["syscalls"][1] == {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                                 "args": [{"index": 0, "value": 5, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
    sc = docker_profile_seccomp(json.dumps(profile), [*DEFAULT_CAPS, "CAP_SYS_ADMIN"], arch=AMD64)
    assert [c["names"] for c in sc["syscalls"]] == [["read", "write"], ["mount"]]


@pytest.mark.parametrize("profile, msg", [
    ("{", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "unknown defaultAction"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], '
     '"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}', "use either 'architectures' or 'archMap'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}', "unknown architecture"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], '
     '"action": "SCMP_ACT_ALLOW"}]}', "use either 'name' or 'names'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "X"}]}', "unknown action"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ISH"}]}]}', "unknown operator"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}', "names no system call"),
])
def test_seccomp_bad_profiles(gen, profile, msg):
    with pytest.raises(InvalidArgument, match="invalid seccomp profile"):
        parse_docker_profile(profile, arch=AMD64)
    with pytest.raises(InvalidArgument, match=msg):
        gen(host_config={"SecurityOpt": ["seccomp=" + profile]})


def _names(sc):
    return {n for c in sc["syscalls"] if c["action"] == "SCMP_ACT_ALLOW" and "args" not in c
            for n in c["names"]}


def test_default_seccomp_profile():
    sc = default_seccomp(DEFAULT_CAPS, arch=AMD64, kernel=(6, 1))
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1
    assert sc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _names(sc)
    for n in ("read", "write", "openat", "execve", "clone" if False else "fork", "arch_prctl",
              "modify_ldt", "ptrace", "chroot", "statx", "getrandom"):
        assert n in allowed, n
    for n in ("mount", "umount2", "unshare", "setns", "reboot", "init_module", "kexec_load",
              "bpf", "keyctl", "add_key", "io_uring_setup", "open_by_handle_at", "swapon",
              "settimeofday", "syslog", "acct", "set_tls", "s390_runtime_instr"):
        assert n not in allowed, n
    clone = [c for c in sc["syscalls"] if c["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in sc["syscalls"]
    personas = sorted(c["args"][0]["value"] for c in sc["syscalls"] if c["names"] == ["personality"])
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    sock = [c for c in sc["syscalls"] if c["names"] == ["socket"]]
    assert sock[0]["args"][0]["op"] == "SCMP_CMP_NE" and sock[0]["args"][0]["value"] == 40


def test_default_seccomp_follows_caps_arch_kernel():
    sc = default_seccomp([*DEFAULT_CAPS, "CAP_SYS_ADMIN", "CAP_SYS_TIME"], arch=AMD64)
    allowed = _names(sc)
    assert {"mount", "unshare", "setns", "clone", "clone3", "settimeofday"} <= allowed
    assert not any(c["names"] == ["clone3"] and c["action"] == "SCMP_ACT_ERRNO" for c in sc["syscalls"])
    arm = default_seccomp(DEFAULT_CAPS, arch=("arm64", "SCMP_ARCH_AARCH64"))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "set_tls" in _names(arm) and "arch_prctl" not in _names(arm)
    old = default_seccomp(DEFAULT_CAPS, arch=AMD64, kernel=(4, 4))
    assert "ptrace" not in _names(old)
    assert "ptrace" in _names(default_seccomp(["CAP_SYS_PTRACE"], arch=AMD64, kernel=(4, 4)))


def test_render_is_plain_and_complete():
    out = render(DEFAULT_RULES, caps=[], arch=AMD64, kernel=(6, 0))
    assert json.loads(json.dumps(out)) == out


# --- namespaces and sysctls ------------------------------------------------------------

def test_network_modes(gen, monkeypatch):
    for mode in ("", "default", "bridge", "none"):
        ns = [n["type"] for n in gen(host_config={"NetworkMode": mode})["linux"]["namespaces"]]
        assert "network" in ns
    import socket
    s = gen(host_config={"NetworkMode": "host"})
    assert "network" not in [n["type"] for n in s["linux"]["namespaces"]]
    assert s["hostname"] == socket.gethostname()
    with pytest.raises(InvalidArgument, match="not supported yet"):
        gen(host_config={"NetworkMode": "container:abc"})
    with pytest.raises(InvalidArgument, match="not supported yet"):
        gen(host_config={"NetworkMode": "mynet"})


def test_other_namespace_modes(gen):
    s = gen(host_config={"PidMode": "host", "IpcMode": "host", "UTSMode": "host",
                         "CgroupnsMode": "host"})
    assert [n["type"] for n in s["linux"]["namespaces"]] == ["network", "mount"]
    assert "hostname" not in s
    assert _mount(s, "/dev/shm")["type"] == "bind"
    assert all(m["destination"] != "/dev/shm" for m in gen(host_config={"IpcMode": "none"})["mounts"])
    with pytest.raises(InvalidArgument, match="hostname and the UTS mode"):
        gen({"Hostname": "x"}, {"UTSMode": "host"})
    for key in ("PidMode", "IpcMode"):
        with pytest.raises(InvalidArgument, match="not supported yet"):
            gen(host_config={key: "container:x"})
    with pytest.raises(InvalidArgument, match="invalid PidMode"):
        gen(host_config={"PidMode": "weird"})


def test_sysctls(gen):
    s = gen(host_config={"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": 1000,
                                     "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4"}})
    assert s["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000",
                                    "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4"}
    for bad in ("kernel.hostname", "vm.swappiness", "kernel.panic"):
        with pytest.raises(InvalidArgument, match="not allowed"):
            gen(host_config={"Sysctls": {bad: "1"}})
    with pytest.raises(InvalidArgument, match="host network namespace"):
        gen(host_config={"NetworkMode": "host", "Sysctls": {"net.core.somaxconn": "1"}})
    with pytest.raises(InvalidArgument, match="IPC namespace"):
        gen(host_config={"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}})


# --- resources -------------------------------------------------------------------------

def test_memory_without_swap_accounting(gen, monkeypatch):
    import hoist.runtime.spec as specmod
    monkeypatch.setattr(specmod, "_swap_accounting", lambda: False)
    assert gen(host_config={"Memory": 100 << 20})["linux"]["resources"]["memory"] == {"limit": 100 << 20}


def test_memory(gen, monkeypatch):
    import hoist.runtime.spec as specmod
    monkeypatch.setattr(specmod, "_swap_accounting", lambda: True)
    r = gen(host_config={"Memory": 100 << 20})["linux"]["resources"]
    assert r["memory"] == {"limit": 100 << 20, "swap": 200 << 20}
    r = gen(host_config={"Memory": 100 << 20, "MemorySwap": -1})["linux"]["resources"]
    assert r["memory"]["swap"] == -1
    r = gen(host_config={"Memory": 100 << 20, "MemorySwap": 150 << 20,
                         "MemoryReservation": 50 << 20, "MemorySwappiness": 10,
                         "OomKillDisable": True})["linux"]["resources"]
    assert r["memory"] == {"limit": 100 << 20, "swap": 150 << 20, "reservation": 50 << 20,
                           "swappiness": 10, "disableOOMKiller": True}
    assert "swappiness" not in gen(host_config={"MemorySwappiness": -1})["linux"]["resources"].get("memory", {})


@pytest.mark.parametrize("hc, msg", [
    ({"Memory": 1 << 20}, "^Minimum memory limit allowed is 6MB$"),
    ({"Memory": (6 << 20) - 1}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": -5}, "invalid memory limit"),
    ({"MemorySwap": 100 << 20}, "always set the Memory limit"),
    ({"Memory": 100 << 20, "MemorySwap": 50 << 20}, "memoryswap limit should be larger"),
    ({"Memory": 100 << 20, "MemorySwap": -2}, "invalid memory swap"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation"),
    ({"Memory": 10 << 20, "MemoryReservation": 20 << 20}, "less than memory reservation"),
    ({"MemorySwappiness": 101}, "swappiness range is 0-100"),
    ({"Memory": "lots"}, "Memory must be an integer"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000}, "Nano CPUs and CPU Quota"),
    ({"NanoCpus": 10**9, "CpuPeriod": 50000}, "Nano CPUs and CPU Period"),
    ({"NanoCpus": 10**15}, "Range of CPUs is from 0.01"),
    ({"CpuPeriod": 10}, "CPU cfs period"),
    ({"CpuPeriod": 10**7}, "CPU cfs period"),
    ({"CpuQuota": 10}, "CPU cfs quota"),
    ({"CpuShares": -2}, "CPU shares"),
    ({"CpusetCpus": "0-"}, "Invalid value 0- for cpuset cpus"),
    ({"CpusetCpus": "a"}, "cpuset cpus"),
    ({"CpusetCpus": "3-1"}, "cpuset cpus"),
    ({"CpusetMems": "0,,1"}, "cpuset mems"),
    ({"PidsLimit": "x"}, "PidsLimit"),
    ({"BlkioWeight": 5}, "blkio weight"),
    ({"OomScoreAdj": 1001}, "range for oom score adj"),
    ({"ShmSize": -1}, "SHM size"),
    ({"Devices": [{"PathOnHost": "/dev/fuse"}]}, "not supported yet"),
    ({"DeviceCgroupRules": ["x 1:2 rwm"]}, "invalid device cgroup format"),
    ({"DeviceCgroupRules": ["c 1:2 rwmm"]}, "invalid device cgroup format"),
    ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: nofiles"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 1}]}, "soft limit must be less than"),
    ({"Ulimits": [{"Name": "nofile", "Soft": "a", "Hard": 1}]}, "invalid ulimit value"),
    ({"Ulimits": ["nofile=1"]}, "Ulimits entries"),
])
def test_bad_resources(gen, hc, msg):
    with pytest.raises(InvalidArgument, match=msg):
        gen(host_config=hc)


def test_cpu(gen):
    r = gen(host_config={"NanoCpus": 1_500_000_000})["linux"]["resources"]
    assert r["cpu"] == {"period": 100000, "quota": 150000}
    r = gen(host_config={"CpuQuota": 20000, "CpuPeriod": 50000, "CpuShares": 512,
                         "CpusetCpus": "0", "CpusetMems": "0"})["linux"]["resources"]
    assert r["cpu"] == {"period": 50000, "quota": 20000, "shares": 512, "cpus": "0", "mems": "0"}
    assert parse_cpuset("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]


def test_pids_limit(gen):
    assert gen(host_config={"PidsLimit": 100})["linux"]["resources"]["pids"] == {"limit": 100}
    for v in (0, -1, None):
        assert "pids" not in gen(host_config={"PidsLimit": v})["linux"]["resources"]


def test_ulimits_and_oom(gen):
    p = gen(host_config={"Ulimits": [{"Name": "NOFILE", "Soft": 10, "Hard": 20},
                                     {"Name": "core", "Soft": -1, "Hard": -1}],
                         "OomScoreAdj": -500})["process"]
    rl = {r["type"]: (r["soft"], r["hard"]) for r in p["rlimits"]}
    assert rl == {"RLIMIT_NOFILE": (10, 20), "RLIMIT_CORE": ((1 << 64) - 1, (1 << 64) - 1)}
    assert p["oomScoreAdj"] == -500


def test_device_cgroup_rules(gen):
    devs = gen(host_config={"DeviceCgroupRules": ["c 42:* rmw", "b *:* r"]})["linux"]["resources"]["devices"]
    assert devs[-2:] == [{"allow": True, "type": "c", "major": 42, "access": "rmw"},
                         {"allow": True, "type": "b", "access": "r"}]
    assert parse_device_cgroup_rule("a *:* m") == {"allow": True, "type": "a", "access": "m"}


# --- mounts ----------------------------------------------------------------------------

def test_binds(gen, tmp_path):
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    s = gen(host_config={"Binds": [f"{src}/sub:/data/sub:ro", f"{src}:/data",
                                   f"{src}:/x:rw,rslave,z"]})
    dests = [m["destination"] for m in s["mounts"]]
    assert dests.index("/data") < dests.index("/data/sub")
    assert _mount(s, "/data/sub")["options"] == ["rbind", "ro", "rprivate"]
    assert _mount(s, "/data") == {"destination": "/data", "type": "bind", "source": str(src),
                                  "options": ["rbind", "rprivate"]}
    assert _mount(s, "/x")["options"] == ["rbind", "rslave"]
    assert s["linux"]["rootfsPropagation"] == "rslave"


@pytest.mark.parametrize("bind, msg", [
    ("/definitely/not/here:/d", 'invalid mount config for type "bind": bind source path does not exist: /definitely/not/here'),
    ("myvol:/d", "volumes are not supported yet"),
    ("/anon", "volumes are not supported yet"),
    ("{tmp}:rel", "must be absolute"),
    ("{tmp}:/", "can't be '/'"),
    ("{tmp}:/a/../b", "'..'"),
    ("{tmp}:/d:ro,rw", "invalid mode"),
    ("{tmp}:/d:bogus", "invalid mode"),
    ("{tmp}:/d:ro:extra", "invalid volume specification"),
    (":/d", "invalid volume specification"),
])
def test_bad_binds(gen, tmp_path, bind, msg):
    with pytest.raises(InvalidArgument, match=msg.replace("(", r"\(")):
        gen(host_config={"Binds": [bind.format(tmp=tmp_path)]})


def test_duplicate_mount_points(gen, tmp_path):
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /d"):
        gen(host_config={"Binds": [f"{tmp_path}:/d", f"{tmp_path}:/d/"]})
    with pytest.raises(InvalidArgument, match="Duplicate mount point"):
        gen(host_config={"Binds": [f"{tmp_path}:/run"], "Tmpfs": {"/run": ""}})


def test_api_mounts(gen, tmp_path):
    s = gen(host_config={"Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/b", "ReadOnly": True,
         "BindOptions": {"Propagation": "rshared"}},
        {"Type": "bind", "Source": str(tmp_path), "Target": "/nr", "BindOptions": {"NonRecursive": True}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 65536, "Mode": 0o700}},
    ]})
    assert _mount(s, "/b")["options"] == ["rbind", "ro", "rshared"]
    assert _mount(s, "/nr")["options"] == ["bind", "rprivate"]
    t = _mount(s, "/t")
    assert t["type"] == "tmpfs" and "size=65536" in t["options"] and "mode=700" in t["options"]
    assert s["linux"]["rootfsPropagation"] == "rshared"


@pytest.mark.parametrize("m, msg", [
    ({"Type": "volume", "Source": "v", "Target": "/v"}, "volumes are not supported yet"),
    ({"Type": "npipe", "Target": "/p"}, "mount type unknown"),
    ({"Type": "bind", "Source": "/nonexistent-hoist", "Target": "/b"}, "bind source path does not exist: /nonexistent-hoist"),
    ({"Type": "bind", "Target": "/b"}, "Source must not be empty"),
    ({"Type": "bind", "Source": "/", "Target": ""}, "Target must not be empty"),
    ({"Type": "bind", "Source": "/", "Target": "/b", "BindOptions": {"Propagation": "sideways"}}, "propagation"),
    ({"Type": "tmpfs", "Source": "/x", "Target": "/t"}, "Source must not be specified"),
    ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": -1}}, "tmpfs size"),
    ("notamap", "must be objects"),
])
def test_bad_api_mounts(gen, m, msg):
    with pytest.raises(InvalidArgument, match=msg):
        gen(host_config={"Mounts": [m]})


def test_tmpfs(gen):
    s = gen(host_config={"Tmpfs": {"/run": "rw,size=64k", "/exec": "exec,size=1m,size=2m"}})
    run = _mount(s, "/run")
    assert run["type"] == "tmpfs" and run["source"] == "tmpfs"
    assert run["options"] == ["noexec", "nosuid", "nodev", "rprivate", "rw", "size=64k"]
    ex = _mount(s, "/exec")["options"]
    assert "exec" in ex and "noexec" not in ex and ex.count("size=2m") == 1 and "size=1m" not in ex
    with pytest.raises(InvalidArgument, match="invalid tmpfs option"):
        gen(host_config={"Tmpfs": {"/run": "size=1m,bad opt"}})
    with pytest.raises(InvalidArgument, match="must be absolute"):
        gen(host_config={"Tmpfs": {"run": ""}})


def test_user_mount_replaces_default(gen, tmp_path):
    s = gen(host_config={"Tmpfs": {"/dev/shm": "size=1m"}, "Binds": [f"{tmp_path}:/etc/hosts"]})
    assert _mount(s, "/dev/shm")["source"] == "tmpfs"
    assert _mount(s, "/etc/hosts")["source"] == str(tmp_path)
    s = gen(host_config={"Binds": [f"{tmp_path}:/dev"]})
    assert not any(m["destination"].startswith("/dev/") for m in s["mounts"])


def test_readonly_rootfs_makes_engine_files_ro(gen):
    s = gen(host_config={"ReadonlyRootfs": True})
    assert "ro" in _mount(s, "/etc/hosts")["options"]


def test_init_without_tini(gen, monkeypatch):
    import hoist.runtime.spec as specmod
    from hoist.errors import Unavailable
    monkeypatch.setattr(specmod, "INIT_SOURCE", "/nonexistent/tini-static")
    with pytest.raises(Unavailable, match="tini"):
        gen(host_config={"Init": True})


@pytest.mark.skipif(not os.path.isfile(INIT_SOURCE), reason="tini not installed")
def test_init(gen):
    s = gen({"Entrypoint": ["/app"], "Cmd": ["x"]}, {"Init": True})
    assert s["process"]["args"] == [INIT_PATH, "--", "/app", "x"]
    m = _mount(s, INIT_PATH)
    assert m["source"] == INIT_SOURCE and m["type"] == "bind" and "ro" in m["options"]


def test_image_volumes_are_ignored(gen):
    s = gen({"Volumes": {"/data": {}}})
    assert all(m["destination"] != "/data" for m in s["mounts"])


def test_parse_bind_direct(tmp_path):
    assert parse_bind(f"{tmp_path}/:/a//b/")["destination"] == "/a/b"
    assert parse_bind(f"{tmp_path}/:/a")["source"] == str(tmp_path)


def test_input_is_not_modified(gen):
    cfg = {"Cmd": ["x"], "Env": ["A=1"]}
    hc = {"CapAdd": ["NET_ADMIN"], "Tmpfs": {"/run": ""}}
    before = json.dumps([cfg, hc])
    gen(cfg, hc)
    assert json.dumps([cfg, hc]) == before
