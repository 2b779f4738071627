"""docker top / docker stats shaping: ps output filtering and the stats JSON built from
CgroupStats, checked against what dockerd sends (captured from docker.io 20.10)."""
from __future__ import annotations

import json
import os

import pytest

from hoist.cli.containers import stats_row
from hoist.engine.containers import stats as cs
from hoist.errors import Conflict, HoistError
from hoist.runtime.cgroups import CgroupStats

# dockerd's reply for a created (never started) container, byte for byte
DOCKERD_EMPTY = (
    '{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},'
    '"blkio_stats":{"io_service_bytes_recursive":null,"io_serviced_recursive":null,'
    '"io_queue_recursive":null,"io_service_time_recursive":null,"io_wait_time_recursive":null,'
    '"io_merged_recursive":null,"io_time_recursive":null,"sectors_recursive":null},'
    '"num_procs":0,"storage_stats":{},"cpu_stats":{"cpu_usage":{"total_usage":0,'
    '"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,'
    '"throttled_periods":0,"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,'
    '"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,'
    '"throttled_periods":0,"throttled_time":0}},"memory_stats":{},"name":"/s3","id":"abc"}')

TOP_KEYS = ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
            "cpu_stats", "precpu_stats", "memory_stats", "name", "id"]
GIB = 1 << 30


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _v1_stats(**kw) -> CgroupStats:
    base = dict(memory_usage=339968, memory_limit=64 << 20, memory_max_usage=3809280,
                memory_stat={"cache": 4096, "rss": 65536, "total_inactive_file": 8192,
                             "inactive_file": 8192, "swap": 0, "hierarchical_memory_limit": 64 << 20},
                cpu_total_ns=3027945086, cpu_user_ns=2980000000, cpu_system_ns=40000000,
                cpu_percpu_ns=(1754989387, 1272955699), system_cpu_ns=35469220000000,
                online_cpus=2, throttled_periods=3, throttled_ns=700, pids_current=1,
                io_service_bytes=((8, 0, "Read", 4096), (8, 0, "Write", 512), (8, 0, "Total", 4608)))
    base.update(kw)
    return CgroupStats(**base)


def _sample(st: CgroupStats, unified: bool = False, **kw) -> cs.Sample:
    base = dict(read_ns=1_764_324_363_300_634_999, cgroup=st, unified=unified,
                machine_memory=24 * GIB)
    base.update(kw)
    return cs.Sample(**base)


