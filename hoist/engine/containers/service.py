"""ContainerService: container records, lifecycle and the per-container files.

State lives in the ``containers`` table: one JSON document per container (Config,
HostConfig, State...) so no schema migration is needed. The process side is
hoist.runtime.supervisor: a fork server the daemon starts once, and one monitor per
running container (stdio or pty, json-file log, exit status) that outlives the daemon.
The daemon keeps one ``wait`` connection per running container and nothing else.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal as _signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ... import linux
from ...errors import CannotExecute, CommandNotFound, Conflict, HoistError, InvalidArgument, NotFound
from ...runtime.supervisor import ExitStatus, Monitor, MonitorSpec, Supervisor
from ..images import ImageService
from ..store import ImageStore
from .health import HealthChecker, HealthConfig, effective_healthcheck, validate_healthcheck
from .mountpoints import mount_points
from .names import random_name, validate_name
from .probe import run_to_end
from .prunefilter import prune_filter
from .schema import check_create_body, complete_host_config
from .views import ZERO_TIME, du, filter_ok, inspect_doc, iso, parse_iso, ps_row
from .restart import RestartDecision, RestartManager, RestartPolicy, containers_to_start, \
    validate_restart_policy

if TYPE_CHECKING:
    from ...runtime.cgroups import Cgroup

RUNTIMES = ("hoist", "runc", "crun")
DEFAULT_RUNTIME = "hoist"
# Kept in the container's record, never shown by inspect (dockerd's
# HasBeenManuallyStopped): decides unless-stopped/always at daemon start.
MANUALLY_STOPPED = "HoistManuallyStopped"


class StartError(HoistError):
    status = 500


def _signal_num(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    if sig in (None, ""):
        return default
    s = str(sig).upper()
    if s.isdigit():
        return int(s)
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(getattr(_signal, s))
    except AttributeError:
        raise InvalidArgument(f"Invalid signal: {sig}") from None


@dataclass(frozen=True)
class AttachRequest:
    """What an attached client wants of the container's stdio."""
    stdin: bool
    stdout: bool
    stderr: bool
    logs: bool = False


# Called with the monitor's attach stream, or None when the container will not run.
OnSocket = Callable[[socket.socket | None], None]


