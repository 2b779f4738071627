"""hoist's own OCI runtime: runs a bundle (config.json + rootfs) the way runc does.

It serves the per-container monitor (single-threaded, child subreaper):

* ``create`` runs in a short-lived child of the monitor (``create_isolated``: a Creator
  forked ahead of time, else a fork there and then), so that its work never becomes
  the monitor's memory. That child forks the init: for a new pid namespace it unshares
  CLONE_NEWPID for its *children* only, forks (the child is pid 1) and restores its
  pid_for_children at once; when it exits, the init is reparented to the monitor. The
  init (hoist.runtime.init) joins the cgroup, enters the other namespaces, builds the
  root filesystem, pivots, drops privileges and blocks on a pipe until ``start``.
* Errors travel back over a CLOEXEC pipe: a successful execve closes it (EOF), anything
  else writes a message first. So ``start`` knows whether exec worked before returning.
* Everything the child needs (spec, compiled seccomp filter, cgroup files) is prepared
  here, before the fork, so the child runs no imports and no parsing.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from .. import fastjson, linux
from ..errors import CannotExecute, CommandNotFound, Conflict, HoistError, InvalidArgument, NotFound
from . import init as _init
from .base import Created, Stdio
from .cgroups import Cgroup, Layout, open_cgroup
from .validate import validate

DEFAULT_ROOT = "/run/hoist/runtime"


@dataclass
class _Pending:
    start_w: int
    err_r: int
    poststart: list[dict[str, Any]]
    bundle: str


def _proc_start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return -1
    return int(data[data.rindex(b")") + 2:].split()[19])


def _raise_child_error(msg: bytes) -> None:
    kind, _, text = msg.partition(b"\0")
    s = text.decode(errors="replace")
    if kind == b"127":
        raise CommandNotFound(s)
    if kind == b"126":
        raise CannotExecute(s)
    if kind == b"400":
        raise InvalidArgument(s)
    raise HoistError(s)


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Run OCI hooks of one kind in the runtime's namespaces, one after the other, each
    with the container state as JSON on stdin; a failure (or timeout) raises."""
    data = json.dumps(state).encode()
    for h in hooks:
        path = h.get("path") or ""
        if not os.path.isabs(path):
            raise InvalidArgument(f"{kind} hook path {path!r} must be absolute")
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.posix_spawn(path, list(h.get("args") or [path]),
                                 {k: v for k, _, v in (e.partition("=") for e in h.get("env") or [])},
                                 file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
        except OSError as e:
            os.close(r)
            os.close(w)
            raise HoistError(f"{kind} hook {path}: {e.strerror}") from None
        os.close(r)
        try:
            os.write(w, data)  # small: fits the pipe buffer, never blocks
        except BrokenPipeError:
            pass
        os.close(w)
        timeout = h.get("timeout")
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG if deadline else 0)
            if done:
                break
            if deadline is not None and time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise HoistError(f"{kind} hook {path} timed out after {timeout}s")
            time.sleep(0.002)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise HoistError(f"{kind} hook {path} failed with exit code {code}")


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            return out
        out += chunk


