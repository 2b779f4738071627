"""Flag → Engine API body conversion of the container commands (no daemon needed)."""
from __future__ import annotations

import json

import pytest

from hoist.cli import containers, streams
from hoist.cli.command import CommandFailed
from hoist.cli.main import lookup


def body(*argv: str) -> dict:
    cmd = lookup("create")
    opts, args = cmd.parse(list(argv))
    if opts.get("net") and not opts.get("network"):
        opts["network"] = opts["net"]
    if opts.get("restart") == "no":
        opts["restart"] = ""
    return containers.create_body(opts, args[0], args[1:])


def test_defaults_attach_stdout_stderr_and_keep_cmd():
    b = body("busybox", "echo", "hi")
    assert b["Image"] == "busybox" and b["Cmd"] == ["echo", "hi"]
    assert (b["AttachStdin"], b["AttachStdout"], b["AttachStderr"]) == (False, True, True)
    assert b["Entrypoint"] is None and b["HostConfig"]["NetworkMode"] == "default"
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_interactive_tty():
    b = body("-it", "busybox")
    assert b["Tty"] and b["OpenStdin"] and b["StdinOnce"] and b["AttachStdin"]
    assert b["Cmd"] is None


def test_units_and_resources():
    h = body("-m", "512m", "--memory-swap", "1g", "--cpus", "1.5", "--shm-size", "64M",
             "--pids-limit", "20", "-c", "512", "--cpuset-cpus", "0", "busybox")["HostConfig"]
    assert h["Memory"] == 512 << 20 and h["MemorySwap"] == 1 << 30
    assert h["NanoCpus"] == 1_500_000_000 and h["ShmSize"] == 64 << 20
    assert (h["PidsLimit"], h["CpuShares"], h["CpusetCpus"]) == (20, 512, "0")
    assert body("--memory-swap", "-1", "-m", "1g", "busybox")["HostConfig"]["MemorySwap"] == -1


def test_bad_memory_is_a_usage_error():
    with pytest.raises(CommandFailed) as e:
        body("-m", "lots", "busybox")
    assert e.value.exit_code == 125 and "--memory" in e.value.message


def test_ulimits_restart_healthcheck():
    b = body("--ulimit", "nofile=100:200", "--ulimit", "nproc=10", "--restart", "on-failure:3",
             "--health-cmd", "true", "--health-interval", "1m30s", "--health-timeout", "500ms",
             "--health-retries", "2", "--health-start-period", "2s", "busybox")
    assert b["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Hard": 200, "Soft": 100},
                                          {"Name": "nproc", "Hard": 10, "Soft": 10}]
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert b["Config" if "Config" in b else "Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 90 * 10 ** 9, "Timeout": 500 * 10 ** 6,
        "StartPeriod": 2 * 10 ** 9, "Retries": 2}
    assert body("--no-healthcheck", "busybox")["Healthcheck"] == {"Test": ["NONE"]}
    assert body("--restart", "always", "busybox")["HostConfig"]["RestartPolicy"] == \
        {"Name": "always", "MaximumRetryCount": 0}


def test_env_labels_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "x")
    ef = tmp_path / "env"
    ef.write_text("# c\nA=1\nFROM_HOST\nMISSING_VAR\n")
    lf = tmp_path / "labels"
    lf.write_text("l1=a\n")
    b = body("--env-file", str(ef), "-e", "B=2", "-e", "FROM_HOST", "--label-file", str(lf),
             "-l", "l2=b", "busybox")
    assert b["Env"] == ["A=1", "FROM_HOST=x", "B=2", "FROM_HOST=x"]
    assert b["Labels"] == {"l1": "a", "l2": "b"}


def test_mounts_volumes_tmpfs_caps():
    h = body("-v", "/src:/dst:ro", "--mount", "type=bind,src=/a,dst=/b,readonly",
             "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--tmpfs", "/run:size=1m",
             "--cap-add", "net_admin", "--cap-drop", "ALL", "--read-only", "--privileged",
             "--init", "--sysctl", "net.ipv4.ip_forward=1", "--group-add", "10",
             "--device-cgroup-rule", "c 1:3 rwm", "--runtime", "crun", "busybox")["HostConfig"]
    assert h["Binds"] == ["/src:/dst:ro"]
    assert h["Mounts"] == [{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True},
                           {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]
    assert h["Tmpfs"] == {"/run": "size=1m"}
    assert (h["CapAdd"], h["CapDrop"]) == (["CAP_NET_ADMIN"], ["ALL"])
    assert h["ReadonlyRootfs"] and h["Privileged"] and h["Init"]
    assert h["Sysctls"] == {"net.ipv4.ip_forward": "1"} and h["GroupAdd"] == ["10"]
    assert h["DeviceCgroupRules"] == ["c 1:3 rwm"] and h["Runtime"] == "crun"


def test_seccomp_profile_contents_are_sent(tmp_path):
    prof = tmp_path / "p.json"
    prof.write_text('{ "defaultAction": "SCMP_ACT_ALLOW" }')
    opts = body("--security-opt", f"seccomp={prof}", "--security-opt", "no-new-privileges",
                "busybox")["HostConfig"]["SecurityOpt"]
    assert opts == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "no-new-privileges"]


