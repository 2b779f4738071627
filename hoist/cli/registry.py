"""``hoist registry serve|gc``: the standalone OCI registry. Never talks to the daemon."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from .command import Command, Context, Flag


def run_serve(ctx: "Context", opts: "dict[str, Any]", args: "list[str]") -> int:
    import signal
    import sys
    import threading

    from ..registry import config as C
    from ..registry.api import build_registry
    from ..registry.server import AccessLog, Server, tls_context

    cfg = C.build(opts["config"], addr=opts["addr"], root=opts["root"], htpasswd=opts["htpasswd"],
                  auth=opts["auth"], read_only=opts["read_only"], tls_cert=opts["tls_cert"],
                  tls_key=opts["tls_key"], access_log=opts["access_log"],
                  max_blob_size=opts["max_blob_size"])
    from ..errors import InvalidArgument, Unavailable

    registry = build_registry(cfg)
    try:
        log = AccessLog(cfg.access_log) if cfg.access_log else None
    except OSError as e:
        raise InvalidArgument(f"cannot open access log {cfg.access_log}: {e}") from None
    try:
        tls = tls_context(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise InvalidArgument(f"cannot load TLS certificate/key: {e}") from None
    host, port = cfg.host_port
    try:
        server = Server(host, port, registry, tls, log)
    except OSError as e:
        raise Unavailable(f"cannot listen on {cfg.addr}: {e.strerror or e}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    bound = server.address
    sys.stderr.write(f"hoist registry listening on {'https' if tls else 'http'}://{bound[0]}:{bound[1]} "
                     f"(root {cfg.root}, auth {cfg.auth}{', read-only' if cfg.read_only else ''})\n")
    sys.stderr.flush()
    while not stop.wait(600):
        registry.uploads.expire(cfg.upload_ttl)
    server.close()
    if log is not None:
        log.close()
    return 0


def run_gc(ctx: "Context", opts: "dict[str, Any]", args: "list[str]") -> int:
    from ..registry import config as C
    from ..registry.gc import collect
    from ..registry.storage import RegistryStorage

    cfg = C.build(opts["config"], root=opts["root"])
    grace = float(opts["grace"]) if opts["grace"] else cfg.gc_grace
    res = collect(RegistryStorage(cfg.root), dry_run=opts["dry_run"], grace=grace, upload_ttl=cfg.upload_ttl,
                  delete_untagged=opts["delete_untagged"])
    verb = "would delete" if opts["dry_run"] else "deleted"
    for ref in res.untagged:
        ctx.write(f"{'would untag' if opts['dry_run'] else 'removed untagged manifest'} {ref}\n")
    for d in res.deleted:
        ctx.write(f"{verb} {d}\n")
    ctx.write(f"{res.marked} blobs marked, {len(res.deleted)} blobs {verb} "
              f"({res.freed} bytes), {res.links_removed} links and {res.uploads_removed} stale uploads removed\n")
    return 0


def build() -> "dict[str, Command]":
    serve = Command(
        "serve", "serve [OPTIONS]", "Run an OCI distribution registry (no daemon needed)",
        flags=(Flag("addr", None, "string", help="Address to listen on, HOST:PORT (default 127.0.0.1:5000)"),
               Flag("root", None, "string", help="Storage directory"),
               Flag("config", None, "string", help="Config file (JSON, or TOML when named *.toml)"),
               Flag("htpasswd", None, "string", help="htpasswd file with bcrypt entries"),
               Flag("auth", None, "string", help='Authentication: "none", "basic" or "token"'),
               Flag("read-only", None, help="Refuse every write (405 UNSUPPORTED)"),
               Flag("tls-cert", None, "string", help="TLS certificate (PEM)"),
               Flag("tls-key", None, "string", help="TLS private key (PEM)"),
               Flag("access-log", None, "string", help="Append an access log to this file"),
               Flag("max-blob-size", None, "int", help="Largest blob accepted, in bytes (0: no limit)")),
        args=(0, 0), run=run_serve)
    gc = Command(
        "gc", "gc [OPTIONS]", "Delete blobs no manifest references, and stale uploads",
        flags=(Flag("root", None, "string", help="Storage directory"),
               Flag("config", None, "string", help="Config file (JSON or TOML)"),
               Flag("dry-run", None, help="Only print what would be deleted"),
               Flag("delete-untagged", None, help="Also remove manifests no tag reaches (referrers of "
                                                  "live manifests are kept)"),
               Flag("grace", None, "string", help="Keep blobs younger than this many seconds (default 3600)")),
        args=(0, 0), run=run_gc)
    group = Command("registry", "registry COMMAND", "Run and maintain an OCI registry",
                    subcommands=[serve, gc], category="management")
    return {"registry": group}