# ------------------------------------------------------------------------------- top

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 09:00 ?        00:00:01 /sbin/init splash
root         100       1 91 10:05 ?        00:00:31 sh -c while :; do :; done
root         200     100  0 10:06 ?        00:00:00 sleep 500
"""


def test_parse_ps_keeps_only_container_pids_and_joins_the_command():
    out = cs.parse_ps_output(PS_EF, [100, 200])
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert out["Processes"] == [
        ["root", "100", "1", "91", "10:05", "?", "00:00:31", "sh -c while :; do :; done"],
        ["root", "200", "100", "0", "10:06", "?", "00:00:00", "sleep 500"]]
    assert cs.parse_ps_output(PS_EF, [])["Processes"] == []


def test_parse_ps_thread_rows_follow_their_process():
    text = ("  PID   LWP CMD\n   1     - init\n     -     1 -\n 100     - sh\n"
            "     -   100 -\n     -   101 -\n")
    out = cs.parse_ps_output(text, [100])
    assert out["Processes"] == [["100", "-", "sh"], ["-", "100", "-"], ["-", "101", "-"]]


def test_parse_ps_errors_as_dockerd_words_them():
    with pytest.raises(HoistError, match="^Couldn't find PID field in ps output$") as e:
        cs.parse_ps_output("COMMAND\nsh\n", [1])
    assert e.value.status == 500
    with pytest.raises(HoistError, match="Unexpected pid 'x'"):
        cs.parse_ps_output("PID CMD\nx sh\n", [1])


def test_parse_ps_splits_on_ascii_whitespace_only():
    out = cs.parse_ps_output("PID CMD\n7 a\u00a0b  c\n", [7])
    assert out["Processes"] == [["7", "a\u00a0b c"]]


@pytest.mark.parametrize("args,bad", [("-o user=PID", '"user=PID"'), ("-o pid,user=PIDX", '"pid,user=PIDX"'),
                                      ("aux -o comm= PID", '"comm=PID"')])
def test_ps_args_cannot_rename_a_column_to_pid(args, bad):
    with pytest.raises(HoistError) as e:
        cs.validate_ps_args(args)
    assert e.value.message == f"specifying {bad} is not allowed" and e.value.status == 500


@pytest.mark.parametrize("args", ["-ef", "aux", "-o pid=PID", "-o pid,comm", "user=PID"])
def test_ps_args_allowed(args):
    cs.validate_ps_args(args)


def test_ps_pids_arg():
    assert cs.ps_pids_arg([5, 17, 300]) == "-q5,17,300"


def test_run_ps_reports_the_first_stderr_line():
    with pytest.raises(HoistError) as e:
        cs.run_ps(["--bogus-option"], [os.getpid()])
    assert e.value.message.startswith("ps: error:") and "\n" not in e.value.message


class _Events:
    def __init__(self):
        self.got = []

    def publish(self, *a, **kw):
        self.got.append((a, kw))


class _Store:
    def __init__(self):
        self.events = _Events()


class _Cgroup:
    def pids(self):
        return [os.getpid()]


class _Svc:
    """Just the ContainerService surface top() uses; the ps run is real."""

    def __init__(self, running: bool):
        self.running = running
        self.restarting = False
        self.store = _Store()

    def get(self, ref):
        return {"Id": "c" * 64, "Name": "/web", "Config": {"Image": "busybox"},
                "State": {"Running": self.running, "Restarting": self.restarting}}

    def publish_event(self, doc, action, **attrs):
        self.store.events.publish("container", action, doc["Id"], image=doc["Config"]["Image"],
                                  name=doc["Name"].lstrip("/"), **attrs)

    def cgroup(self, ref):
        if not self.running:
            raise Conflict(f"Container {ref} is not running")
        return _Cgroup()


def test_top_runs_ps_on_the_cgroup_pids_and_logs_an_event():
    svc = _Svc(True)
    out = cs.top(svc, "web", "")
    assert out["Titles"][:2] == ["UID", "PID"]
    assert [p[1] for p in out["Processes"]] == [str(os.getpid())]
    assert svc.store.events.got == [(("container", "top", "c" * 64), {"image": "busybox", "name": "web"})]
    out = cs.top(svc, "web", "-o pid,comm")
    assert out["Titles"] == ["PID", "COMMAND"] and len(out["Processes"]) == 1


def test_top_of_a_stopped_container_is_a_conflict():
    with pytest.raises(Conflict, match="is not running"):
        cs.top(_Svc(False), "web", "")
    svc = _Svc(True)
    svc.restarting = True
    with pytest.raises(Conflict, match=f"^Container {'c' * 64} is restarting, wait until"):
        cs.top(svc, "web", "")


# ----------------------------------------------------------------------------- stats

def test_go_time_is_rfc3339nano_utc():
    assert cs.go_time(0) == "0001-01-01T00:00:00Z"
    assert cs.go_time(1_764_324_363_300_634_999) == "2025-11-28T10:06:03.300634999Z"
    assert cs.go_time(1_764_324_363_487_401_490) == "2025-11-28T10:06:03.48740149Z"
    assert cs.go_time(1_764_324_363_000_000_000) == "2025-11-28T10:06:03Z"


def test_empty_frame_is_dockerds_bytes():
    assert _compact(cs.chain(cs.frame("/s3", "abc", None), None)) == DOCKERD_EMPTY


def test_v1_frame_shape_and_values():
    f = cs.frame("/web", "abc", _sample(_v1_stats(), nr_periods=9, failcnt=2,
                                        io_serviced=((8, 0, "Read", 3),)))
    assert list(f) == TOP_KEYS
    assert f["read"] == "2025-11-28T10:06:03.300634999Z"
    assert f["pids_stats"] == {"current": 1}
    b = f["blkio_stats"]
    assert b["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 512},
        {"major": 8, "minor": 0, "op": "Total", "value": 4608}]
    assert b["io_serviced_recursive"] == [{"major": 8, "minor": 0, "op": "Read", "value": 3}]
    assert b["sectors_recursive"] == [] and len(b) == 8
    assert f["cpu_stats"] == {
        "cpu_usage": {"total_usage": 3027945086, "percpu_usage": [1754989387, 1272955699],
                      "usage_in_kernelmode": 40000000, "usage_in_usermode": 2980000000},
        "system_cpu_usage": 35469220000000, "online_cpus": 2,
        "throttling_data": {"periods": 9, "throttled_periods": 3, "throttled_time": 700}}
    m = f["memory_stats"]
    assert list(m) == ["usage", "max_usage", "stats", "failcnt", "limit"]
    assert (m["usage"], m["max_usage"], m["failcnt"], m["limit"]) == (339968, 3809280, 2, 64 << 20)
    # dockerd's fixed key set (sorted, as Go encodes a map), missing ones as 0
    assert list(m["stats"]) == sorted(m["stats"]) and len(m["stats"]) == 32
    assert m["stats"]["cache"] == 4096 and m["stats"]["total_writeback"] == 0
    assert "swap" not in m["stats"]
    assert "networks" not in f


def test_v1_unlimited_memory_reports_the_machine_and_zeros_are_omitted():
    st = _v1_stats(memory_limit=0, memory_max_usage=0, pids_limit=0, cpu_percpu_ns=(),
                   system_cpu_ns=0, online_cpus=0, io_service_bytes=())
    f = cs.frame("/web", "abc", _sample(st))
    assert f["memory_stats"]["limit"] == 24 * GIB
    assert "max_usage" not in f["memory_stats"] and "failcnt" not in f["memory_stats"]
    assert "percpu_usage" not in f["cpu_stats"]["cpu_usage"]
    assert list(f["cpu_stats"]) == ["cpu_usage", "throttling_data"]
    assert f["blkio_stats"]["io_service_bytes_recursive"] == []
    big = cs.frame("/web", "abc", _sample(_v1_stats(memory_limit=100 * GIB)))
    assert big["memory_stats"]["limit"] == 24 * GIB  # clamped to the machine, as dockerd
    lim = cs.frame("/web", "abc", _sample(_v1_stats(pids_limit=50)))
    assert lim["pids_stats"] == {"current": 1, "limit": 50}


def test_v2_frame_follows_dockerds_v2_mapping():
    st = CgroupStats(memory_usage=1000, memory_limit=0, memory_max_usage=5000,
                     memory_stat={"anon": 10, "inactive_file": 300, "file": 20},
                     cpu_total_ns=5_000_000, cpu_user_ns=3_000_000, cpu_system_ns=2_000_000,
                     system_cpu_ns=99, online_cpus=4, pids_current=3, pids_limit=0,
                     io_service_bytes=((259, 0, "read", 7), (259, 0, "write", 8)))
    f = cs.frame("/v2", "id2", _sample(st, unified=True, failcnt=1))
    assert f["pids_stats"] == {"current": 3, "limit": (1 << 64) - 1}
    assert f["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 259, "minor": 0, "op": "read", "value": 7},
        {"major": 259, "minor": 0, "op": "write", "value": 8}]
    assert f["blkio_stats"]["io_serviced_recursive"] is None
    m = f["memory_stats"]
    assert "max_usage" not in m and m["failcnt"] == 1 and m["limit"] == 24 * GIB
    assert m["stats"]["inactive_file"] == 300 and "total_inactive_file" not in m["stats"]
    assert len(m["stats"]) == 31
    assert "percpu_usage" not in f["cpu_stats"]["cpu_usage"]
    empty = cs.frame("/v2", "id2", _sample(CgroupStats(), unified=True))
    assert empty["blkio_stats"]["io_service_bytes_recursive"] is None


def test_chain_links_read_and_cpu_of_the_previous_frame():
    a = cs.frame("/w", "i", _sample(_v1_stats(cpu_total_ns=100)))
    b = cs.frame("/w", "i", _sample(_v1_stats(cpu_total_ns=300), read_ns=1_764_324_364_300_634_999))
    first = cs.chain(a, None)
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    second = cs.chain(b, first)
    assert second["preread"] == first["read"]
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == 100
    assert list(second) == TOP_KEYS
    # a container that stopped: zero frame that still carries the last real cpu
    gone = cs.chain(cs.frame("/w", "i", None), second)
    assert gone["read"] == "0001-01-01T00:00:00Z" and gone["preread"] == second["read"]
    assert gone["precpu_stats"]["cpu_usage"]["total_usage"] == 300


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      726       9    3    4    0     0       0          0
"""


