"""Engine API routes: translate HTTP to engine calls and nothing else."""
from __future__ import annotations

import json
import os
import platform
import queue
import time
from typing import Any, Iterator

from .. import DOCKER_COMPAT_VERSION, __version__
from ..config import API_VERSION, MIN_API_VERSION
from ..errors import HoistError, InvalidArgument
from ..engine.daemon_state import Engine
from ..engine.importer import import_image, open_url
from .http import (EmptyResponse, Request, Router, SizedResponse, StreamResponse,
                   TextResponse, client_gone, json_lines)


def build_router(engine: Engine) -> Router:
    r = Router()
    api = _Routes(engine)
    r.add("GET", "/_ping", api.ping)
    r.add("GET", "/version", api.version)
    r.add("GET", "/info", api.info)
    r.add("GET", "/events", api.events)
    r.add("GET", "/system/df", api.system_df)
    r.add("GET", "/images/json", api.images_list)
    r.add("POST", "/images/load", api.images_load)
    r.add("GET", "/images/get", api.images_get_many)
    r.add("POST", "/images/create", api.images_create)
    r.add("POST", "/images/prune", api.images_prune)
    r.add("GET", "/images/{name:.+}/json", api.image_inspect)
    r.add("GET", "/images/{name:.+}/history", api.image_history)
    r.add("GET", "/images/{name:.+}/get", api.image_get)
    r.add("POST", "/images/{name:.+}/tag", api.image_tag)
    r.add("POST", "/images/{name:.+}/push", api.image_push)
    r.add("POST", "/auth", api.auth)
    r.add("DELETE", "/images/{name:.+}", api.image_delete)
    r.add("POST", "/hoist/images/bootstrap", api.hoist_bootstrap)
    r.add("POST", "/hoist/system/check", api.hoist_check)
    from .routes_containers import register as register_containers
    register_containers(r, engine)
    from .routes_fsops import register as register_fsops
    register_fsops(r, engine)
    from .routes_stats import register as register_stats
    register_stats(r, engine)
    from .routes_commit import register as register_commit
    register_commit(r, engine)
    return r