class ContainerService:
    def __init__(self, store: ImageStore, images: ImageService) -> None:
        self.store = store
        self.images = images
        self.db = store.db
        self.root = os.path.join(store.paths.data_root, "containers")
        # Runtime state (hoist's own under run/runtime, runc's under run/runc): the
        # monitors find it there after a daemon restart.
        self.run_dir = os.path.join(store.paths.data_root, "run")
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._supervisor: Supervisor | None = None
        self._live: dict[str, Monitor] = {}
        self._starting: set[str] = set()
        self._pending: dict[str, list[tuple[AttachRequest, OnSocket]]] = {}
        self._exits: dict[str, int] = {}
        self._last_exit: dict[str, int] = {}   # exits seen per container (wait next-exit)
        self._fs_users: dict[str, int] = {}    # mounted_rootfs() users of a stopped container
        self._restarts: dict[str, RestartManager] = {}
        self._health: dict[str, HealthChecker] = {}

    # ------------------------------------------------------------------ records

    def _load(self, cid: str) -> dict[str, Any]:
        r = self.db.one("SELECT state FROM containers WHERE id=?", (cid,))
        if r is None:
            raise NotFound(f"No such container: {cid}")
        return json.loads(r["state"])

    def _save(self, doc: dict[str, Any]) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE containers SET state=?, name=? WHERE id=?",
                      (json.dumps(doc), doc["Name"].lstrip("/"), doc["Id"]))

    def resolve(self, ref: str) -> str:
        if not ref:
            raise NotFound("No such container: ")
        r = self.db.one("SELECT id FROM containers WHERE id=? OR name=?", (ref, ref.lstrip("/")))
        if r:
            return r["id"]
        rows = self.db.query("SELECT id FROM containers WHERE id LIKE ?", (ref + "%",)) \
            if all(ch in "0123456789abcdef" for ch in ref) else []
        if len(rows) == 1:
            return rows[0]["id"]
        if len(rows) > 1:
            raise InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def publish_event(self, doc: dict[str, Any], action: str, **attrs: str) -> None:
        """A container event as dockerd sends it: the container's labels, its image and
        name, then the action's own attributes."""
        cfg = doc.get("Config") or {}
        self.store.events.publish("container", action, doc["Id"],
                                  **{**(cfg.get("Labels") or {}), "image": cfg.get("Image") or "",
                                     "name": doc["Name"].lstrip("/"), **attrs})

    def get(self, ref: str) -> dict[str, Any]:
        return self._load(self.resolve(ref))

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    # ------------------------------------------------------------------ create

    def create(self, body: dict[str, Any], name: str = "") -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidArgument("invalid container config")
        check_create_body(body)
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidArgument("No command specified" if False else "config: image is required")
        image_id = self.images.resolve(image_ref)
        img = (self.store.config(image_id).doc.get("config") or {})
        from ...runtime import spec as _spec
        from ...runtime.cgroups import host_layout
        hc = complete_host_config(body.get("HostConfig") or {}, not host_layout().unified,
                                  list(_spec.MASKED_PATHS), list(_spec.READONLY_PATHS),
                                  _spec.DEFAULT_SHM_SIZE)
        runtime = hc.get("Runtime") or DEFAULT_RUNTIME
        if runtime not in RUNTIMES:
            raise InvalidArgument(f"unknown or invalid runtime name: {runtime}")
        hc["Runtime"] = runtime
        mem = hc.get("Memory") or 0
        if mem and mem < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        net = hc.get("NetworkMode") or "default"
        if net not in ("default", "bridge", "none", "host"):
            raise InvalidArgument(f"network {net} not found")
        # Until networking exists, default/bridge is an isolated netns with loopback only.
        hc["NetworkMode"] = "bridge" if net == "default" else net
        hc["LogConfig"] = _log_config(hc.get("LogConfig"))
        if hc.get("StorageOpt"):
            # dockerd refuses it too unless overlay sits on xfs with pquota; hoist's
            # writable layers have no quota at all, so silently accepting would lie.
            raise InvalidArgument("--storage-opt is not supported: the container's writable "
                                  "layer has no size quota on this daemon")
        hc["RestartPolicy"] = validate_restart_policy(hc).to_api()
        validate_healthcheck(body.get("Healthcheck"))
        cfg = self._merge_config(body, img, image_ref)
        _spec.check(cfg, hc)  # everything start would refuse that needs no rootfs: 400 now
        cid = secrets.token_hex(32)
        with self._lock:
            if name:
                name = validate_name(name)
                if self.db.one("SELECT id FROM containers WHERE name=?", (name,)):
                    other = self.db.one("SELECT id FROM containers WHERE name=?", (name,))["id"]
                    raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                                   f'"{other}". You have to remove (or rename) that container to be able '
                                   f'to reuse that name.')
            else:
                for i in range(20):
                    name = random_name(i // 5)
                    if not self.db.one("SELECT 1 FROM containers WHERE name=?", (name,)):
                        break
            d = self.dir(cid)
            os.makedirs(os.path.join(d, "fs", "upper"), mode=0o755)
            os.makedirs(os.path.join(d, "fs", "work"), mode=0o700)
            os.makedirs(os.path.join(d, "bundle", "rootfs"), mode=0o755)
            hostname = cfg.get("Hostname") or cid[:12]
            if net == "host":
                hostname = cfg.get("Hostname") or socket.gethostname()
            cfg["Hostname"] = hostname
            self._write_files(d, hostname, net)
            now = time.time()
            args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
            doc = {
                "Id": cid, "Created": iso(now),
                "Path": args[0] if args else "", "Args": args[1:],
                "State": {"Status": "created", "Running": False, "Paused": False,
                          "Restarting": False, "OOMKilled": False, "Dead": False, "Pid": 0,
                          "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME},
                "Image": image_id,
                "ResolvConfPath": os.path.join(d, "resolv.conf"),
                "HostnamePath": os.path.join(d, "hostname"),
                "HostsPath": os.path.join(d, "hosts"),
                "LogPath": os.path.join(d, cid + "-json.log"),
                "Name": "/" + name, "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
                "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
                "HostConfig": hc,
                "GraphDriver": {"Name": "overlay2", "Data": {
                    "LowerDir": self._lower_dirs(image_id),
                    "UpperDir": os.path.join(d, "fs", "upper"), "WorkDir": os.path.join(d, "fs", "work"),
                    "MergedDir": os.path.join(d, "bundle", "rootfs")}},
                "Mounts": mount_points(hc), "Config": cfg,
                "NetworkSettings": {"Bridge": "", "SandboxID": "", "Ports": {}, "SandboxKey": "",
                                    "IPAddress": "", "Gateway": "", "MacAddress": "",
                                    "Networks": {hc["NetworkMode"]: {"NetworkID": "", "EndpointID": "",
                                                                      "Gateway": "", "IPAddress": "",
                                                                      "MacAddress": ""}}},
            }
            try:
                with self.db.transaction() as c:
                    c.execute("INSERT INTO containers(id, name, image_id, state, created) VALUES (?,?,?,?,?)",
                              (cid, name, image_id, json.dumps(doc), now))
            except BaseException:
                shutil.rmtree(d, ignore_errors=True)
                raise
        self.publish_event(doc, "create")
        return {"Id": cid, "Warnings": []}

    @staticmethod
    def _merge_config(body: dict[str, Any], img: dict[str, Any], image_ref: str) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "Hostname": body.get("Hostname") or "", "Domainname": body.get("Domainname") or "",
            "User": body.get("User") or img.get("User") or "",
            "AttachStdin": bool(body.get("AttachStdin")), "AttachStdout": bool(body.get("AttachStdout")),
            "AttachStderr": bool(body.get("AttachStderr")), "Tty": bool(body.get("Tty")),
            "OpenStdin": bool(body.get("OpenStdin")), "StdinOnce": bool(body.get("StdinOnce")),
            "Image": image_ref,
            "WorkingDir": body.get("WorkingDir") or img.get("WorkingDir") or "",
        }
        env: dict[str, str] = {}
        order: list[str] = []
        for e in list(img.get("Env") or []) + list(body.get("Env") or []):
            k = e.split("=", 1)[0]
            if k not in env:
                order.append(k)
            env[k] = e
        cfg["Env"] = [env[k] for k in order]
        ep = body.get("Entrypoint")
        cmd = body.get("Cmd")
        if isinstance(ep, str):
            ep = [ep]
        if isinstance(cmd, str):
            cmd = [cmd]
        if ep is not None and ep != [] or ep == [""]:
            # --entrypoint resets the image's Cmd (dockerd does the same)
            cfg["Entrypoint"] = [x for x in ep if x != ""] or None
            cfg["Cmd"] = cmd or None
        else:
            cfg["Entrypoint"] = img.get("Entrypoint")
            cfg["Cmd"] = cmd or img.get("Cmd")
        labels = dict(img.get("Labels") or {})
        labels.update(body.get("Labels") or {})
        cfg["Labels"] = labels
        for k in ("ExposedPorts", "Volumes"):
            v = dict(img.get(k) or {})
            v.update(body.get(k) or {})
            if v:
                cfg[k] = v
        health = effective_healthcheck(body.get("Healthcheck"), img.get("Healthcheck"))
        if health:
            cfg["Healthcheck"] = health
        for k in ("StopSignal", "OnBuild", "Shell"):
            v = body.get(k) or img.get(k)
            if v:
                cfg[k] = v
        if body.get("StopTimeout") is not None:
            cfg["StopTimeout"] = body["StopTimeout"]
        if not cfg["Entrypoint"] and not cfg["Cmd"]:
            raise InvalidArgument("No command specified")
        return cfg

    @staticmethod
    def _write_files(d: str, hostname: str, net: str) -> None:
        with open(os.path.join(d, "hostname"), "w") as f:
            f.write(hostname + "\n")
        if net == "host":
            try:
                with open("/etc/hosts") as f:
                    hosts = f.read()
            except OSError:
                hosts = ""
        else:
            hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                     "ff02::2\tip6-allrouters\n")
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write(hosts)
        lines = []
        try:
            with open("/etc/resolv.conf") as f:
                for line in f:
                    parts = line.split()
                    # Docker drops loopback nameservers: they mean nothing in the container's netns.
                    if net != "host" and len(parts) >= 2 and parts[0] == "nameserver" and \
                            (parts[1].startswith("127.") or parts[1] == "::1"):
                        continue
                    lines.append(line if line.endswith("\n") else line + "\n")
        except OSError:
            pass
        if net != "host" and not any(l.startswith("nameserver") for l in lines):
            lines += ["nameserver 8.8.8.8\n", "nameserver 8.8.4.4\n"]
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.writelines(lines)

    # ------------------------------------------------------------------ rootfs

    def _lower_dirs(self, image_id: str) -> str:
        """overlayfs lowerdir: the image's layers, top first."""
        keys = self.store.layer_keys(self.store.config(image_id))
        return ":".join(self.store.snapshots.path(k) for k in reversed(keys))

    def _mount_rootfs(self, doc: dict[str, Any]) -> str:
        d = self.dir(doc["Id"])
        target = os.path.join(d, "bundle", "rootfs")
        if os.path.ismount(target):
            return target
        lower = self._lower_dirs(doc["Image"])
        opts = f"lowerdir={lower},upperdir={d}/fs/upper,workdir={d}/fs/work"
        linux.mount("overlay", target, "overlay", 0, opts)
        return target

    @contextlib.contextmanager
    def mounted_rootfs(self, ref: str) -> Iterator[tuple[dict[str, Any], str]]:
        """(doc, path of the container's merged rootfs) for cp, export, commit and diff:
        a stopped container's overlay is mounted for the duration and unmounted after
        (unless it started meanwhile). Held under the service lock's count, so two users
        of a stopped container share one mount."""
        cid = self.resolve(ref)
        with self._lock:
            doc = self._load(cid)
            path = self._mount_rootfs(doc)
            self._fs_users[cid] = self._fs_users.get(cid, 0) + 1
        try:
            yield doc, path
        finally:
            with self._lock:
                n = self._fs_users.get(cid, 1) - 1
                if n:
                    self._fs_users[cid] = n
                else:
                    self._fs_users.pop(cid, None)
                    if not self.is_running(cid):
                        self._umount_rootfs(cid)

    def cgroup(self, ref: str) -> "Cgroup":
        """The running container's cgroup (top, stats, update)."""
        from ...runtime.cgroups import open_cgroup
        doc = self.get(ref)
        if not doc["State"]["Running"]:
            raise Conflict(f"Container {doc['Id']} is not running")
        return open_cgroup(f"/hoist/{doc['Id']}")

    def _umount_rootfs(self, cid: str) -> None:
        target = os.path.join(self.dir(cid), "bundle", "rootfs")
        while os.path.ismount(target):
            try:
                linux.umount(target, 2)  # MNT_DETACH: a late reader must not keep it busy
            except OSError:
                break

    # ------------------------------------------------------------------ start

    def supervisor(self) -> Supervisor:
        """The fork server, started on first use (hoistd warms it at start-up)."""
        with self._lock:
            if self._supervisor is None:
                self._supervisor = Supervisor(self.run_dir)
            return self._supervisor

    def close(self) -> None:
        """Daemon exit: the fork server goes; monitors and containers keep running."""
        with self._lock:
            sup, self._supervisor = self._supervisor, None
        if sup is not None:
            sup.close()

    def start(self, ref: str) -> None:
        cid = self.resolve(ref)
        with self._lock:
            doc = self._load(cid)
            st = doc["State"]
            if st["Paused"]:
                raise Conflict("cannot start a paused container, try unpause instead")
            if st["Running"] or cid in self._starting:
                raise _NotModified()
            self._starting.add(cid)
            # A start by the user: a fresh restart manager and count, as dockerd does.
            old = self._restarts.pop(cid, None)
            if old is not None:
                old.cancel()
            self._restarts[cid] = RestartManager(_policy(doc))
            if doc.get("RestartCount") or doc.get(MANUALLY_STOPPED):
                doc["RestartCount"] = 0
                doc.pop(MANUALLY_STOPPED, None)
                self._save(doc)
        # The slow part (mount, spec, monitor, runtime create) runs outside the service
        # lock, so containers start in parallel; _starting keeps one start per container.
        try:
            self._start_marked(doc)
        except HoistError:
            if doc["HostConfig"].get("AutoRemove"):
                self.remove(cid, force=True)  # --rm: a failed start leaves nothing behind
            raise

    def _start_marked(self, doc: dict[str, Any]) -> None:
        """_start for a container the caller put in _starting."""
        cid = doc["Id"]
        try:
            self._start(doc)
        finally:
            with self._lock:
                self._starting.discard(cid)
                self._changed.notify_all()

    def _start(self, doc: dict[str, Any]) -> None:
        from ...runtime.spec import SpecInput, generate
        _prime_cgroup_migrations()
        cid = doc["Id"]
        d = self.dir(cid)
        hc = doc["HostConfig"]
        with self._lock:
            rootfs = self._mount_rootfs(doc)
        try:
            spec = generate(SpecInput(
                container_id=cid, config=doc["Config"], host_config=hc, rootfs=rootfs,
                hostname_path=doc["HostnamePath"], hosts_path=doc["HostsPath"],
                resolv_conf_path=doc["ResolvConfPath"], cgroups_path=f"/hoist/{cid}"))
            with open(os.path.join(d, "bundle", "config.json"), "w") as f:
                json.dump(spec, f)
            state_dir = os.path.join(d, "state")
            shutil.rmtree(state_dir, ignore_errors=True)
            cfg = doc["Config"]
            log_opts = (hc.get("LogConfig") or {}).get("Config") or {}
            monitor = self.supervisor().create(MonitorSpec(
                container_id=cid, bundle=os.path.join(d, "bundle"), state_dir=state_dir,
                runtime=hc.get("Runtime") or DEFAULT_RUNTIME, tty=bool(cfg.get("Tty")),
                open_stdin=bool(cfg.get("OpenStdin")), log_path=doc["LogPath"],
                log_max_size=_size_opt(log_opts.get("max-size"), 10 << 20),
                log_max_files=int(log_opts.get("max-file") or 3)))
        except HoistError as e:
            self._start_failed(doc, e, None)
        # Clients that attached before the start see everything from the first byte.
        with self._lock:
            pending = self._pending.pop(cid, [])
        for want, cb in pending:
            try:
                cb(monitor.attach(want.stdin, want.stdout, want.stderr, want.logs,
                                  stdin_once=_closes_stdin(cfg)))
            except HoistError:
                cb(None)
        try:
            monitor.start()
        except HoistError as e:
            self._start_failed(doc, e, monitor)
        with self._lock:
            self._live[cid] = monitor
            doc = self._load(cid)
            doc["State"].update(Status="running", Running=True, Paused=False, Restarting=False,
                                OOMKilled=False, Dead=False, Pid=monitor.pid, ExitCode=0, Error="",
                                StartedAt=iso(time.time()), FinishedAt=ZERO_TIME)
            self._save(doc)
            self._changed.notify_all()
            self._start_health(doc)
        # Before the exit can be seen: a container that is done at once still shows
        # start before die, as with dockerd.
        self.publish_event(doc, "start")
        self._watch_in_background(cid, monitor)

    def _start_failed(self, doc: dict[str, Any], e: HoistError, monitor: Monitor | None) -> None:
        """Record a failed start as dockerd does and raise its error. A command that
        cannot run leaves the container exited with 126/127 (the CLI maps the message)."""
        cid = doc["Id"]
        with self._lock:
            for _, cb in self._pending.pop(cid, []):
                cb(None)  # attached clients see the end of the stream
        if monitor is not None:
            # A command that could not run has its exit recorded already; any other
            # failure leaves init created and waiting: end it, or it would wait forever.
            if monitor.wait(0.5) is None:
                _end_monitor(monitor)
        with self._lock:
            if not self._fs_users.get(cid):
                self._umount_rootfs(cid)
            try:
                doc = self._load(cid)
            except NotFound:
                raise e from None
            exec_failed = isinstance(e, (CannotExecute, CommandNotFound))
            text = (f"failed to create task for container: failed to create shim task: "
                    f"OCI runtime create failed: {e.message}: unknown")
            if exec_failed or "unable to find user" in e.message:
                doc["State"].update(Error=text if exec_failed else e.message)
            if exec_failed:
                doc["State"].update(ExitCode=e.exit_code, Status="exited",
                                    FinishedAt=iso(time.time()))
            self._save(doc)
            self._exits[cid] = self._exits.get(cid, 0) + 1
            self._changed.notify_all()
        if exec_failed:
            err = StartError(text)
            err.status = 400
            err.exit_code = e.exit_code
            raise err from None
        if "unable to find user" in e.message or isinstance(e, (InvalidArgument, NotFound, Conflict)):
            raise e
        raise StartError(f"failed to create task for container: {e.message}") from None

    def _watch_in_background(self, cid: str, monitor: Monitor) -> None:
        threading.Thread(target=self._watch, args=(cid, monitor), daemon=True,
                         name=f"watch-{cid[:12]}").start()

    def _watch(self, cid: str, monitor: Monitor) -> None:
        status = monitor.wait()
        while status is None:  # only a timeout gives None; wait() had none
            status = monitor.wait()
        self._exited(cid, status)

    def _exited(self, cid: str, ex: ExitStatus) -> None:
        decision: RestartDecision | None = None
        with self._lock:
            self._live.pop(cid, None)
            try:
                doc = self._load(cid)
            except NotFound:
                return
            # --rm: remove() unmounts, after its waiters are told (it cannot restart:
            # AutoRemove and a restart policy are refused together at create).
            if not self._fs_users.get(cid) and not doc["HostConfig"].get("AutoRemove"):
                self._umount_rootfs(cid)
            self._stop_health(cid, doc)
            st = doc["State"]
            finished = ex.finished_at or time.time()
            mgr = self._restarts.get(cid)
            if mgr is not None:
                decision = mgr.should_restart(ex.code, bool(doc.get(MANUALLY_STOPPED)),
                                              finished - parse_iso(st["StartedAt"]))
            st.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                      ExitCode=ex.code, OOMKilled=ex.oom_killed, FinishedAt=iso(finished))
            if decision is not None and decision.restart:
                # dockerd shows the backoff as running + restarting, without a process.
                st.update(Status="restarting", Running=True, Restarting=True)
                doc["RestartCount"] = decision.restart_count
            self._save(doc)
            self._exits[cid] = self._exits.get(cid, 0) + 1
            self._last_exit[cid] = ex.code
            self._changed.notify_all()
        if ex.oom_killed:
            self.publish_event(doc, "oom")
        self.publish_event(doc, "die", exitCode=str(ex.code))
        if decision is not None and decision.restart and mgr is not None:
            mgr.schedule(decision, lambda: self._restart_now(cid, mgr),
                         lambda err: self._restart_gave_up(cid, mgr))
        elif doc["HostConfig"].get("AutoRemove"):
            try:
                self.remove(cid, force=True)
            except NotFound:
                pass

    def _restart_now(self, cid: str, mgr: RestartManager) -> None:
        """The restart policy's start, after the backoff (on the manager's thread)."""
        with self._lock:
            doc = self._load(cid)
            if self._restarts.get(cid) is not mgr or not doc["State"]["Restarting"] \
                    or cid in self._starting:
                return  # stopped, removed or started by hand meanwhile
            self._starting.add(cid)
        self._start_marked(doc)

    def _restart_gave_up(self, cid: str, mgr: RestartManager) -> None:
        """Canceled during the backoff, or the start failed: the container is stopped."""
        with self._lock:
            try:
                doc = self._load(cid)
            except NotFound:
                return
            if not doc["State"]["Restarting"] or cid in self._live:
                return
            doc["State"].update(Status="exited", Running=False, Restarting=False, Pid=0)
            self._save(doc)
            self._changed.notify_all()
        if doc["HostConfig"].get("AutoRemove"):
            try:
                self.remove(cid, force=True)
            except (NotFound, Conflict):
                pass

    def set_restart_policy(self, cid: str, policy: RestartPolicy) -> None:
        """docker update --restart: a started container's manager follows it at once."""
        with self._lock:
            mgr = self._restarts.get(cid)
            if mgr is not None:
                mgr.set_policy(policy)

    def _mark_manual(self, cid: str) -> None:
        with self._lock:
            try:
                doc = self._load(cid)
            except NotFound:
                return
            if not doc.get(MANUALLY_STOPPED):
                doc[MANUALLY_STOPPED] = True
                self._save(doc)

    def _cancel_restarts(self, cid: str, manual: bool) -> None:
        """docker stop/kill/rm: no more policy restarts; remember it was by hand."""
        with self._lock:
            mgr = self._restarts.get(cid)
            if mgr is not None:
                mgr.cancel()
            if manual:
                self._mark_manual(cid)
        if mgr is not None:
            self._restart_gave_up(cid, mgr)

    # ------------------------------------------------------------------ health

    def _start_health(self, doc: dict[str, Any], resume: bool = False) -> None:
        """Under the lock, after a start (or unpause, or live restore)."""
        cid = doc["Id"]
        cfg = HealthConfig.parse(doc["Config"].get("Healthcheck"), doc["Config"].get("Shell"))
        if cfg is None:
            return
        checker = HealthChecker(cid, cfg, lambda argv, t: self._probe(cid, argv, t),
                                lambda h, changed: self._health_changed(cid, checker, h, changed),
                                started_at=parse_iso(doc["State"]["StartedAt"]),
                                previous=doc["State"].get("Health"), resume=resume)
        old = self._health.pop(cid, None)
        if old is not None:
            old.stop()
        self._health[cid] = checker
        doc["State"]["Health"] = checker.doc
        self._save(doc)
        checker.start()

    def _stop_health(self, cid: str, doc: dict[str, Any]) -> None:
        """Under the lock; the caller saves ``doc``."""
        checker = self._health.pop(cid, None)
        if checker is not None:
            doc["State"]["Health"] = checker.stop()

    def _health_changed(self, cid: str, checker: HealthChecker, health: dict[str, Any],
                        changed: bool) -> None:
        with self._lock:
            if checker.stopped or self._health.get(cid) is not checker:
                return  # a late probe result: the container stopped meanwhile
            try:
                doc = self._load(cid)
            except NotFound:
                return
            doc["State"]["Health"] = health
            self._save(doc)
        if changed:
            self.publish_event(doc, "health_status: " + health["Status"])

    def _probe(self, cid: str, argv: list[str], timeout_s: float) -> tuple[int, bytes]:
        """One health probe: exec ``argv`` as the container's user, in its working dir
        and environment; (-1, output so far) on timeout, after killing the probe."""
        process = self.exec_spec(cid, {"Cmd": list(argv)})
        return run_to_end(self._monitor(cid).exec(process, False, False), timeout_s)

    # ------------------------------------------------------------------ restore

    def restore(self) -> None:
        """Daemon start (live restore): reconnect to the monitors of running containers;
        a container whose monitor is gone gets the status it recorded, or 255. Then the
        restart policies: stopped containers that want it are started again."""
        stopped: list[tuple[dict[str, Any], bool]] = []
        lost: list[str] = []
        for r in self.db.query("SELECT id, state FROM containers"):
            doc = json.loads(r["state"])
            cid = r["id"]
            if not doc["State"]["Running"]:
                self._end_stray_monitor(cid)
                stopped.append((doc, bool(doc.get(MANUALLY_STOPPED))))
                continue
            try:
                policy = _policy(doc)
            except InvalidArgument:
                policy = RestartPolicy()
            with self._lock:
                self._restarts[cid] = RestartManager(policy, int(doc.get("RestartCount") or 0))
            monitor = Supervisor.reconnect_monitor(cid, os.path.join(self.dir(cid), "state"))
            if monitor is None:
                lost.append(cid)
                continue
            with self._lock:
                self._live[cid] = monitor
                self._start_health(doc)
            self._watch_in_background(cid, monitor)
        for cid in lost:
            self._exited(cid, ExitStatus(255, False, time.time(), "monitor lost"))
        todo = containers_to_start(stopped)
        if todo:
            threading.Thread(target=self._start_all, args=(todo,), daemon=True,
                             name="restart-policies").start()

    def _end_stray_monitor(self, cid: str) -> None:
        """A monitor this daemon does not track (it died between creating a container's
        process and starting it): kill that never-started process, let the monitor end."""
        m = Supervisor.reconnect_monitor(cid, os.path.join(self.dir(cid), "state"))
        if m is not None and m.status().get("state") != "exited":
            _end_monitor(m)

    def _start_all(self, ids: list[str]) -> None:
        for cid in ids:
            try:
                self.start(cid)
            except (HoistError, OSError) as e:
                print(f"hoistd: restart policy: starting {cid[:12]} failed: {e}", flush=True)

    # ------------------------------------------------------------------ signals

    def _monitor(self, cid: str) -> Monitor:
        with self._lock:
            m = self._live.get(cid)
        if m is None:
            raise Conflict(f"Container {cid} is not running")
        return m

    def kill(self, ref: str, sig: str | int | None = None, _event: bool = True) -> None:
        cid = self.resolve(ref)
        n = _signal_num(sig)
        doc = self._load(cid)
        if not doc["State"]["Running"]:
            raise Conflict(f"Cannot kill container: {ref}: Container {cid} is not running")
        if _event:
            self.publish_event(doc, "kill", signal=str(n))
        stop_sig = _signal_num(doc["Config"].get("StopSignal"), _signal.SIGTERM)
        # As dockerd: any kill counts as a manual stop; the stop signal or KILL also
        # ends the restart policy (a restarting container just stays stopped).
        if n in (stop_sig, _signal.SIGKILL):
            self._cancel_restarts(cid, manual=True)
        else:
            self._mark_manual(cid)
        try:
            self._monitor(cid).kill(n)
        except Conflict:
            pass  # it exited meanwhile
        if n == _signal.SIGKILL:
            self._wait_exit(cid, 10)  # as dockerd: a KILL returns once the container is gone

    def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        cid = self.resolve(ref)
        doc = self._load(cid)
        if not doc["State"]["Running"]:
            raise _NotModified()
        self._cancel_restarts(cid, manual=True)
        if doc["State"]["Restarting"] and not self.is_running(cid):
            # In the restart backoff: canceling was all there was to do.
            self.publish_event(doc, "stop")
            return
        if doc["State"]["Paused"]:
            self._set_paused(cid, False)
        cfg = doc["Config"]
        n = _signal_num(sig or cfg.get("StopSignal"), _signal.SIGTERM)
        if timeout is None:
            timeout = cfg.get("StopTimeout") if cfg.get("StopTimeout") is not None else 10
        self.kill(cid, n)
        if timeout < 0 or not self._wait_exit(cid, timeout):
            if timeout >= 0:
                try:
                    self.kill(cid, _signal.SIGKILL)
                except Conflict:
                    pass
            self._wait_exit(cid, None)
        self.publish_event(doc, "stop")

    def _wait_exit(self, cid: str, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while cid in self._live:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def restart(self, ref: str, timeout: int | None = None) -> None:
        cid = self.resolve(ref)
        try:
            self.stop(cid, timeout)
        except _NotModified:
            pass
        self.start(cid)
        doc = self._load(cid)
        self.publish_event(doc, "restart")

    def _set_paused(self, cid: str, pause: bool) -> None:
        m = self._monitor(cid)
        if pause:
            m.pause()
        else:
            m.resume()

    def pause(self, ref: str, pause: bool = True) -> None:
        cid = self.resolve(ref)
        with self._lock:
            doc = self._load(cid)
            if not doc["State"]["Running"]:
                raise Conflict(f"Container {cid} is not running")
            if doc["State"]["Paused"] == pause:
                raise Conflict(f"Container {cid} is {'already paused' if pause else 'not paused'}")
            self._set_paused(cid, pause)
            doc["State"]["Paused"] = pause
            doc["State"]["Status"] = "paused" if pause else "running"
            if pause:
                self._stop_health(cid, doc)
            self._save(doc)
            if not pause:
                self._start_health(doc, resume=True)
        self.publish_event(doc, "pause" if pause else "unpause")

    def resize(self, ref: str, height: int, width: int) -> None:
        cid = self.resolve(ref)
        try:
            self._monitor(cid).resize(height, width)
        except Conflict as e:
            if "no terminal" not in e.message:
                raise
            # dockerd answers 200 for a container without a TTY too
    # ------------------------------------------------------------------ wait/remove

    def wait(self, ref: str, condition: str = "not-running") -> dict[str, Any]:
        cid = self.resolve(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition}")
        with self._lock:
            doc = self._load(cid)
            if condition in ("", "not-running") and not doc["State"]["Running"]:
                return {"StatusCode": doc["State"]["ExitCode"], "Error": None}
            exits = self._exits.get(cid, 0)
            last = doc["State"]["ExitCode"]
            while True:
                self._changed.wait()
                try:
                    doc = self._load(cid)
                except NotFound:
                    # removed: the exit recorded before removal (the wake-ups may coalesce)
                    return {"StatusCode": self._last_exit.get(cid, last), "Error": None}
                last = doc["State"]["ExitCode"]
                if condition == "removed":
                    continue
                if condition == "next-exit":
                    if self._exits.get(cid, 0) > exits:
                        return {"StatusCode": last, "Error": None}
                    continue
                # An exit counts even when a restart policy already shows the container
                # as running + restarting again: dockerd wakes stop waiters on that exit.
                if not doc["State"]["Running"] or self._exits.get(cid, 0) > exits:
                    return {"StatusCode": last, "Error": None}

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        cid = self.resolve(ref)
        doc = self._load(cid)
        if doc["State"]["Running"]:
            if not force:
                if doc["State"]["Paused"]:
                    raise Conflict(f"You cannot remove a paused container {cid}. Unpause and then stop "
                                   f"the container before attempting removal or force remove")
                raise Conflict(f"You cannot remove a running container {cid}. Stop the container "
                               f"before attempting removal or force remove")
            if doc["State"]["Paused"]:
                try:
                    self._set_paused(cid, False)
                except Conflict:
                    pass
            try:
                self.kill(cid, _signal.SIGKILL)
            except Conflict:
                pass
            self._wait_exit(cid, None)
        elif cid not in self._starting and cid not in self._last_exit:
            # Only a monitor this daemon never saw end can be a stray (restore ends
            # those too; this is for one that did not answer then).
            self._end_stray_monitor(cid)
        with self._lock:
            if not self.db.one("SELECT 1 FROM containers WHERE id=?", (cid,)):
                return
            with self.db.transaction() as c:
                c.execute("DELETE FROM containers WHERE id=?", (cid,))
            for _, cb in self._pending.pop(cid, []):
                cb(None)
            mgr = self._restarts.pop(cid, None)
            if mgr is not None:
                mgr.cancel()
            checker = self._health.pop(cid, None)
            if checker is not None:
                checker.stop()
            self._changed.notify_all()
        # The container is gone for every caller now (a `wait --condition removed`
        # returns); what is left is its files, none of which anyone can reach by id.
        self._umount_rootfs(cid)
        doomed = self.dir(cid) + ".rm"
        try:
            os.rename(self.dir(cid), doomed)
        except OSError:
            doomed = self.dir(cid)
        shutil.rmtree(doomed, ignore_errors=True)
        self.publish_event(doc, "destroy")

    def rename(self, ref: str, new: str) -> None:
        cid = self.resolve(ref)
        new = validate_name(new)
        with self._lock:
            doc = self._load(cid)
            other = self.db.one("SELECT id FROM containers WHERE name=?", (new,))
            if other:
                raise Conflict(f'Conflict. The container name "/{new}" is already in use by container '
                               f'"{other["id"]}". You have to remove (or rename) that container to be '
                               f'able to reuse that name.')
            old = doc["Name"]
            doc["Name"] = "/" + new
            self._save(doc)
        self.publish_event(doc, "rename", oldName=old)

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        wanted = prune_filter(filters or {}, lambda doc: parse_iso(doc["Created"]))
        deleted = []
        reclaimed = 0
        for r in self.db.query("SELECT id, state FROM containers"):
            doc = json.loads(r["state"])
            if not doc["State"]["Running"] and wanted(doc):
                # dockerd counts each removed container's writable layer (its SizeRw)
                size = du(os.path.join(self.dir(r["id"]), "fs", "upper"))
                try:
                    self.remove(r["id"])
                    deleted.append(r["id"])
                    reclaimed += size
                except (NotFound, Conflict):
                    pass
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------------ attach

    def attach(self, ref: str, want: AttachRequest, on_socket: OnSocket) -> None:
        """Connect ``on_socket`` to the container's stdio: now if running, else at its
        next start (docker run attaches before it starts). The socket speaks the
        monitor's attach protocol: Docker's framing out, raw stdin in, SHUT_WR = EOF."""
        cid = self.resolve(ref)
        with self._lock:
            doc = self._load(cid)
            m = self._live.get(cid)
            if m is None:
                self._pending.setdefault(cid, []).append((want, on_socket))
                return
        try:
            s = m.attach(want.stdin, want.stdout, want.stderr, want.logs,
                         stdin_once=_closes_stdin(doc["Config"]))
        except Conflict:
            s = None  # it exited meanwhile
        on_socket(s)

    def exec_spec(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        """The OCI process for an exec (API exec body: Cmd, Env, WorkingDir, User,
        Privileged, Tty): the container's own process with the exec's overrides."""
        from ...runtime.user import resolve_user
        d = self.dir(cid)
        with open(os.path.join(d, "bundle", "config.json")) as f:
            proc = json.load(f)["process"]
        proc["args"] = list(body["Cmd"])
        proc["terminal"] = bool(body.get("Tty"))
        proc.pop("consoleSize", None)
        env = {e.split("=", 1)[0]: e for e in proc.get("env", [])}
        for e in body.get("Env") or []:
            env[e.split("=", 1)[0]] = e
        proc["env"] = list(env.values())
        if body.get("WorkingDir"):
            proc["cwd"] = body["WorkingDir"]
        if body.get("User"):
            u = resolve_user(os.path.join(d, "bundle", "rootfs"), body["User"])
            proc["user"] = {"uid": u.uid, "gid": u.gid,
                            **({"additionalGids": list(u.additional_gids)} if u.additional_gids else {})}
        if body.get("Privileged"):
            from ...runtime.capabilities import tweak_caps
            caps = list(tweak_caps([], [], True))
            proc["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        return proc

    def exec_process(self, ref: str, process: dict[str, Any], tty: bool, stdin: bool) -> Any:
        """An exec instance in the running container (hoist.runtime.supervisor.ExecProcess)."""
        _prime_cgroup_migrations()
        return self._monitor(self.resolve(ref)).exec(process, tty, stdin)

    # ------------------------------------------------------------------ views

    def inspect(self, ref: str) -> dict[str, Any]:
        return inspect_doc(self.get(ref))

    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None,
             limit: int = -1, size: bool = False) -> list[dict[str, Any]]:
        filters = filters or {}
        out = []
        for r in self.db.query("SELECT state FROM containers ORDER BY created DESC"):
            doc = json.loads(r["state"])
            if not all and not doc["State"]["Running"] and limit <= 0 and not filters.get("status"):
                continue
            if not filter_ok(doc, filters):
                continue
            out.append(ps_row(doc, os.path.join(self.dir(doc["Id"]), "fs", "upper") if size else None))
            if limit > 0 and len(out) >= limit:
                break
        return out

    def logs(self, ref: str) -> tuple[dict[str, Any], str]:
        doc = self.get(ref)
        return doc, doc["LogPath"]

    def is_running(self, cid: str) -> bool:
        with self._lock:
            return cid in self._live


class _NotModified(HoistError):
    status = 304


def _end_monitor(monitor: Monitor) -> None:
    try:
        monitor.kill(_signal.SIGKILL)
    except HoistError:
        pass
    monitor.wait(5)


def _prime_cgroup_migrations() -> None:
    """See cgroups.prime_migrations: its wait overlaps the start instead of adding to it."""
    from ...runtime.cgroups import prime_migrations
    threading.Thread(target=prime_migrations, daemon=True, name="cgroup-prime").start()


def _policy(doc: dict[str, Any]) -> RestartPolicy:
    return RestartPolicy.from_api(doc["HostConfig"].get("RestartPolicy"))


def _closes_stdin(cfg: dict[str, Any]) -> bool:
    """Does an attached client's EOF close the container's stdin? dockerd: StdinOnce,
    and never with a TTY (there the user types ^D; a detach must not end the shell)."""
    return bool(cfg.get("StdinOnce")) and not cfg.get("Tty")


# The log drivers dockerd has built in (Linux): a name outside these is an error at
# create, as dockerd's. json-file is hoist's only writer; "" means the daemon default.
_LOG_DRIVERS = frozenset({"json-file", "local", "none", "syslog", "journald", "gelf", "fluentd",
                          "awslogs", "splunk", "gcplogs", "logentries"})


def _log_config(lc: Any) -> dict[str, Any]:
    lc = lc if isinstance(lc, dict) else {}
    kind = lc.get("Type") or "json-file"
    if kind not in _LOG_DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{kind}' is registered")
    return {"Type": kind, "Config": dict(lc.get("Config") or {})}


def _size_opt(v: Any, default: int) -> int:
    """json-file max-size: "10m", "1g", "512k" or bytes."""
    if not v:
        return default
    t = str(v).strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    try:
        n = int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise InvalidArgument(f"invalid max-size for json-file log driver: {v}") from None
    if n <= 0:
        raise InvalidArgument(f"invalid max-size for json-file log driver: {v}")
    return n