def test_parse_net_dev_skips_loopback():
    assert cs.parse_net_dev(NET_DEV) == {"eth0": {
        "rx_bytes": 1296, "rx_packets": 16, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 726, "tx_packets": 9, "tx_errors": 3, "tx_dropped": 4}}
    assert cs.parse_net_dev(NET_DEV.replace("eth0", "  lo")) == {}


def test_networks_key_only_when_there_are_interfaces():
    nets = cs.parse_net_dev(NET_DEV)
    f = cs.frame("/w", "i", _sample(_v1_stats(), networks=nets))
    assert list(f)[-1] == "networks" and f["networks"]["eth0"]["rx_bytes"] == 1296
    assert "networks" not in cs.frame("/w", "i", _sample(_v1_stats(), networks={}))


def test_cli_renders_a_frame_as_docker_does():
    prev = cs.chain(cs.frame("/web", "a" * 64, _sample(_v1_stats(
        cpu_total_ns=1_000_000_000, system_cpu_ns=10_000_000_000))), None)
    cur = cs.chain(cs.frame("/web", "a" * 64, _sample(_v1_stats(
        cpu_total_ns=1_500_000_000, system_cpu_ns=12_000_000_000, memory_usage=10 << 20,
        memory_stat={"total_inactive_file": 2 << 20}), networks=cs.parse_net_dev(NET_DEV))), prev)
    row = stats_row("/web", "a" * 64, cur)
    assert row["CPUPerc"] == "50.00%"  # 0.5 s of 2 s host time on 2 cpus
    assert row["MemUsage"] == "8MiB / 64MiB" and row["MemPerc"] == "12.50%"
    assert row["NetIO"] == "1.3kB / 726B" and row["BlockIO"] == "4.1kB / 512B"
    assert row["PIDs"] == "1" and row["Name"] == "web"
    stopped = stats_row("/web", "a" * 64, cs.chain(cs.frame("/web", "a" * 64, None), None))
    assert (stopped["CPUPerc"], stopped["MemUsage"], stopped["PIDs"]) == ("0.00%", "0B / 0B", "0")