def _registry_auth(req: Request) -> Any:
    from ..distribution.credentials import AuthConfig
    return AuthConfig.from_header(req.headers.get("X-Registry-Auth") or "")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _message_stream(fn: Any, raise_early: bool = False) -> Iterator[bytes]:
    """Run ``fn(emit)`` and stream what it emits as Docker JSON messages; an error
    after the stream started becomes an in-band ``error`` message, as Docker does
    (with ``raise_early``, an error before any message is raised to the caller)."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    import threading

    def emit(obj: dict[str, Any]) -> None:
        q.put(obj)

    def run() -> None:
        try:
            fn(emit)
        except Exception as e:  # reported in-band; the daemon keeps running
            q.put(e)
        q.put(None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started = False
    while True:
        item = q.get()
        if item is None:
            if not started and raise_early:
                yield b""
            break
        if isinstance(item, Exception):
            if not started and raise_early:
                raise item
            msg = item.message if isinstance(item, HoistError) else str(item)
            item = {"errorDetail": {"message": msg}, "error": msg}
        started = True
        yield json.dumps(item).encode() + b"\r\n"


class _Routes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.images = engine.images
        self.store = engine.store

    # ------------------------------------------------------------ system

    def ping(self, req: Request) -> Any:
        return TextResponse("OK", content_type="text/plain; charset=utf-8")

    def version(self, req: Request) -> Any:
        uname = os.uname()
        arch = _go_arch()
        return {
            "Platform": {"Name": f"hoist {__version__}"},
            "Components": [{"Name": "Engine", "Version": DOCKER_COMPAT_VERSION,
                            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                        "Os": "linux", "Arch": arch, "KernelVersion": uname.release,
                                        "Experimental": "false", "GitCommit": "hoist",
                                        "GoVersion": "python" + platform.python_version(),
                                        "BuildTime": "", "Implementation": f"hoist {__version__}"}}],
            "Version": DOCKER_COMPAT_VERSION, "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION, "GitCommit": "hoist", "GoVersion": "python" +
            platform.python_version(), "Os": "linux", "Arch": arch, "KernelVersion": uname.release,
            "BuildTime": "",
        }

    def info(self, req: Request) -> Any:
        uname = os.uname()
        images = self.store.images()
        mem = 0
        try:
            with open("/proc/meminfo") as f:
                mem = int(f.readline().split()[1]) * 1024
        except OSError:
            pass
        snap = self.store.snapshots.name
        return {
            "ID": _daemon_id(self.store.paths.data_root), "Containers": 0, "ContainersRunning": 0,
            "ContainersPaused": 0, "ContainersStopped": 0, "Images": len(images),
            "Driver": "overlay2" if snap == "overlayfs" else "vfs",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Snapshotter", snap]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Authorization": None, "Log": ["json-file", "local"]},
            "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "CpuCfsPeriod": True,
            "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
            "IPv4Forwarding": True, "BridgeNfIptables": True, "BridgeNfIp6tables": True,
            "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True,
            "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
            "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
            "NEventsListener": 0, "KernelVersion": uname.release,
            "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
            "Architecture": uname.machine, "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": _registry_config(),
            "NCPU": os.cpu_count() or 1, "MemTotal": mem, "GenericResources": None,
            "DockerRootDir": self.store.paths.data_root, "HttpProxy": "", "HttpsProxy": "",
            "NoProxy": "", "Name": uname.nodename, "Labels": [], "ExperimentalBuild": False,
            "ServerVersion": DOCKER_COMPAT_VERSION, "Runtimes": _runtimes(),
            "DefaultRuntime": "hoist", "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                                                 "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": None,
        }

    def events(self, req: Request) -> Any:
        since = _event_time(req.arg("since"))
        until = _event_time(req.arg("until"))
        filters = req.filters()
        bus = self.store.events
        past, q = bus.subscribe(since if since is not None else (None if until is None else 0))

        def gen() -> Iterator[dict[str, Any]]:
            try:
                for ev in past:
                    if until is not None and ev.time_nano > until:
                        return
                    if _event_matches(ev, filters):
                        yield ev.to_json()
                while True:
                    if until is not None and time.time_ns() > until:
                        return
                    try:
                        ev = q.get(timeout=0.5)
                    except queue.Empty:
                        if client_gone(req.connection):
                            return
                        continue
                    if until is not None and ev.time_nano > until:
                        return
                    if _event_matches(ev, filters):
                        yield ev.to_json()
            finally:
                bus.unsubscribe(q)

        return StreamResponse(json_lines(gen()))

    def system_df(self, req: Request) -> Any:
        return self.images.df(req.api_version)

    def containers_list(self, req: Request) -> Any:
        return []

    # ------------------------------------------------------------ images

    def images_list(self, req: Request) -> Any:
        filters = req.filters()
        if req.arg("filter"):  # pre-1.25 clients send a bare reference here
            filters.setdefault("reference", []).append(req.arg("filter"))
        return self.images.list(all=req.flag("all"), filters=filters, api=req.api_version,
                                with_containers=req.flag("shared-size"))

    def image_inspect(self, req: Request) -> Any:
        return self.images.inspect(req.params["name"], req.api_version)

    def image_history(self, req: Request) -> Any:
        return self.images.history(req.params["name"])

    def image_tag(self, req: Request) -> Any:
        repo = req.arg("repo")
        if not repo:
            raise InvalidArgument("repository name is required")
        self.images.tag(req.params["name"], repo, req.arg("tag") or None)
        return EmptyResponse(201)

    def image_delete(self, req: Request) -> Any:
        return self.images.remove(req.params["name"], force=req.flag("force"),
                                  prune=not req.flag("noprune"))

    def images_prune(self, req: Request) -> Any:
        filters = req.filters()
        all_ = False
        if "dangling" in filters:
            all_ = filters["dangling"][-1].lower() in ("false", "0")
            filters.pop("dangling")
        return self.images.prune(all=all_, filters=filters)

    def image_get(self, req: Request) -> Any:
        return self._save([req.params["name"]])

    def images_get_many(self, req: Request) -> Any:
        return self._save(req.args("names"))

    def _save(self, names: list[str]) -> Any:
        plan = self.engine.archives.plan_save(names)
        store = self.store

        def write(out: Any) -> None:
            plan.write_to(out)
            for n in names:
                store.events.publish("image", "save", self.images.resolve(n), name=n)

        return SizedResponse(plan.size, write)

    def images_load(self, req: Request) -> Any:
        lines = self.engine.archives.load(req.body)
        quiet = req.flag("quiet")
        msgs = [{"stream": ln + "\n"} for ln in lines]
        if not quiet:
            pass  # progress bars would go here; loads are fast enough to report at the end
        data = b"".join(json.dumps(m).encode() + b"\r\n" for m in msgs)
        return StreamResponse([data])

    def images_create(self, req: Request) -> Any:
        if req.arg("fromImage"):
            return self._distribution_stream(lambda emit: self._distribution().pull(
                req.arg("fromImage"), req.arg("tag"), platform=req.arg("platform"),
                auth=_registry_auth(req), emit=emit))
        src = req.arg("fromSrc")
        if not src:
            raise InvalidArgument("fromImage or fromSrc is required")
        opts = dict(repo=req.arg("repo"), tag=req.arg("tag"), changes=req.args("changes"),
                    message=req.arg("message"), platform=req.arg("platform"))
        if src == "-":
            image_id = import_image(self.store, req.body, **opts)
        else:
            with open_url(src) as (url, body):
                image_id = import_image(self.store, body, source=url, **opts)
        return StreamResponse([json.dumps({"status": image_id}).encode() + b"\r\n"])

    # ------------------------------------------------------------ distribution

    def _distribution(self) -> Any:
        from ..engine.distribution import DistributionService
        return DistributionService(self.store, self.images)

    def _distribution_stream(self, fn: Any) -> Any:
        """Errors before the first message become an HTTP error (Docker's 404 for an
        unknown manifest); after it they are reported in-band."""
        stream = _message_stream(fn, raise_early=True)
        first = next(stream)
        return StreamResponse(_prepend(first, stream))

    def image_push(self, req: Request) -> Any:
        name, tag = req.params["name"], req.arg("tag")
        return self._distribution_stream(lambda emit: self._distribution().push(
            name, tag, auth=_registry_auth(req), emit=emit))

    def auth(self, req: Request) -> Any:
        from ..distribution.credentials import AuthConfig
        body = req.json_body() or {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid auth configuration")
        auth = AuthConfig(str(body.get("username") or ""), str(body.get("password") or ""),
                          str(body.get("serveraddress") or ""), str(body.get("identitytoken") or ""),
                          str(body.get("registrytoken") or ""))
        return self._distribution().login(auth)

    # ------------------------------------------------------------ hoist-specific

    def hoist_bootstrap(self, req: Request) -> Any:
        from ..engine.bootstrap import bootstrap_image
        name = req.arg("name")
        if not name:
            raise InvalidArgument("name is required (busybox or debian:bookworm)")

        def run(emit: Any) -> None:
            image_id = bootstrap_image(self.store, name, log=lambda s: emit({"stream": s + "\n"}))
            emit({"aux": {"ID": image_id}})

        return StreamResponse(_message_stream(run))

    def hoist_check(self, req: Request) -> Any:
        from ..engine.check import check_store
        return check_store(self.store, repair=req.flag("repair")).to_json()


def _registry_config() -> dict[str, Any]:
    """Docker's RegistryConfig, with the daemon's --insecure-registry values: CIDRs
    in InsecureRegistryCIDRs, names as insecure IndexConfigs."""
    from ..distribution.registry import insecure_registries
    cidrs = ["127.0.0.0/8"] + [r for r in insecure_registries() if "/" in r]
    index = {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True}}
    for r in insecure_registries():
        if "/" not in r:
            index[r] = {"Name": r, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": None}


def _go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _daemon_id(root: str) -> str:
    path = os.path.join(root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        import uuid
        ident = str(uuid.uuid4())
        with open(path, "w") as f:
            f.write(ident)
        return ident


def _event_time(text: str) -> int | None:
    """Unix seconds (with fraction), RFC 3339, or a Go duration meaning 'ago'."""
    if not text:
        return None
    from ..engine.images import _until
    try:
        return int(float(text) * 1e9)
    except ValueError:
        return int(_until(text) * 1e9)


def _event_matches(ev: Any, filters: dict[str, list[str]]) -> bool:
    attrs = dict(ev.attributes)
    for key, values in filters.items():
        if key == "type" and ev.type not in values:
            return False
        if key in ("event", "action") and ev.action not in values and \
                not any(v.split(":")[0] == ev.action for v in values):
            return False
        if key == "image" and ev.type == "image" and not any(
                v == ev.actor_id or v == attrs.get("name") or ev.actor_id.startswith("sha256:" + v)
                for v in values):
            return False
        if key == "label" and not all(
                (attrs.get(v.split("=", 1)[0]) == v.split("=", 1)[1]) if "=" in v else v in attrs
                for v in values):
            return False
    return True


def _runtimes() -> dict[str, Any]:
    """hoist's own runtime, and runc/crun when installed (``--runtime runc``)."""
    import shutil
    out: dict[str, Any] = {"hoist": {"path": "hoist"}}
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            out[name] = {"path": path}
    return out
