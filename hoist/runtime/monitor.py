"""The per-container monitor: one small single-threaded process per container.

Forked by the fork server as a spare, ahead of need; once given a container it makes
its own session, so it survives the daemon's death. It is a child subreaper, so the
container's init and every exec'd process end up its children (they are made by
short-lived children of its own: see hoistrt.Creator and _in_child). It owns the
container's stdio (pipes or the pty master), copies output to the json-file log and to
attached clients, feeds stdin, records the exit status in ``state_dir/exit.json``
(atomically) and serves a unix control socket.

Control protocol (``state_dir/monitor.sock``): each message is a 4-byte big-endian length
and a JSON object, both ways. One request per connection; ``attach`` turns the connection
into the stream itself after the reply (Docker's 8-byte multiplexed frames unless tty),
``wait`` leaves it open until the process exits. Everything is driven by one epoll
loop; SIGCHLD arrives through signal.set_wakeup_fd, so there are no threads.
"""
from __future__ import annotations

import _signal
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import time
from typing import Any

from .. import errors, fastjson
from .base import Stdio
from .logfile import LogWriter, read_logs

PR_SET_CHILD_SUBREAPER = 36
SOCK_NAME = "monitor.sock"
EXIT_FILE = "exit.json"
INFO_FILE = "monitor.json"
DRAIN_AFTER_EXIT = 2.0      # seconds to wait for output EOF after a process has exited
CLIENT_LINGER = 30.0        # seconds an attached client may take to read the last output
CLIENT_BUF_LIMIT = 8 << 20  # stop reading container output while a client lags this much
# The daemon starts what it created at once; a container still not started after this
# long belongs to a daemon that died in between: end it rather than wait forever.
START_DEADLINE = 60.0
# A process we watch (pidfd) that ended but never became ours to reap: its status is
# lost. It may still be on its way to us (a zombie of the short-lived child that made
# it, reparented when that child exits), so it gets this long before it counts as lost.
LOST_GRACE = 5.0
STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
# epoll directly, not the selectors module: less Python run (and so fewer pages written)
# in every monitor.
READ, WRITE = select.EPOLLIN, select.EPOLLOUT


