"""A monitor never waits for ever on a process whose exit it cannot reap.

The container's processes become the monitor's children (it is a child subreaper), so it
reaps them and records their status. If one ends without being reaped by the monitor (a
bug like the creator that ignored SIGCHLD: the kernel reaped its init at once), the
monitor's pidfd on it still says it ended, and after a grace period the container ends
with 255 and says why, instead of showing "running" and hanging every `wait`. No root
needed: the "container" here is a process of the test's own."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import os, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from hoist.runtime import monitor
from hoist.runtime.base import Created

state = sys.argv[2]
outsider = subprocess.Popen(["sleep", "0.5"])  # ours, never the monitor's child


class OutsiderRuntime:
    name = "outsider"

    def create(self, container_id, bundle, stdio):
        return Created(pid=outsider.pid, console=None)

    def start(self, container_id):
        pass

    def kill(self, container_id, sig):
        pass

    def pause(self, container_id):
        pass

    def resume(self, container_id):
        pass

    def delete(self, container_id):
        pass


cfg = {"container_id": "lost", "state_dir": state, "bundle": state, "runtime": "outsider",
       "tty": False, "open_stdin": False, "log_path": os.path.join(state, "log.json"),
       "log_max_size": 1 << 20, "log_max_files": 1}
ours, theirs = socket.socketpair()
pid = os.fork()
if pid == 0:
    ours.close()
    monitor.LOST_GRACE = 0.5
    os._exit(monitor.run(cfg, theirs, runtime=OutsiderRuntime()))
theirs.close()


def call(req):
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(20)
    c.connect(os.path.join(state, monitor.SOCK_NAME))
    c.sendall(monitor.encode(req))
    return monitor.recv_msg(c)


try:
    assert "error" not in monitor.recv_msg(ours), "create failed"
    assert "error" not in call({"cmd": "start"})
    t0 = time.monotonic()
    reply = call({"cmd": "wait"})  # times out if the monitor never ends it
    outsider.wait()
    status = reply["exit"]
    assert status["code"] == 255 and "lost" in status["error"], status
    assert time.monotonic() - t0 < 10
except BaseException:
    os.kill(pid, 9)  # a failed check must not leave the monitor behind
    raise
os.waitpid(pid, 0)
print("ok")
"""


def test_an_exit_the_monitor_cannot_reap_still_ends_the_container(tmp_path):
    state = tmp_path / "s"
    state.mkdir()
    p = subprocess.run([sys.executable, "-c", SCRIPT, REPO, str(state)], capture_output=True,
                       text=True, timeout=60)
    # The monitor (a fork of the script) says why in its log, here the script's stdout.
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == "ok", p.stderr + p.stdout
    assert "its exit status is lost" in p.stdout