class HoistRuntime:
    name = "hoist"

    def __init__(self, root: str = DEFAULT_ROOT, cgroup_layout: Layout | None = None) -> None:
        """``cgroup_layout`` overrides what /proc/self/mountinfo says (tests run the v2
        code on a hybrid host's cgroup2 tree this way)."""
        self.root = root
        self.cgroup_layout = cgroup_layout
        self._pending: dict[str, _Pending] = {}

    def _cgroup(self, path: str) -> Cgroup:
        return open_cgroup(path, self.cgroup_layout)

    # -- state -------------------------------------------------------------------------
    def _dir(self, container_id: str) -> str:
        if not container_id or "/" in container_id or container_id.startswith("."):
            raise InvalidArgument(f"invalid container id {container_id!r}")
        return os.path.join(self.root, container_id)

    def _state(self, container_id: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._dir(container_id), "state.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound(f"container {container_id} does not exist in runtime hoist") from None

    def _alive_pid(self, st: dict[str, Any]) -> int:
        pid = int(st["pid"])
        if _proc_start_time(pid) != st.get("start_time"):
            return 0  # exited (possibly reaped and the pid reused by someone else)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            if data[data.rindex(b")") + 2:data.rindex(b")") + 3] == b"Z":
                return 0
        except OSError:
            return 0
        return pid

    @staticmethod
    def _load_spec(bundle: str) -> dict[str, Any]:
        try:
            with open(os.path.join(bundle, "config.json")) as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"bundle {bundle} has no config.json") from None
        except ValueError as e:
            raise InvalidArgument(f"bundle {bundle}: config.json: {e}") from None
        if not isinstance(spec, dict) or not isinstance(spec.get("process"), dict):
            raise InvalidArgument(f"bundle {bundle}: config.json has no process")
        return spec

    # -- create / start ----------------------------------------------------------------
    def create(self, container_id: str, bundle: str, stdio: Stdio) -> Created:
        d = self._dir(container_id)
        spec = self._load_spec(bundle)
        validate(spec)  # plain-data checks (every problem named) before any kernel work
        unsupported = [k for k in ("createContainer", "startContainer") if (spec.get("hooks") or {}).get(k)]
        if unsupported:
            raise InvalidArgument(f"hooks {', '.join(unsupported)} are not supported by the hoist runtime")
        os.makedirs(self.root, 0o700, exist_ok=True)
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            raise Conflict(f"container {container_id} already exists in runtime hoist") from None
        linux_spec = spec.get("linux") or {}
        cg = self._cgroup(linux_spec.get("cgroupsPath") or f"/hoist/{container_id}")
        plan: _init.Plan | None = None
        pid = 0
        console: int | None = None
        try:
            cg.create()
            # Device rules wait until the init has made the spec's device nodes (runc
            # applies them at the same point): mknod needs "m" on what the rules deny.
            resources = dict(linux_spec.get("resources") or {})
            device_rules = resources.pop("devices", None)
            cg.apply(resources)
            plan = _init.prepare(spec, bundle, cg, stdio, exec_mode=False,
                                 cache_dir=os.path.join(self.root, ".seccomp"))
            pid = self._fork(plan, _init.run_init, linux_spec.get("namespaces") or [], None)
            hooks = spec.get("hooks") or {}
            # Written while init sets itself up (on the other core): the state names
            # the pid, so it must exist before anyone is told of the container, and a
            # failed set-up below removes it with the rest.
            st = {"id": container_id, "pid": pid, "start_time": _proc_start_time(pid),
                  "bundle": os.path.abspath(bundle), "cgroups_path": cg.path,
                  "created": time.time(), "poststop": hooks.get("poststop") or []}
            tmp = os.path.join(d, "state.json.tmp")
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, os.path.join(d, "state.json"))
            console = self._await_ready(plan, pid)
            if device_rules:
                cg.apply({"devices": device_rules})
            for kind in ("prestart", "createRuntime"):
                if hooks.get(kind):
                    run_hooks(kind, hooks[kind], self._oci_state(container_id, pid, "created", bundle, spec))
        except BaseException:
            if console is not None:
                os.close(console)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
            if plan is not None:
                plan.close_parent()
            try:
                cg.destroy()
            except OSError:
                pass
            _rmtree(d)
            raise
        self._pending[container_id] = _Pending(plan.start_w, plan.err_r,
                                               list((spec.get("hooks") or {}).get("poststart") or []),
                                               os.path.abspath(bundle))
        return Created(pid=pid, console=console)

    @staticmethod
    def _oci_state(container_id: str, pid: int, status: str, bundle: str,
                   spec: dict[str, Any]) -> dict[str, Any]:
        return {"ociVersion": spec.get("ociVersion", "1.0.2"), "id": container_id, "status": status,
                "pid": pid, "bundle": os.path.abspath(bundle), "annotations": spec.get("annotations") or {}}

    def _fork(self, plan: "_init.Plan", child: Any, namespaces: list[dict[str, Any]],
              join_pidns: int | None) -> int:
        """Fork ``child(plan)``; when a pid namespace is wanted, the fork happens with the
        monitor's pid_for_children pointed at it and restored right after."""
        own = -1
        new_pidns = False
        target = join_pidns
        for ns in namespaces:
            if ns.get("type") == "pid":
                if ns.get("path"):
                    target = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                else:
                    new_pidns = True
        if new_pidns or target is not None:
            own = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if new_pidns:
                linux.unshare(linux.CLONE_NEWPID)
            elif target is not None:
                linux.setns(target, linux.CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                try:
                    child(plan)  # execs or exits; never returns normally
                except BaseException as e:  # noqa: BLE001 - the child must never return
                    plan.report_error(e)
                finally:
                    os._exit(1)
            return pid
        finally:
            if own >= 0:
                linux.setns(own, linux.CLONE_NEWPID)
                os.close(own)
            if target is not None and target != join_pidns:
                os.close(target)

    def _await_ready(self, plan: "_init.Plan", pid: int) -> int | None:
        plan.close_child_ends()
        console = None
        if plan.console_parent is not None:
            console = plan.receive_console()
        # "R" (ready, now blocked until start) or "E<code>\0<message>" then EOF.
        msg = b""
        while not msg.startswith(b"R"):
            chunk = os.read(plan.err_r, 65536)
            if not chunk:
                break
            msg += chunk
        if msg.startswith(b"R"):
            return console
        if console is not None:
            os.close(console)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if msg.startswith(b"E"):
            _raise_child_error(msg[1:])
        raise HoistError("container init exited during set-up")

    def start(self, container_id: str) -> None:
        p = self._pending.pop(container_id, None)
        if p is None:
            self._state(container_id)
            raise Conflict(f"container {container_id} is not in the created state")
        try:
            os.write(p.start_w, b"S")
            os.close(p.start_w)
            msg = _read_all(p.err_r)
        finally:
            os.close(p.err_r)
        if msg.startswith(b"E"):
            _raise_child_error(msg[1:])
        if p.poststart:
            try:
                run_hooks("poststart", p.poststart,
                          self._oci_state(container_id, self._state(container_id)["pid"], "running",
                                          p.bundle, {}))
            except HoistError:
                self.kill(container_id, signal.SIGKILL)  # as runc: a failed poststart stops it
                raise

    # -- the same, in a short-lived child ------------------------------------------------
    # A monitor lives as long as its container, and every page it writes stays its own
    # (copy-on-write from the fork server). create and exec parse the spec, build the
    # seccomp program and touch most of this package: done in a child that exits, that
    # memory never becomes the monitor's. The process made (init or the exec'd one) is
    # reparented to the monitor, a child subreaper, as runc's are to a shim.

    def create_isolated(self, container_id: str, bundle: str, stdio: Stdio) -> Created:
        creator = take_creator() if self.cgroup_layout is None else None
        done = creator.run({"root": self.root, "id": container_id, "bundle": bundle}, stdio) \
            if creator is not None else None
        info, fds = done or _in_child(lambda: self._create_for_parent(container_id, bundle, stdio))
        self._pending[container_id] = _Pending(fds[0], fds[1], info["poststart"], info["bundle"])
        return Created(pid=info["pid"], console=fds[2] if len(fds) > 2 else None)

    def _create_for_parent(self, container_id: str, bundle: str,
                           stdio: Stdio) -> tuple[dict[str, Any], list[int]]:
        """create(), in a child, with what the parent needs for start() to follow."""
        c = self.create(container_id, bundle, stdio)
        p = self._pending[container_id]
        fds = [p.start_w, p.err_r] + ([c.console] if c.console is not None else [])
        return {"pid": c.pid, "poststart": p.poststart, "bundle": p.bundle}, fds

    def exec_isolated(self, container_id: str, bundle: str, process: dict, stdio: Stdio) -> Created:
        def work() -> tuple[dict[str, Any], list[int]]:
            c = self.exec(container_id, bundle, process, stdio)
            return {"pid": c.pid}, [c.console] if c.console is not None else []

        info, fds = _in_child(work)
        return Created(pid=info["pid"], console=fds[0] if fds else None)

    # -- exec ----------------------------------------------------------------------------
    def exec(self, container_id: str, bundle: str, process: dict, stdio: Stdio) -> Created:
        st = self._state(container_id)
        pid = self._alive_pid(st)
        if not pid:
            raise Conflict(f"container {container_id} is not running")
        spec = dict(self._load_spec(bundle))
        spec["process"] = process
        cg = self._cgroup(st["cgroups_path"])
        plan = _init.prepare(spec, bundle, cg, stdio, exec_mode=True, target_pid=pid,
                             cache_dir=os.path.join(self.root, ".seccomp"))
        pidns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        child = 0
        try:
            child = self._fork(plan, _init.run_exec, [], pidns)
            plan.close_child_ends()
            console = plan.receive_console() if plan.console_parent is not None else None
            msg = _read_all(plan.err_r)
        except BaseException:
            plan.close_parent()
            if child:
                try:
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
            raise
        finally:
            os.close(pidns)
        plan.close_parent()
        if msg.startswith(b"E"):
            if console is not None:
                os.close(console)
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
            _raise_child_error(msg[1:])
        return Created(pid=child, console=console)

    # -- signals, freezer, delete --------------------------------------------------------
    def kill(self, container_id: str, sig: int) -> None:
        pid = self._alive_pid(self._state(container_id))
        if not pid:
            raise Conflict(f"container {container_id} is not running")
        os.kill(pid, sig)

    def pause(self, container_id: str) -> None:
        st = self._state(container_id)
        if not self._alive_pid(st):
            raise Conflict(f"container {container_id} is not running")
        self._cgroup(st["cgroups_path"]).freeze()

    def resume(self, container_id: str) -> None:
        st = self._state(container_id)
        self._cgroup(st["cgroups_path"]).thaw()

    def delete(self, container_id: str) -> None:
        d = self._dir(container_id)
        p = self._pending.pop(container_id, None)
        if p is not None:
            for fd in (p.start_w, p.err_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
        try:
            st = self._state(container_id)
        except NotFound:
            _rmtree(d)
            return
        pid = self._alive_pid(st)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cg = self._cgroup(st["cgroups_path"])
        if cg.exists():
            if cg.frozen():
                cg.thaw()
            cg.kill_all()
            cg.destroy()
        hooks = st.get("poststop") or []
        _rmtree(d)
        if hooks:
            try:
                run_hooks("poststop", hooks, self._oci_state(container_id, 0, "stopped", st["bundle"], {}))
            except HoistError:
                pass  # the container is gone either way; runc only warns too

    def state(self, container_id: str) -> dict[str, Any]:
        """runc-like state: id, pid, status (created|running|paused|stopped), bundle."""
        st = self._state(container_id)
        pid = self._alive_pid(st)
        if not pid:
            status = "stopped"
        elif container_id in self._pending:
            status = "created"
        elif self._cgroup(st["cgroups_path"]).frozen():
            status = "paused"
        else:
            status = "running"
        return {"id": container_id, "pid": pid, "status": status, "bundle": st["bundle"]}

    def cgroup(self, container_id: str) -> Cgroup:
        return self._cgroup(self._state(container_id)["cgroups_path"])


def _in_child(work: Any) -> tuple[dict[str, Any], list[int]]:
    """Run ``work() -> (json-able info, fds)`` in a forked child; its result (and the
    fds, by SCM_RIGHTS) or its exception comes back. The child's process tree stays:
    what it forked is reparented to us (we are a subreaper)."""
    import socket
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's half, seen through its reply
        ours.close()
        _child_reply(theirs, work)
    theirs.close()
    return _parent_result(ours, pid)


def _child_reply(theirs: Any, work: Any) -> None:
    """The child's half of _in_child: run ``work``, send its outcome, exit."""
    import socket
    code = 0
    try:
        try:
            info, fds = work()
            socket.send_fds(theirs, [fastjson.dumps({"ok": info}).encode()], fds)
        except BaseException as e:
            err = {"error": str(e) or type(e).__name__, "kind": type(e).__name__}
            theirs.sendall(fastjson.dumps(err).encode())
    except BaseException:
        code = 1
    finally:
        os._exit(code)


class Creator:
    """A child forked before it is needed, that runs one HoistRuntime.create for its
    parent: a spare monitor makes one while it waits for a container, so the fork is
    not on the start's path. Talked to as _in_child's child is, after one job message
    (root, id, bundle, which stdio fds follow) with the fds."""

    def __init__(self, sock: Any, pid: int) -> None:
        self.sock, self.pid = sock, pid

    @classmethod
    def fork(cls, close: tuple[int, ...] = (), make_runtime: Any = None) -> "Creator":
        """``close``: fds of the caller's that the child must not hold (the caller's
        peers watch them for EOF). ``make_runtime(root)``: the runtime whose create
        runs (HoistRuntime; the monitor's warm-up passes its stand-in)."""
        import socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - seen through the parent's side
            try:
                # The spare that forks us ignores SIGCHLD, as the fork server does. With
                # that inherited, an init that exits before we are gone (and it is
                # reparented to the monitor) would be reaped by the kernel at once,
                # its status lost and the container "running" for ever.
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                ours.close()
                for fd in close:
                    os.close(fd)
                msg, fds, _, _ = socket.recv_fds(theirs, 1 << 16, 3)
            except BaseException:
                os._exit(1)
            if not msg:
                os._exit(0)  # never needed: the parent is gone or took another way
            job = fastjson.loads(msg)
            given = iter(fds)
            stdio = Stdio(*(next(given) if has else None for has in job["stdio"]),
                          terminal=bool(job["terminal"]))
            rt = (make_runtime or HoistRuntime)(job["root"])
            _child_reply(theirs, lambda: rt._create_for_parent(job["id"], job["bundle"], stdio))
        theirs.close()
        return cls(ours, pid)

    def run(self, job: dict[str, Any], stdio: Stdio) -> tuple[dict[str, Any], list[int]] | None:
        """The create's outcome, as _in_child gives it; None if this creator died idle
        (the caller then forks a child of its own)."""
        import socket
        given = (stdio.stdin, stdio.stdout, stdio.stderr)
        msg = dict(job, stdio=[fd is not None for fd in given], terminal=stdio.terminal)
        try:
            socket.send_fds(self.sock, [fastjson.dumps(msg).encode()],
                            [fd for fd in given if fd is not None])
        except OSError:
            self.discard()
            return None
        return _parent_result(self.sock, self.pid)

    def discard(self) -> None:
        """Not needed after all: it sees EOF and exits (the caller reaps it)."""
        self.sock.close()


_creator: Creator | None = None


def keep_creator(c: Creator | None) -> None:
    """Hand this process's pre-forked Creator to the next create_isolated()."""
    global _creator
    _creator = c


def take_creator() -> Creator | None:
    global _creator
    c, _creator = _creator, None
    return c


def _parent_result(ours: Any, pid: int) -> tuple[dict[str, Any], list[int]]:
    import socket
    try:
        msg, fds, _, _ = socket.recv_fds(ours, 1 << 20, 8)
    finally:
        ours.close()
    # Not waited for here: its exit (tearing down a copy of our address space) is off
    # the start's path. A monitor reaps every child in its SIGCHLD loop; anyone else
    # calling this reaps it with a later waitpid(-1) or leaves it to the kernel.
    if not msg:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    reply = fastjson.loads(msg or b'{"error": "runtime child exited without a reply"}')
    if "ok" in reply:
        return reply["ok"], list(fds)
    for fd in fds:
        os.close(fd)
    from .. import errors
    cls = getattr(errors, str(reply.get("kind", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, HoistError)):
        cls = HoistError
    raise cls(reply["error"])


def _rmtree(d: str) -> None:
    try:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)
    except FileNotFoundError:
        pass


def _main(argv: list[str]) -> int:
    """``python -m hoist.runtime.hoistrt run [--root DIR] BUNDLE ID``: what ``runc run``
    does, with this process as the monitor (stdio inherited, exit status passed on)."""
    import argparse  # noqa: PLC0415 - command-line use only
    ap = argparse.ArgumentParser(prog="python -m hoist.runtime.hoistrt")
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument("bundle")
    ap.add_argument("id")
    a = ap.parse_args(argv)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    rt = HoistRuntime(a.root)
    try:
        created = rt.create(a.id, a.bundle, Stdio(0, 1, 2))
    except HoistError as e:
        print(f"hoist-runtime: {e}", file=__import__("sys").stderr)
        return e.exit_code
    try:
        rt.start(a.id)
    except HoistError as e:
        print(f"hoist-runtime: {e}", file=__import__("sys").stderr)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == created.pid:
            break
    rt.delete(a.id)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    raise SystemExit(_main(__import__("sys").argv[1:]))