# -- wire helpers (shared with the daemon side) --------------------------------------------
def encode(msg: dict[str, Any]) -> bytes:
    body = fastjson.dumps(msg, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv_msg(sock: socket.socket) -> dict[str, Any]:
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    return fastjson.loads(recv_exact(sock, n))


def sock_address(state_dir: str) -> tuple[str, int | None]:
    """A bindable/connectable path for the socket; long paths go through /proc/self/fd."""
    path = os.path.join(state_dir, SOCK_NAME)
    if len(path) < 100:
        return path, None
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{dfd}/{SOCK_NAME}", dfd


def frame(stream: str, data: bytes, tty: bool) -> bytes:
    if tty:
        return data
    return struct.pack(">BxxxI", STREAM_IDS[stream], len(data)) + data


def write_atomic(path: str, obj: dict[str, Any]) -> None:
    # Atomic (rename) but not fsync'd: these files describe processes, which a machine
    # crash ends anyway; only a daemon crash must find them, and the page cache outlives it.
    # os calls and the C encoder, not open() and json.dump: that pair runs the
    # pure-Python streaming encoder and the io stack, code a monitor never needs else.
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, fastjson.dumps(obj).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def status_from_wait(st: int) -> int:
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return os.WEXITSTATUS(st) if os.WIFEXITED(st) else 255


def _error_reply(e: BaseException) -> dict[str, Any]:
    kind = type(e).__name__ if isinstance(e, errors.HoistError) else "HoistError"
    return {"error": str(e) or type(e).__name__, "kind": kind}


# -- the monitor ---------------------------------------------------------------------------
class Client:
    __slots__ = ("conn", "proc", "streams", "stdin", "stdin_once", "out", "read_open", "closing")

    def __init__(self, conn: socket.socket, proc: "Proc", streams: set[str], stdin: bool,
                 stdin_once: bool) -> None:
        self.conn = conn
        self.proc = proc
        self.streams = streams
        self.stdin = stdin
        self.stdin_once = stdin_once
        self.out = bytearray()
        self.read_open = True
        self.closing = False


class Proc:
    """The container's init or one exec'd process, with its stdio."""

    def __init__(self, key: str, tty: bool, want_stdin: bool, process: dict | None = None) -> None:
        self.key = key
        self.tty = tty
        self.want_stdin = want_stdin
        self.process = process
        self.pid = 0
        self.started = False
        self.console: int | None = None
        self.stdin_w: int | None = None
        self.inbuf = bytearray()
        self.stdin_close_pending = False
        self.outs: dict[int, str] = {}
        self.clients: list[Client] = []
        self.waiters: list[socket.socket] = []
        self.status: dict[str, Any] | None = None
        self.exited_at = 0.0
        self.pidfd: int | None = None
        self.gone_at = 0.0  # when its pidfd said it ended and we had no status for it
        self.outs_done = False
        self.discard = False

    def stdio_for_child(self) -> tuple[Stdio, list[int]]:
        """Create pipes; return the child's Stdio and the child ends to close afterwards."""
        if self.tty:
            self.outs_done = False
            return Stdio(None, None, None, terminal=True), []
        child: list[int] = []
        if self.want_stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self.stdin_w = w
            os.set_blocking(w, False)
            stdin = r
        else:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        child.append(stdin)
        fds = []
        for stream in ("stdout", "stderr"):
            r, w = os.pipe2(os.O_CLOEXEC)
            self.outs[r] = stream
            child.append(w)
            fds.append(w)
        return Stdio(stdin, fds[0], fds[1]), child


class MonitorServer:
    def __init__(self, cfg: dict[str, Any], runtime: Any) -> None:
        self.cfg = cfg
        self.id = cfg["container_id"]
        self.state_dir = cfg["state_dir"]
        self.bundle = cfg["bundle"]
        self.runtime = runtime
        self.sel = select.epoll()
        self.init = Proc("init", bool(cfg["tty"]), bool(cfg["open_stdin"]))
        self.execs: dict[str, Proc] = {}
        self.log = LogWriter(cfg["log_path"], cfg["log_max_size"], cfg["log_max_files"])
        self.deferred: BaseException | None = None
        self.paused = False
        self.exit_requested = False
        self._events: dict[int, int] = {}
        self._handlers: dict[int, Any] = {}
        self._next_exec = 0

    # -- selector bookkeeping -------------------------------------------------------------
    def _set(self, fd: int, events: int, handler: Any = None) -> None:
        if handler is not None:
            self._handlers[fd] = handler
        old = self._events.get(fd, 0)
        if events == old:
            return
        if not events:
            self.sel.unregister(fd)
            del self._events[fd]
            self._handlers.pop(fd, None)
        elif not old:
            self.sel.register(fd, events)
            self._events[fd] = events
        else:
            self.sel.modify(fd, events)
            self._events[fd] = events

    def _add_events(self, fd: int, ev: int) -> None:
        self._set(fd, self._events.get(fd, 0) | ev)

    def _del_events(self, fd: int, ev: int) -> None:
        self._set(fd, self._events.get(fd, 0) & ~ev)

    # -- set-up ---------------------------------------------------------------------------
    def create(self) -> None:
        stdio, child = self.init.stdio_for_child()
        try:
            create = getattr(self.runtime, "create_isolated", self.runtime.create)
            created = create(self.id, self.bundle, stdio)
        except (errors.CannotExecute, errors.CommandNotFound) as e:
            # Docker reports these at start: keep the monitor up and fail start().
            self.deferred = e
            for fd in child:
                os.close(fd)
            self._close_proc_fds(self.init)
            return
        finally:
            pass
        for fd in child:
            os.close(fd)
        self._wire(self.init, created)

    def _wire(self, proc: Proc, created: Any) -> None:
        proc.pid = created.pid
        try:
            proc.pidfd = os.pidfd_open(proc.pid)
        except OSError:  # already gone (SIGCHLD tells), or a kernel before 5.3
            proc.pidfd = None
        else:
            self._set(proc.pidfd, READ, ("gone", proc))
        if created.console is not None:
            proc.console = created.console
            os.set_blocking(created.console, False)
            proc.outs[created.console] = "stdout"
        for fd in proc.outs:
            os.set_blocking(fd, False)
            self._set(fd, READ, ("out", proc))

    def _close_proc_fds(self, proc: Proc) -> None:
        for fd in list(proc.outs):
            self._set(fd, 0)
            os.close(fd)
        proc.outs.clear()
        if proc.stdin_w is not None:
            self._set(proc.stdin_w, 0)
            os.close(proc.stdin_w)
            proc.stdin_w = None

    def serve(self, listener: socket.socket) -> None:
        self.listener = listener
        listener.setblocking(False)
        self._set(listener.fileno(), READ, ("accept", None))
        sig_r, sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._sig_pipe = (sig_r, sig_w)
        # _signal: signal.signal converts to and from enums, code touched only here.
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        _signal.set_wakeup_fd(sig_w)
        self._set(sig_r, READ, ("sigchld", None))
        self._reap()
        created_at = time.monotonic()
        while not self._finished():
            timeout = None
            if not self.init.started and self.init.pid and self.init.status is None:
                deadline = float(self.cfg.get("start_deadline") or START_DEADLINE)
                left = created_at + deadline - time.monotonic()
                if left <= 0:
                    print(f"monitor {self.id}: not started within {deadline:.0f}s; "
                          f"ending it", flush=True)
                    self.init.started = True
                    try:
                        self.runtime.kill(self.id, signal.SIGKILL)
                    except Exception as e:
                        # The runtime's state may be gone with its daemon's files; init
                        # is our child all the same.
                        print(f"monitor {self.id}: kill: {e}; killing {self.init.pid}", flush=True)
                        try:
                            os.kill(self.init.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    continue
                timeout = left
            for p in self._procs():
                if p.status is not None and (not p.outs_done or p.clients):
                    left = p.exited_at + (DRAIN_AFTER_EXIT if not p.outs_done else CLIENT_LINGER) \
                        - time.monotonic()
                    timeout = left if timeout is None else min(timeout, left)
                elif p.status is None and p.gone_at:
                    left = p.gone_at + LOST_GRACE - time.monotonic()
                    timeout = left if timeout is None else min(timeout, left)
            for fd, got in self.sel.poll(-1 if timeout is None else max(0.0, timeout)):
                h = self._handlers.get(fd)
                if h is None:
                    continue
                # A hang-up or error counts as both readable and writable (the read or
                # write then finds out), of what the fd was registered for.
                ev = ((WRITE if got & ~READ else 0) | (READ if got & ~WRITE else 0)) \
                    & self._events.get(fd, 0)
                if not ev:
                    continue
                try:
                    self._dispatch(fd, ev, h)
                except Exception as e:  # one bad connection must never end the monitor
                    print(f"monitor {self.id}: {type(e).__name__}: {e}", flush=True)
            now = time.monotonic()
            for p in self._procs():
                if p.status is None and p.gone_at and now >= p.gone_at + LOST_GRACE:
                    # Never left waiting for ever: the container has ended all the same.
                    print(f"monitor {self.id}: process {p.pid} ended but was not ours to "
                          f"reap; its exit status is lost", flush=True)
                    self._record_exit(p, {"code": 255, "oom_killed": False,
                                          "finished_at": time.time(),
                                          "error": "exit status lost: the process ended "
                                                   "without its monitor reaping it"})
                if p.status is not None and not p.outs_done and now >= p.exited_at + DRAIN_AFTER_EXIT:
                    self._outputs_done(p)
                if p.status is not None and p.clients and now >= p.exited_at + CLIENT_LINGER:
                    # A client that stopped reading must not keep the monitor alive.
                    for c in list(p.clients):
                        self._close_client(c)
        listener.close()

    def close(self) -> None:
        """Release what serve() held (a real monitor just exits; warm_up() goes on)."""
        for fd in getattr(self, "_sig_pipe", ()):
            os.close(fd)
        self._sig_pipe = ()
        listener = getattr(self, "listener", None)
        if listener is not None:
            listener.close()
        self.sel.close()
        self.log.close()

    def _procs(self) -> list[Proc]:
        return [self.init, *self.execs.values()]

    def _finished(self) -> bool:
        i = self.init
        if self.exit_requested:
            return all(not c.out for c in i.clients)
        return i.status is not None and i.outs_done and not i.clients and not i.waiters

    def _dispatch(self, fd: int, ev: int, h: tuple[str, Any]) -> None:
        kind, obj = h
        if kind == "accept":
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            self._set(conn.fileno(), READ, ("req", [conn, b""]))
        elif kind == "sigchld":
            try:
                while os.read(fd, 512):
                    pass
            except BlockingIOError:
                pass
            self._reap()
        elif kind == "req":
            self._read_request(fd, obj)
        elif kind == "out":
            self._read_output(fd, obj)
        elif kind == "client":
            if ev & READ:
                self._client_read(obj)
            if ev & WRITE and obj.conn.fileno() >= 0:
                self._client_flush(obj)
        elif kind == "stdin":
            self._flush_stdin(obj)
        elif kind == "gone":
            self._drop_pidfd(obj)
            self._reap()
            if obj.status is None:
                obj.gone_at = time.monotonic()
        elif kind == "waiter":
            # A waiter hung up (or sent junk): forget it.
            conn, proc = obj
            self._set(fd, 0)
            if conn in proc.waiters:
                proc.waiters.remove(conn)
            conn.close()

    # -- requests -------------------------------------------------------------------------
    def _read_request(self, fd: int, st: list[Any]) -> None:
        conn = st[0]
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._set(fd, 0)
            conn.close()
            return
        st[1] += chunk
        if len(st[1]) < 4:
            return
        (n,) = struct.unpack(">I", st[1][:4])
        if len(st[1]) < 4 + n:
            return
        self._set(fd, 0)
        req = fastjson.loads(st[1][4:4 + n])
        try:
            reply = self._handle(conn, req)
        except Exception as e:
            reply = _error_reply(e)
        if reply is None:
            return  # the connection was taken over (attach, wait)
        self._send_and_close(conn, reply)

    def _send_and_close(self, conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            conn.sendall(encode(reply))
        except OSError:
            pass
        conn.close()

    def _proc(self, req: dict[str, Any]) -> Proc:
        key = req.get("exec")
        if not key:
            return self.init
        p = self.execs.get(key)
        if p is None:
            raise errors.NotFound(f"no such exec instance: {key}")
        return p

    def _handle(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        cmd = req.get("cmd")
        i = self.init
        if cmd == "status":
            p = self._proc(req)
            return {"pid": p.pid, "tty": p.tty, "state": self._state(p), "exit": p.status,
                    "monitor_pid": os.getpid()}
        if cmd == "start":
            p = self._proc(req)
            if p is i:
                self._start_init()
            else:
                p.discard = True
                self._start_exec(p)
            return {"pid": p.pid}
        if cmd == "kill":
            sig = int(req["sig"])
            if self.deferred is not None and not i.started:
                self._record_exit(i, {"code": 128 + sig, "oom_killed": False,
                                      "finished_at": time.time(), "error": str(self.deferred)})
                return {}
            if i.status is not None:
                raise errors.Conflict(f"container {self.id} is not running")
            self.runtime.kill(self.id, sig)
            return {}
        if cmd in ("pause", "resume"):
            if i.status is not None or not i.pid:
                raise errors.Conflict(f"container {self.id} is not running")
            getattr(self.runtime, cmd)(self.id)
            self.paused = cmd == "pause"
            return {}
        if cmd == "resize":
            p = self._proc(req)
            if p.console is None:
                raise errors.Conflict("the process has no terminal")
            fcntl.ioctl(p.console, termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(req["height"]), int(req["width"]), 0, 0))
            return {}
        if cmd == "exec":
            if i.status is not None or not i.started:
                raise errors.Conflict(f"container {self.id} is not running")
            self._next_exec += 1
            key = f"e{self._next_exec}"
            self.execs[key] = Proc(key, bool(req.get("tty")), bool(req.get("stdin")),
                                   req["process"])
            return {"exec": key}
        if cmd == "wait":
            p = self._proc(req)
            if p.status is not None:
                return {"exit": p.status}
            p.waiters.append(conn)
            self._set(conn.fileno(), READ, ("waiter", (conn, p)))
            return None
        if cmd == "attach":
            return self._attach(conn, req)
        if cmd == "shutdown":  # a stopped container the daemon is done with
            self.exit_requested = i.status is not None
            return {}
        raise errors.InvalidArgument(f"unknown monitor command {cmd!r}")

    def _state(self, p: Proc) -> str:
        if p.status is not None:
            return "exited"
        if not p.started:
            return "created"
        return "paused" if (p is self.init and self.paused) else "running"

    def _start_init(self) -> None:
        i = self.init
        if i.started:
            raise errors.Conflict(f"container {self.id} is already started")
        if self.deferred is not None:
            e = self.deferred
            code = e.exit_code if isinstance(e, errors.HoistError) else 126
            i.started = True
            self._record_exit(i, {"code": code, "oom_killed": False,
                                  "finished_at": time.time(), "error": str(e)})
            raise e
        try:
            self.runtime.start(self.id)
        except (errors.CannotExecute, errors.CommandNotFound) as e:
            i.started = True
            self._reap()
            if i.status is None:
                self._record_exit(i, {"code": e.exit_code, "oom_killed": False,
                                      "finished_at": time.time(), "error": str(e)})
            else:
                i.status = dict(i.status, code=e.exit_code, error=str(e))
                write_atomic(os.path.join(self.state_dir, EXIT_FILE), i.status)
            raise
        i.started = True
        from .. import linux
        linux.malloc_trim()  # create's buffers (spec, seccomp program...) are garbage now

    def _start_exec(self, p: Proc) -> None:
        if p.started:
            return
        if self.init.status is not None:
            raise errors.Conflict(f"container {self.id} is not running")
        p.started = True
        stdio, child = p.stdio_for_child()
        try:
            run = getattr(self.runtime, "exec_isolated", self.runtime.exec)
            created = run(self.id, self.bundle, p.process, stdio)
        except Exception as e:
            for fd in child:
                os.close(fd)
            self._close_proc_fds(p)
            code = e.exit_code if isinstance(e, (errors.CannotExecute, errors.CommandNotFound)) else 126
            p.outs_done = True
            self._record_exit(p, {"code": code, "oom_killed": False, "finished_at": time.time(),
                                  "error": str(e)})
            raise
        for fd in child:
            os.close(fd)
        self._wire(p, created)
        self._reap()

    def _attach(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        p = self._proc(req)
        streams = {s for s in ("stdout", "stderr") if req.get(s)}
        c = Client(conn, p, streams, bool(req.get("stdin")), bool(req.get("stdin_once", True)))
        conn.setblocking(True)
        if p is not self.init and not p.started:
            self._start_exec(p)  # raises → error reply, connection closed
        conn.sendall(encode({"pid": p.pid, "tty": p.tty}))
        conn.setblocking(False)
        if req.get("logs") and p is self.init:
            for e in read_logs(self.cfg["log_path"]):
                if e.stream in streams:
                    c.out += frame(e.stream, e.data, p.tty)
        p.clients.append(c)
        self._set(conn.fileno(), READ, ("client", c))
        if c.out:
            self._client_flush(c)
        if p.status is not None and p.outs_done:
            self._close_client(c)
        return None

    # -- data paths -----------------------------------------------------------------------
    def _read_output(self, fd: int, p: Proc) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the pty's last slave closed
                raise
            data = b""
        if not data:
            self._set(fd, 0)
            stream = p.outs.pop(fd)
            if fd == p.console:
                p.console = None
            os.close(fd)
            if p is self.init:
                self.log.flush()
            del stream
            if not p.outs:
                self._outputs_done(p)
            return
        stream = p.outs[fd]
        if p is self.init:
            self.log.write(stream, data)
        if stream not in ("stdout", "stderr"):
            return
        framed = None
        for c in p.clients:
            if stream in c.streams and not c.closing:
                if framed is None:
                    framed = frame(stream, data, p.tty)
                c.out += framed
                self._client_flush(c)
        self._throttle(p)

    def _throttle(self, p: Proc) -> None:
        lagging = any(len(c.out) > CLIENT_BUF_LIMIT for c in p.clients)
        for fd in p.outs:
            self._set(fd, 0 if lagging else READ, ("out", p))

    def _outputs_done(self, p: Proc) -> None:
        p.outs_done = True
        for fd in list(p.outs):
            self._set(fd, 0)
            os.close(fd)
        p.outs.clear()
        p.console = None
        for c in list(p.clients):
            if c.out:
                c.closing = True
            else:
                self._close_client(c)

    def _client_flush(self, c: Client) -> None:
        try:
            while c.out:
                n = c.conn.send(c.out)
                del c.out[:n]
        except BlockingIOError:
            self._add_events(c.conn.fileno(), WRITE)
            return
        except OSError:
            self._close_client(c)
            return
        if c.conn.fileno() >= 0:
            self._del_events(c.conn.fileno(), WRITE)
            self._throttle(c.proc)
            if c.closing:
                self._close_client(c)

    def _client_read(self, c: Client) -> None:
        try:
            data = c.conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        p = c.proc
        if data:
            if c.stdin and p.status is None:
                if p.console is not None:
                    p.inbuf += data
                    self._flush_stdin(p)
                elif p.stdin_w is not None:
                    p.inbuf += data
                    self._flush_stdin(p)
            return
        # EOF from the client: it half-closed (SHUT_WR) or went away.
        c.read_open = False
        self._del_events(c.conn.fileno(), READ)
        if c.stdin and c.stdin_once:
            p.stdin_close_pending = True
            self._flush_stdin(p)
        if not c.streams:
            self._close_client(c)

    def _flush_stdin(self, p: Proc) -> None:
        fd = p.console if p.tty else p.stdin_w
        if fd is None:
            p.inbuf.clear()
            return
        try:
            while p.inbuf:
                n = os.write(fd, p.inbuf)
                del p.inbuf[:n]
        except BlockingIOError:
            if not p.tty:
                self._set(fd, WRITE, ("stdin", p))
            return
        except OSError:
            p.inbuf.clear()
        if not p.tty and p.stdin_w is not None and fd in self._events:
            self._set(fd, 0)
        if p.stdin_close_pending and not p.inbuf:
            p.stdin_close_pending = False
            if p.tty:
                try:
                    os.write(fd, b"\x04")  # EOF for the line discipline
                except OSError:
                    pass
            elif p.stdin_w is not None:
                os.close(p.stdin_w)
                p.stdin_w = None

    def _close_client(self, c: Client) -> None:
        if c in c.proc.clients:
            c.proc.clients.remove(c)
        fd = c.conn.fileno()
        if fd >= 0:
            self._set(fd, 0)
            c.conn.close()

    # -- exits ----------------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for p in self._procs():
                if p.pid == pid and p.status is None:
                    status = {"code": status_from_wait(st), "oom_killed": False,
                              "finished_at": time.time(), "error": ""}
                    if p is self.init:
                        status["oom_killed"] = self._oom_killed()
                    self._record_exit(p, status)

    def _oom_killed(self) -> bool:
        try:
            with open(os.path.join(self.bundle, "config.json")) as f:
                cg = (json.load(f).get("linux") or {}).get("cgroupsPath") or ""
        except (OSError, ValueError):
            return False
        if ":" in cg:  # systemd form slice:prefix:name is not used by hoist
            return False
        cg = cg.strip("/")
        for path, key in ((f"/sys/fs/cgroup/memory/{cg}/memory.oom_control", "oom_kill"),
                          (f"/sys/fs/cgroup/unified/{cg}/memory.events", "oom_kill"),
                          (f"/sys/fs/cgroup/{cg}/memory.events", "oom_kill")):
            try:
                with open(path) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        if k == key:
                            return int(v) > 0
            except OSError:
                continue
        return False

    def _drop_pidfd(self, p: Proc) -> None:
        if p.pidfd is not None:
            self._set(p.pidfd, 0)
            os.close(p.pidfd)
            p.pidfd = None

    def _record_exit(self, p: Proc, status: dict[str, Any]) -> None:
        self._drop_pidfd(p)
        p.status = status
        p.exited_at = time.monotonic()
        if p is self.init:
            write_atomic(os.path.join(self.state_dir, EXIT_FILE), status)
            if p.pid:
                try:
                    self.runtime.delete(self.id)
                except Exception as e:
                    print(f"monitor {self.id}: delete: {e}", flush=True)
            if not p.pid:
                p.outs_done = True
        if p.stdin_w is not None:
            self._set(p.stdin_w, 0)
            os.close(p.stdin_w)
            p.stdin_w = None
        for w in p.waiters:
            self._set(w.fileno(), 0)
            self._send_and_close(w, {"exit": status})
        p.waiters.clear()
        if not p.outs:
            self._outputs_done(p)


def run(cfg: dict[str, Any], conn: socket.socket, runtime: Any = None) -> int:
    """Body of the monitor process (already forked, setsid'd). ``conn`` gets the outcome.
    ``runtime`` replaces the one ``cfg`` names (warm_up's stand-in)."""
    from .runtimes import get_runtime

    srv = listener = None
    try:
        linux_prctl(PR_SET_CHILD_SUBREAPER, 1)
        state_dir = cfg["state_dir"]
        os.makedirs(state_dir, 0o700, exist_ok=True)
        for stale in (EXIT_FILE, SOCK_NAME):
            try:
                os.unlink(os.path.join(state_dir, stale))
            except FileNotFoundError:
                pass
        name = cfg["runtime"]
        if runtime is None:
            runtime = get_runtime(name, os.path.join(cfg["run_dir"], "runtime" if name == "hoist" else name))
        srv = MonitorServer(cfg, runtime)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr, dfd = sock_address(state_dir)
        listener.bind(addr)
        if dfd is not None:
            os.close(dfd)
        listener.listen(64)
        t0 = time.time()
        try:
            srv.create()
        finally:
            _discard_unused_creator()
        create_ms = (time.time() - t0) * 1000
        info = {"container_id": srv.id, "monitor_pid": os.getpid(), "pid": srv.init.pid,
                "tty": srv.init.tty, "runtime": name, "bundle": srv.bundle}
        write_atomic(os.path.join(state_dir, INFO_FILE), info)
        conn.sendall(encode(dict(info, runtime_create_ms=create_ms)))
    except BaseException as e:
        try:
            conn.sendall(encode(_error_reply(e)))
        except OSError:
            pass
        if listener is not None:
            listener.close()
        if srv is not None:
            srv.close()
        return 1
    finally:
        conn.close()
    srv.serve(listener)
    srv.close()  # a monitor exits now anyway; warm_up() goes on and must not leak
    return 0


def _discard_unused_creator() -> None:
    """The spare forked a creator for the hoist runtime; another runtime leaves it unused."""
    import sys
    hoistrt = sys.modules.get(__package__ + ".hoistrt")
    c = hoistrt.take_creator() if hoistrt is not None else None
    if c is not None:
        c.discard()


def linux_prctl(option: int, arg: int) -> None:
    from .. import linux
    linux.prctl(option, arg)


def _warm_up_runtime(scratch: str, requests: list[dict[str, Any]]) -> Any:
    """A HoistRuntime whose "container" is /bin/sh, spawned: create_isolated, start and
    the monitor around them run their real code; nothing touches cgroups or namespaces."""
    from .base import Created
    from .hoistrt import HoistRuntime, _Pending

    class WarmUpRuntime(HoistRuntime):
        name = "warm-up"
        clients: list[socket.socket] = []

        def create_isolated(self, container_id: str, bundle: str, stdio: Stdio) -> Any:
            # run() has bound the monitor socket by now: queue the rehearsal's requests.
            for req in requests:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.clients.append(c)
                c.connect(os.path.join(scratch, SOCK_NAME))
                c.sendall(encode(req))
            return super().create_isolated(container_id, bundle, stdio)

        def create(self, container_id: str, bundle: str, stdio: Stdio) -> Any:
            actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in
                       enumerate((stdio.stdin, stdio.stdout, stdio.stderr)) if fd is not None]
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", "echo warm; echo up >&2"], {},
                                 file_actions=actions)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            os.close(err_w)  # start reads EOF: "exec'd"
            start_w = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            self._pending[container_id] = _Pending(start_w, err_r, [], bundle)
            return Created(pid=pid, console=None)

        def kill(self, container_id: str, sig: int) -> None:
            pass

        def pause(self, container_id: str) -> None:
            pass

        def resume(self, container_id: str) -> None:
            pass

        def delete(self, container_id: str) -> None:
            p = self._pending.pop(container_id, None)
            if p is not None:
                os.close(p.start_w)
                os.close(p.err_r)

    return WarmUpRuntime(scratch)


def warm_up(scratch: str, limit: float = 3.0) -> None:
    """Run one whole monitor life in the fork server before it forks any monitor.

    Python 3.11 rewrites a function's bytecode in place once the function has run a few
    times (specialisation) and fills caches on first use (ctypes functions, type
    attribute caches, lazily built objects); done in each monitor, that dirties pages
    that would otherwise stay shared with the fork server. So the server goes once
    through run() as a monitor does: create (in a child), serve requests (status,
    attach, start, wait), copy output to a log and a client, record an exit.
    ``scratch`` is an empty directory with a short path; ``limit`` bounds the whole
    thing (it must never hold up a start)."""
    cfg = {"container_id": "warm-up", "state_dir": scratch, "bundle": scratch,
           "runtime": "warm-up", "tty": False, "open_stdin": True,
           "log_path": os.path.join(scratch, "log.json"),
           "log_max_size": 1 << 20, "log_max_files": 1}
    old_chld = signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the child must stay reapable

    def out_of_time(*_: Any) -> None:
        raise TimeoutError("monitor warm-up took too long")

    old_alrm = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, limit)
    reqs: list[dict[str, Any]] = []
    for _ in range(10):  # enough rounds for the specialising interpreter
        reqs += [{"cmd": "status"}, {"cmd": "resize", "height": 1, "width": 1}]
    reqs += [{"cmd": "attach", "stdin": True, "stdout": True, "stderr": True},
             {"cmd": "wait"}, {"cmd": "start"}]
    runtime = _warm_up_runtime(scratch, reqs)
    reply, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    from . import hoistrt
    try:
        # As a spare monitor does: its create goes to a creator forked beforehand.
        hoistrt.keep_creator(hoistrt.Creator.fork(make_runtime=type(runtime)))
        if run(cfg, theirs, runtime) != 0:
            raise OSError(reply.recv(65536).decode(errors="replace"))
    except (OSError, TimeoutError) as e:
        print(f"hoist: monitor warm-up skipped: {e}", flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alrm)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, old_chld)
        linux_prctl(PR_SET_CHILD_SUBREAPER, 0)  # that was the rehearsal's, not the server's
        reply.close()
        theirs.close()
        for c in runtime.clients:
            c.close()
