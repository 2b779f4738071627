"""cgroups: layout detection and OCI resources mapped to files, against temp trees laid
out as a v1 and a v2 hierarchy (no root, no real cgroupfs)."""
from __future__ import annotations

import os

import pytest

from hoist.errors import InvalidArgument
from hoist.runtime import cgroups
from hoist.runtime.cgroups import Cgroup, Layout

MOUNTINFO_HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
MOUNTINFO_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
MOUNTINFO_V1_MERGED = (
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "33 31 0:30 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,clone_children,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd\n")


def _mi(tmp_path, text):
    p = tmp_path / "mountinfo"
    p.write_text(text)
    return str(p)


def test_detect_hybrid(tmp_path):
    lay = cgroups.detect_layout(_mi(tmp_path, MOUNTINFO_HYBRID))
    assert lay.kind == "hybrid"
    assert lay.v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                      "memory": "/sys/fs/cgroup/memory", "name=systemd": "/sys/fs/cgroup/systemd"}
    assert lay.v2 == "/sys/fs/cgroup/unified"


def test_detect_v2_and_merged_v1(tmp_path):
    assert cgroups.detect_layout(_mi(tmp_path, MOUNTINFO_V2)) == Layout({}, "/sys/fs/cgroup", True)
    lay = cgroups.detect_layout(_mi(tmp_path, MOUNTINFO_V1_MERGED))
    assert lay.kind == "v1" and lay.v1["cpu"] == lay.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert sorted(lay.v1) == ["cpu", "cpuacct", "cpuset", "name=systemd", "net_cls", "net_prio"]


def test_detect_none(tmp_path):
    with pytest.raises(Exception):
        cgroups.detect_layout(_mi(tmp_path, "1 0 0:1 / / rw - ext4 /dev/sda rw\n"))


@pytest.fixture
def v1(tmp_path):
    ctrls = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio")
    for c in ctrls:
        (tmp_path / c).mkdir()
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    (tmp_path / "unified").mkdir()
    return Layout({c: str(tmp_path / c) for c in ctrls}, str(tmp_path / "unified"), False)


@pytest.fixture
def v2(tmp_path):
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    return Layout({}, str(root), True)


KERNEL_FILES = {
    "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.stat"),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "memory": ("memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness"),
    "pids": ("pids.max",), "devices": ("devices.allow", "devices.deny"),
    "freezer": ("freezer.state",),
    "": ("memory.max", "memory.low", "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems",
         "pids.max", "cgroup.freeze", "memory.high"),
}


def _kernel_files(cg: Cgroup) -> None:
    """Create the files cgroupfs shows in a new directory (the code never creates files:
    it opens them O_WRONLY as on the real filesystem)."""
    dirs = dict(cg.v1)
    if cg.layout.unified:
        dirs = {"": cg.v2}
    for ctrl, d in dirs.items():
        for name in KERNEL_FILES.get(ctrl, ()):
            p = os.path.join(d, name)
            if not os.path.exists(p):
                open(p, "w").close()


def _fake_v1_files(cg: Cgroup) -> None:
    """What cgroupfs would show in fresh v1 directories (tmpfs has no kernel behind it)."""
    files = {
        "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "4096",
                   "memory.memsw.limit_in_bytes": "9223372036854771712",
                   "memory.max_usage_in_bytes": "8192", "memory.stat": "cache 10\nrss 20\n",
                   "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"},
        "cpuacct": {"cpuacct.usage": "123456", "cpuacct.usage_percpu": "100000 23456 \n",
                    "cpuacct.stat": "user 3\nsystem 1\n"},
        "cpu": {"cpu.stat": "nr_periods 5\nnr_throttled 2\nthrottled_time 77\n"},
        "pids": {"pids.current": "3", "pids.max": "max"},
        "blkio": {"blkio.throttle.io_service_bytes_recursive":
                  "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n253:1 Read 100\nTotal 4708\n"},
    }
    for ctrl, kv in files.items():
        for k, v in kv.items():
            with open(os.path.join(cg.v1[ctrl], k), "w") as f:
                f.write(v)


