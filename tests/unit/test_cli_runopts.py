"""`run`/`create` flags → the Engine API create body, as the docker CLI builds it."""
from __future__ import annotations

import pytest

from hoist.cli.runopts import (build_create_body, go_duration_ns, parse_mount, parse_restart,
                               parse_ulimit, parse_volume, ram_in_bytes)
from hoist.errors import InvalidArgument


@pytest.mark.parametrize("text,value", [("512m", 512 << 20), ("1g", 1 << 30), ("1024", 1024),
                                        ("1.5GiB", 3 << 29), ("64k", 64 << 10), ("10b", 10),
                                        ("2MB", 2 << 20)])
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize("text", ["", "x", "1x", "-1m", "m"])
def test_ram_in_bytes_rejects(text):
    with pytest.raises(InvalidArgument):
        ram_in_bytes(text)


@pytest.mark.parametrize("text,ns", [("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8),
                                     ("1h", 3600 * 10**9), ("0", 0), ("1.5s", 1500 * 10**6)])
def test_go_duration(text, ns):
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "10", "1x", "s"])
def test_go_duration_rejects(text):
    with pytest.raises(InvalidArgument):
        go_duration_ns(text)


def test_restart_ulimit_mount_volume():
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("always") == {"Name": "always", "MaximumRetryCount": 0}
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(InvalidArgument):
            parse_restart(bad)
    assert parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    with pytest.raises(InvalidArgument):
        parse_ulimit("nofile=10:5")
    assert parse_mount("type=bind,src=/a,dst=/b,readonly") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}
    assert parse_mount("type=tmpfs,target=/t,tmpfs-size=64k")["TmpfsOptions"] == {"SizeBytes": 65536}
    with pytest.raises(InvalidArgument):
        parse_mount("type=bind,src=/a")
    assert parse_volume("/h:/c:ro") == ("/h:/c:ro", "")
    assert parse_volume("/anon") == (None, "/anon")
    with pytest.raises(InvalidArgument):
        parse_volume("/h:relative")


def _opts(**kw):
    base = {"detach": False, "interactive": False, "tty": False, "attach": [], "env": [],
            "env_file": [], "label": [], "label_file": [], "volume": [], "tmpfs": [],
            "restart": "no"}
    base.update(kw)
    return base


def test_body_defaults_attach_like_docker():
    b = build_create_body(_opts(), "busybox", ["echo", "hi"])
    assert b["Image"] == "busybox" and b["Cmd"] == ["echo", "hi"]
    assert (b["AttachStdin"], b["AttachStdout"], b["AttachStderr"]) == (False, True, True)
    assert b["HostConfig"]["NetworkMode"] == "default"
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    d = build_create_body(_opts(detach=True, interactive=True), "busybox", [])
    assert (d["AttachStdin"], d["AttachStdout"], d["OpenStdin"], d["StdinOnce"]) == \
        (False, False, True, False)
    assert d["Cmd"] is None
    i = build_create_body(_opts(interactive=True, tty=True), "busybox", ["sh"])
    assert i["AttachStdin"] and i["OpenStdin"] and i["StdinOnce"] and i["Tty"]


def test_body_resources_and_security(tmp_path, monkeypatch):
    profile = tmp_path / "p.json"
    profile.write_text('{ "defaultAction": "SCMP_ACT_ALLOW" }')
    monkeypatch.setenv("FROM_ENV", "v")
    b = build_create_body(_opts(memory="512m", memory_swap="-1", cpus="1.5", pids_limit=10,
                                cap_add=["NET_ADMIN"], cap_drop=["ALL"], privileged=False,
                                security_opt=[f"seccomp={profile}", "no-new-privileges"],
                                env=["A=1", "FROM_ENV", "UNSET_X"], rm=True, entrypoint="/bin/sh",
                                health_cmd="true", health_interval="5s", health_retries=2,
                                tmpfs=["/run:size=64k"], volume=["/src:/dst:ro", "/anon"],
                                ulimit=["nofile=10:20"], stop_signal="SIGINT", stop_timeout=3),
                          "img", [])
    h = b["HostConfig"]
    assert h["Memory"] == 512 << 20 and h["MemorySwap"] == -1 and h["NanoCpus"] == 1_500_000_000
    assert h["PidsLimit"] == 10 and h["AutoRemove"] is True
    assert h["SecurityOpt"] == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "no-new-privileges"]
    assert b["Env"] == ["A=1", "FROM_ENV=v", "UNSET_X"]
    assert b["Entrypoint"] == ["/bin/sh"]
    assert b["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5 * 10**9, "Retries": 2}
    assert h["Tmpfs"] == {"/run": "size=64k"} and h["Binds"] == ["/src:/dst:ro"]
    assert b["Volumes"] == {"/anon": {}}
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
    assert b["StopSignal"] == "SIGINT" and b["StopTimeout"] == 3


@pytest.mark.parametrize("kw", [dict(rm=True, restart="always"), dict(detach=True, attach=["stdout"]),
                                dict(publish=["80:80"]), dict(attach=["stdfoo"]),
                                dict(no_healthcheck=True, health_cmd="x")])
def test_body_conflicts(kw):
    with pytest.raises(InvalidArgument):
        build_create_body(_opts(**kw), "img", [])
