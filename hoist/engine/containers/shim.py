"""Interim per-container monitor process (until branch ``monitor``'s Supervisor lands).

``python -m hoist.engine.containers.shim STATE_DIR`` with ``STATE_DIR/shim.json``
describing the container. It survives the daemon (own session) so containers keep
running across a hoistd restart (live restore). Protocol on fd 1 (the "ready" pipe):
one JSON line ``{"created": pid}`` or ``{"error": msg, "code": n}``; then it reads the
number of attach connections to accept from fd 0, accepts them (so no output is lost),
starts the container and writes ``{"started": pid}``.

It is the subreaper of the container's init: the runtime's create exits, init reparents
here, and its exit status is collected with waitpid and written to ``exit.json``.
Output goes to the json-file log and, Docker-multiplexed (or raw with a tty), to every
connection on ``attach.sock``; bytes read from a connection go to the container's stdin.
"""
from __future__ import annotations

import datetime
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-1] + "000Z"


def _exec_error(runtime_log: str) -> tuple[str, int]:
    """Docker's 126/127 mapping from the runtime's create error."""
    msg = ""
    try:
        with open(runtime_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("error", "fatal"):
                    msg = rec.get("msg", "")
    except OSError:
        pass
    low = msg.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec" in low:
        return msg, 127
    if "permission denied" in low or "is a directory" in low:
        return msg, 126
    return msg or "runtime create failed", 128


def main() -> int:
    state_dir = sys.argv[1]
    with open(os.path.join(state_dir, "shim.json")) as f:
        cfg = json.load(f)
    cid, bundle, runtime = cfg["id"], cfg["bundle"], cfg["runtime"]
    open_stdin = bool(cfg.get("open_stdin"))
    ready = os.fdopen(1, "w", buffering=1)
    control = os.fdopen(0, "r")
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    runtime_log = os.path.join(state_dir, "runtime.log")
    base = [runtime, "--root", cfg["runtime_root"], "--log", runtime_log, "--log-format", "json"]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if open_stdin:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
    pid_file = os.path.join(state_dir, "init.pid")
    devnull = os.open(os.devnull, os.O_RDWR)
    rc = subprocess.call(base + ["create", "--bundle", bundle, "--pid-file", pid_file, cid],
                         stdin=in_r, stdout=out_w, stderr=err_w, close_fds=True)
    os.close(out_w)
    os.close(err_w)
    os.close(in_r)
    if rc != 0:
        msg, code = _exec_error(runtime_log)
        subprocess.call(base + ["delete", "--force", cid], stdout=devnull, stderr=devnull)
        ready.write(json.dumps({"error": msg, "code": code}) + "\n")
        return 1
    with open(pid_file) as f:
        pid = int(f.read().strip())
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = os.path.join(state_dir, "attach.sock")
    try:
        os.chdir(state_dir)  # bind by a relative name: sun_path holds only 108 bytes
        lsock.bind("attach.sock")
        lsock.listen(64)
    except OSError as e:
        os.kill(pid, signal.SIGKILL)
        subprocess.call(base + ["delete", "--force", cid], stdout=devnull, stderr=devnull)
        ready.write(json.dumps({"error": f"monitor: {e}", "code": 128}) + "\n")
        return 1
    ready.write(json.dumps({"created": pid}) + "\n")
    n = int(control.readline().strip() or 0)
    clients: dict[socket.socket, bool] = {}
    for _ in range(n):
        c, _a = lsock.accept()
        clients[c] = True
    if subprocess.call(base + ["start", cid], stdout=devnull, stderr=devnull) != 0:
        msg, code = _exec_error(runtime_log)
        os.kill(pid, signal.SIGKILL)
        ready.write(json.dumps({"error": msg, "code": code}) + "\n")
    else:
        ready.write(json.dumps({"started": pid}) + "\n")
    ready.close()
    control.close()
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)

    log = open(cfg["log_path"], "ab", buffering=0)
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, "stdout")
    sel.register(err_r, selectors.EVENT_READ, "stderr")
    sel.register(lsock, selectors.EVENT_READ, "listen")
    for c in clients:
        sel.register(c, selectors.EVENT_READ, "client")
    tty = bool(cfg.get("tty"))
    open_pipes = 2
    status = None

    def drop(c: socket.socket) -> None:
        try:
            sel.unregister(c)
        except (KeyError, ValueError):
            pass
        clients.pop(c, None)
        c.close()

    # A SIGCHLD wakes the loop through a pipe so init's exit is seen even while its
    # grandchildren still hold the output pipes open.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel.register(wake_r, selectors.EVENT_READ, "wake")

    def reap() -> None:
        nonlocal status
        while True:
            try:
                p, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if p == 0:
                return
            if p == pid:
                status = os.waitstatus_to_exitcode(st)

    reap()
    while status is None or open_pipes:
        if status is not None and open_pipes:
            # init is gone; whatever still holds the pipes belongs to its (now dead) pid ns.
            events = sel.select(0.2)
            if not events:
                break
        else:
            events = sel.select()
        for key, _ in events:
            what = key.data
            if what == "wake":
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
                reap()
            elif what == "listen":
                c, _a = lsock.accept()
                clients[c] = True
                sel.register(c, selectors.EVENT_READ, "client")
            elif what == "client":
                c = key.fileobj
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)
                    if in_w >= 0 and cfg.get("stdin_once"):
                        os.close(in_w)
                        in_w = -1
                    continue
                if in_w >= 0:
                    try:
                        os.write(in_w, data)
                    except OSError:
                        pass
            else:
                fd = key.fileobj
                data = os.read(fd, 65536)
                if not data:
                    sel.unregister(fd)
                    os.close(fd)
                    open_pipes -= 1
                    continue
                stream = 1 if what == "stdout" else 2
                for line in data.splitlines(keepends=True):
                    log.write(json.dumps({"log": line.decode("utf-8", "replace"), "stream": what,
                                          "time": _now()}).encode() + b"\n")
                frame = data if tty else struct.pack(">BxxxI", stream, len(data)) + data
                for c in list(clients):
                    try:
                        c.sendall(frame)
                    except OSError:
                        drop(c)
    if status is None:
        reap()
    code = status if status is not None and status >= 0 else 128 + (-status if status else 0)
    with open(os.path.join(state_dir, "exit.json.tmp"), "w") as f:
        json.dump({"code": code, "finished_at": time.time(), "oom_killed": False}, f)
    os.rename(os.path.join(state_dir, "exit.json.tmp"), os.path.join(state_dir, "exit.json"))
    for c in list(clients):
        drop(c)
    subprocess.call(base + ["delete", "--force", cid], stdout=devnull, stderr=devnull)
    try:
        os.unlink(sock_path)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