def test_publish_not_supported():
    with pytest.raises(CommandFailed) as e:
        body("-p", "80:80", "busybox")
    assert e.value.exit_code == 125 and "not supported yet" in e.value.message


def test_network_entrypoint_user():
    b = body("--net", "mynet", "--entrypoint", "/bin/sh", "-u", "1:2", "-w", "/tmp",
             "-h", "hh", "--stop-signal", "SIGINT", "--stop-timeout", "3", "busybox")
    assert b["HostConfig"]["NetworkMode"] == "mynet"
    assert b["NetworkingConfig"] == {"EndpointsConfig": {}}
    assert list(body("busybox")["NetworkingConfig"]["EndpointsConfig"]) == ["default"]
    assert b["Entrypoint"] == ["/bin/sh"] and b["User"] == "1:2" and b["WorkingDir"] == "/tmp"
    assert b["Hostname"] == "hh" and b["StopSignal"] == "SIGINT" and b["StopTimeout"] == 3
    json.dumps(b)  # the body must be plain JSON data


@pytest.mark.parametrize("text,ns", [("0", 0), ("1s", 10 ** 9), ("1m30s", 90 * 10 ** 9),
                                     ("1.5h", 5400 * 10 ** 9), ("10us", 10_000)])
def test_parse_duration(text, ns):
    assert containers.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["5", "1x", "s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        containers.parse_duration(text)


@pytest.mark.parametrize("text,n", [("512m", 512 << 20), ("1g", 1 << 30), ("1GiB", 1 << 30),
                                    ("100", 100), ("1.5k", 1536), ("2MB", 2 << 20)])
def test_ram_in_bytes(text, n):
    assert containers.ram_in_bytes(text) == n


def test_demuxer_splits_frames_across_reads():
    out, err = [], []
    d = streams.Demuxer(out.append, err.append)
    frames = b"\x01\0\0\0\0\0\0\x03abc" + b"\x02\0\0\0\0\0\0\x02xy" + b"\x01\0\0\0\0\0\0\x00"
    for i in range(len(frames)):
        d.feed(frames[i:i + 1])
    assert b"".join(out) == b"abc" and b"".join(err) == b"xy"


def test_detach_keys():
    assert streams.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert streams.parse_detach_keys("a,ctrl-@") == b"a\x00"
    with pytest.raises(ValueError):
        streams.parse_detach_keys("ctrl-?x")


def test_stats_row_computes_like_docker():
    s = {"cpu_stats": {"cpu_usage": {"total_usage": 400}, "system_cpu_usage": 2000, "online_cpus": 2},
         "precpu_stats": {"cpu_usage": {"total_usage": 200}, "system_cpu_usage": 1000},
         "memory_stats": {"usage": 10 << 20, "limit": 100 << 20,
                          "stats": {"total_inactive_file": 2 << 20}},
         "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
         "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096},
                                                        {"op": "Write", "value": 8192}]},
         "pids_stats": {"current": 3}}
    r = containers.stats_row(s, "/n", "abc")
    assert r["CPUPerc"] == "40.00%" and r["MemUsage"] == "8MiB / 100MiB"
    assert r["MemPerc"] == "8.00%" and r["NetIO"] == "1kB / 2kB"
    assert r["BlockIO"] == "4.1kB / 8.19kB" and r["PIDs"] == "3" and r["Name"] == "n"


def test_container_group_and_lean_imports():
    import subprocess
    import sys

    code = ("import sys; from hoist.cli import main; main.lookup('run'); main.lookup('container');"
            "bad = [m for m in ('json', 're', 'socket', 'typing') if m in sys.modules];"
            "print(','.join(bad))")
    import os

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # -S: site's editable-install finder imports re itself; the CLI launcher skips site.
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=repo))
    assert out.stdout.strip() == ""
    grp = lookup("container")
    assert {"ls", "run", "rm", "inspect", "prune", "exec", "cp"} <= {c.name for c in grp.subcommands}
    assert grp.find("list") is not None and grp.find("ps") is not None