def test_v1_paths_create_apply_stats(v1):
    cg = Cgroup("/hoist/abc", v1)
    assert cg.v1["memory"].endswith("/memory/hoist/abc")
    assert cg.v2.endswith("/unified/hoist/abc")
    cg.create()
    assert all(os.path.isdir(d) for d in cg.v1.values()) and os.path.isdir(cg.v2)
    _kernel_files(cg)
    # (cpuset inheritance needs kernel-made files: tests/integration checks it)
    # the hybrid layout also tracks the process in the controller-less v2 tree
    assert os.path.join(cg.v2, "cgroup.procs") in cg.procs_files()
    _fake_v1_files(cg)
    cg.apply({"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
              "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
              "pids": {"limit": 100},
              "devices": [{"allow": False, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 136, "access": "rwm"}]})

    def rd(ctrl, name):
        return open(os.path.join(cg.v1[ctrl], name)).read()
    assert rd("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert rd("memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert rd("memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert rd("cpu", "cpu.shares") == "512"
    assert rd("cpu", "cpu.cfs_quota_us") == "50000"
    assert rd("cpu", "cpu.cfs_period_us") == "100000"
    assert rd("cpuset", "cpuset.cpus") == "0"
    assert rd("pids", "pids.max") == "100"
    # a plain file keeps the last write: the last allow rule is what reached the kernel
    assert rd("devices", "devices.allow") == "c 136:* rwm"
    assert rd("devices", "devices.deny") == "a"
    st = cg.stats()
    assert st.memory_usage == 4096 and st.memory_max_usage == 8192
    assert st.memory_limit == 64 << 20
    assert st.memory_stat == {"cache": 10, "rss": 20}
    assert st.cpu_total_ns == 123456 and st.cpu_percpu_ns == (100000, 23456)
    assert st.cpu_user_ns == 3 * 10**9 // os.sysconf("SC_CLK_TCK")
    assert st.throttled_periods == 2 and st.throttled_ns == 77
    assert st.pids_current == 3 and st.pids_limit == 100 and st.oom_kills == 2
    assert st.system_cpu_ns > 0
    assert st.io_read_bytes == 4196 and st.io_write_bytes == 512
    assert (8, 0, "Read", 4096) in st.io_service_bytes
    with open(os.path.join(cg.v1["memory"], "memory.limit_in_bytes"), "w") as f:
        f.write("9223372036854771712\n")
    assert cg.stats().memory_limit == 0  # page-rounded LONG_MAX means unlimited
    for d in cg.v1.values():
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
    cg.destroy()
    assert not cg.exists()
    assert os.path.isdir(os.path.join(v1.v1["memory"], "hoist"))  # parents stay shared


def test_v1_unlimited_values(v1):
    cg = Cgroup("/x", v1)
    cg.create()
    _kernel_files(cg)
    with pytest.raises(FileNotFoundError):  # nothing is created behind the kernel's back
        cg.apply({"memory": {"reservation": 1, "swappiness": 10, "disableOOMKiller": True}})
    cg.apply({"cpu": {"quota": -1}, "pids": {"limit": 0}, "memory": {"limit": 1 << 20}})
    assert open(os.path.join(cg.v1["cpu"], "cpu.cfs_quota_us")).read() == "-1"
    assert open(os.path.join(cg.v1["pids"], "pids.max")).read() == "max"
    # no memsw file (swap accounting off): the limit alone is written
    assert not os.path.exists(os.path.join(cg.v1["memory"], "memory.memsw.limit_in_bytes"))


def test_v2_create_apply_stats(v2):
    cg = Cgroup("/hoist/abc", v2)
    assert cg.v2 == os.path.join(v2.v2, "hoist", "abc") and cg.v1 == {}
    # what the kernel would show in the new child once controllers are delegated
    cg.create()
    sub = open(os.path.join(v2.v2, "cgroup.subtree_control")).read()
    assert "+cpu" in sub and "+pids" in sub and "+io" in sub and "+cpuset" in sub
    assert "+memory" not in sub  # already on
    assert cg.procs_files() == [os.path.join(cg.v2, "cgroup.procs")]
    _kernel_files(cg)
    for name in ("memory.swap.max", "io.weight"):
        open(os.path.join(cg.v2, name), "w").close()
    cg.apply({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 1 << 20},
              "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
              "pids": {"limit": -1}, "blockIO": {"weight": 500},
              "unified": {"memory.high": "100M"}})

    def rd(name):
        return open(os.path.join(cg.v2, name)).read()
    assert rd("memory.max") == str(64 << 20)
    assert rd("memory.swap.max") == str(32 << 20)
    assert rd("memory.low") == str(1 << 20)
    assert rd("cpu.weight") == "39"  # runc's conversion of the default 1024 shares
    assert rd("cpu.max") == "50000 100000"
    assert rd("cpuset.cpus") == "0-1"
    assert rd("pids.max") == "max"
    assert rd("io.weight") == "default 4950"  # 1 + (500-10)*9999//990
    assert rd("memory.high") == "100M"
    with pytest.raises(InvalidArgument):
        cg.apply({"unified": {"../escape": "1"}})
    for name, v in {"memory.current": "8192", "memory.max": "max", "memory.peak": "9000",
                    "memory.stat": "anon 5\nfile 6\n", "memory.events": "oom 1\noom_kill 1\n",
                    "cpu.stat": "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_throttled 1\n"
                                "throttled_usec 2\n",
                    "pids.current": "2", "pids.max": "50",
                    "io.stat": "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"}.items():
        with open(os.path.join(cg.v2, name), "w") as f:
            f.write(v)
    st = cg.stats()
    assert (st.memory_usage, st.memory_limit, st.memory_max_usage) == (8192, 0, 9000)
    assert st.cpu_total_ns == 7000 and st.cpu_user_ns == 4000 and st.cpu_system_ns == 3000
    assert st.throttled_ns == 2000 and st.pids_current == 2 and st.pids_limit == 50
    assert st.oom_kills == 1 and st.memory_stat["anon"] == 5
    assert (st.io_read_bytes, st.io_write_bytes) == (1024, 2048)


def test_v2_freeze_waits_for_events(v2):
    cg = Cgroup("/f", v2)
    cg.create()
    _kernel_files(cg)
    (open(os.path.join(cg.v2, "cgroup.events"), "w")).write("populated 1\nfrozen 1\n")
    cg.freeze()
    assert open(os.path.join(cg.v2, "cgroup.freeze")).read() == "1"
    assert cg.frozen()


def test_conversions_and_rules():
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000
    assert cgroups.shares_to_weight(0) == 0
    assert cgroups.blkio_to_io_weight(10) == 1 and cgroups.blkio_to_io_weight(1000) == 10000
    assert cgroups.device_rule({"allow": False, "access": "rwm"}) == "a"
    assert cgroups.device_rule({"type": "b", "major": 8, "minor": -1, "access": "r"}) == "b 8:* r"
    with pytest.raises(InvalidArgument):
        cgroups.device_rule({"type": "x"})
    with pytest.raises(InvalidArgument):
        cgroups.device_rule({"type": "c", "major": 1, "minor": 1, "access": "rwx"})


def test_bad_paths(v1):
    for bad in ("", "/", "/a/../../etc"):
        with pytest.raises(InvalidArgument):
            Cgroup(bad, v1)


def test_relative_path_under_own_cgroup(v1):
    cg = Cgroup("sub/c1", v1, own={"memory": "/process_api/x", "cpu": "/"})
    assert cg.v1["memory"] == os.path.join(v1.v1["memory"], "process_api/x/sub/c1")
    assert cg.v1["cpu"] == os.path.join(v1.v1["cpu"], "sub/c1")
