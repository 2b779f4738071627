"""ContainerService in-process: a start that fails after the monitor made the
container's process, and a monitor left behind by a daemon that died mid-start, end
with nothing running and nothing left in the cgroup tree."""
from __future__ import annotations

import os
import signal
import time

import pytest

from hoist.engine.bootstrap import bootstrap_image
from hoist.engine.daemon_state import Engine
from hoist.errors import HoistError
from hoist.runtime.supervisor import Monitor, Supervisor

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BODY = {"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine.open(str(tmp_path_factory.mktemp("svc")))
    bootstrap_image(e.store, "busybox")
    yield e
    e.containers.close()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" in f.read()
    except FileNotFoundError:
        return True


def _cgroups(cid: str) -> list[str]:
    return [d for d in (f"/sys/fs/cgroup/{c}/hoist/{cid}" for c in os.listdir("/sys/fs/cgroup"))
            if os.path.isdir(d)]


def test_start_failing_after_create_ends_the_process(engine, monkeypatch):
    svc = engine.containers
    cid = svc.create(dict(BODY))["Id"]
    made: list[Monitor] = []
    real_create = Supervisor.create

    def create(self, spec):
        m = real_create(self, spec)
        made.append(m)
        return m

    def start(self):
        raise HoistError("injected: start lost")

    monkeypatch.setattr(Supervisor, "create", create)
    monkeypatch.setattr(Monitor, "start", start)
    with pytest.raises(HoistError, match="injected"):
        svc.start(cid)
    monkeypatch.undo()
    init_pid, monitor_pid = made[0].pid, made[0].monitor_pid
    deadline = time.monotonic() + 10
    while not (_gone(init_pid) and _gone(monitor_pid)):
        assert time.monotonic() < deadline, "the created process or its monitor is still alive"
        time.sleep(0.05)
    assert _cgroups(cid) == []
    assert not svc.get(cid)["State"]["Running"]
    svc.remove(cid)


def test_stray_monitor_is_ended_at_restore_and_rm(engine):
    """A daemon killed between monitor create and start leaves a monitor whose process
    was created but never started; the next daemon (restore) or rm ends it."""
    svc = engine.containers
    cid = svc.create(dict(BODY))["Id"]
    doc = svc.get(cid)
    # What _start does up to the monitor, without the start: a daemon dying right here.
    from hoist.runtime.spec import SpecInput, generate
    import json
    from hoist.runtime.supervisor import MonitorSpec
    with svc._lock:
        rootfs = svc._mount_rootfs(doc)
    spec = generate(SpecInput(container_id=cid, config=doc["Config"], host_config=doc["HostConfig"],
                              rootfs=rootfs, hostname_path=doc["HostnamePath"],
                              hosts_path=doc["HostsPath"], resolv_conf_path=doc["ResolvConfPath"],
                              cgroups_path=f"/hoist/{cid}"))
    d = svc.dir(cid)
    with open(os.path.join(d, "bundle", "config.json"), "w") as f:
        json.dump(spec, f)
    m = svc.supervisor().create(MonitorSpec(cid, os.path.join(d, "bundle"), os.path.join(d, "state"),
                                            "hoist", False, False, doc["LogPath"]))
    assert not _gone(m.pid) and _cgroups(cid)
    svc.restore()  # the next daemon start
    deadline = time.monotonic() + 10
    while not (_gone(m.pid) and _gone(m.monitor_pid)):
        assert time.monotonic() < deadline, "restore left the stray monitor running"
        time.sleep(0.05)
    assert _cgroups(cid) == []
    svc.remove(cid)
    assert not os.path.exists(d)
