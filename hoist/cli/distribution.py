"""``hoist pull``, ``push``, ``login``, ``logout``: Engine API calls with credentials from
``~/.docker/config.json`` sent as X-Registry-Auth, progress rendered as docker does
(bars updated in place on a terminal, plain lines otherwise)."""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any

from ..client import quote_name
from .command import Command, CommandFailed, Context, Flag

INDEX_SERVER = "https://index.docker.io/v1/"


def _domain_of(name: str) -> str:
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _auth_header(domain: str) -> str:
    from ..distribution.credentials import CredentialStore
    auth = CredentialStore().get(INDEX_SERVER if domain == "docker.io" else domain)
    return auth.to_header()


class TerminalProgress:
    """jsonmessage's terminal mode: one line per id, rewritten in place."""

    def __init__(self, write: Any) -> None:
        self.write = write
        self.lines: dict[str, int] = {}

    def show(self, m: dict) -> None:
        ident = m.get("id") or ""
        status = m.get("status") or ""
        progress = m.get("progress") or ""
        text = f"{ident}: {status} {progress}".rstrip() if ident else status
        if not ident:
            self.write(text + "\n")
            self.lines = {}  # docker starts a new block after an id-less message
            return
        if ident not in self.lines:
            self.lines[ident] = len(self.lines)
            self.write(text + "\n")
            return
        up = len(self.lines) - self.lines[ident]
        self.write(f"\x1b[{up}A\x1b[2K\r{text}\n" + (f"\x1b[{up - 1}B" if up > 1 else ""))


def _stream(ctx: Context, resp: Any, quiet: bool) -> list[dict]:
    from ..client.http import iter_json
    from .output import StreamError, display_messages
    auxes: list[dict] = []
    write = ctx.write

    def flush_write(text: str) -> None:
        write(text)
        try:
            ctx.out.flush()
        except (AttributeError, ValueError):
            pass

    try:
        if quiet:
            for m in iter_json(resp):
                if isinstance(m, dict) and (m.get("error") or m.get("errorDetail")):
                    detail = m.get("errorDetail") or {}
                    raise CommandFailed(detail.get("message") or str(m.get("error")), 1)
                if isinstance(m, dict) and m.get("aux") is not None:
                    auxes.append(m["aux"])
        elif ctx.out_is_terminal():
            term = TerminalProgress(flush_write)
            for m in iter_json(resp):
                if not isinstance(m, dict):
                    continue
                if m.get("error") or m.get("errorDetail"):
                    detail = m.get("errorDetail") or {}
                    raise CommandFailed(detail.get("message") or str(m.get("error")), 1)
                if m.get("aux") is not None:
                    auxes.append(m["aux"])
                    continue
                term.show(m)
        else:
            display_messages(iter_json(resp), flush_write, is_terminal=False, aux=auxes.append)
    except StreamError as e:
        raise CommandFailed(e.message, 1) from None
    finally:
        resp.close()
    return auxes


def _normalise(name: str) -> tuple[str, str, str]:
    """(repository as docker sends it, tag-or-digest, full reference for display)."""
    from ..errors import InvalidArgument
    from ..image import reference as R
    try:
        ref = R.parse(name, default_tag=False)
    except InvalidArgument as e:
        raise CommandFailed(str(e), 1) from None
    if ref.digest:
        return ref.familiar_repository, str(ref.digest), f"{ref.repository}@{ref.digest}"
    return ref.familiar_repository, ref.tag or "", str(ref) if ref.tag else ref.repository


def run_pull(ctx: Context, opts: dict, args: list[str]) -> int:
    repo, tag, full = _normalise(args[0])
    if opts["all_tags"] and tag:
        raise CommandFailed("tag can't be used with --all-tags/-a", 1)
    if not tag and not opts["all_tags"]:
        tag = "latest"
        full += ":latest"
        if not opts["quiet"]:
            ctx.write("Using default tag: latest\n")
    params = {"fromImage": repo, "tag": tag}
    if opts["platform"]:
        params["platform"] = opts["platform"]
    resp = ctx.client().raw("POST", "/images/create", params, b"",
                            {"X-Registry-Auth": _auth_header(_domain_of(repo))})
    _stream(ctx, resp, opts["quiet"])
    ctx.write(full + "\n")
    return 0


def run_push(ctx: Context, opts: dict, args: list[str]) -> int:
    repo, tag, full = _normalise(args[0])
    if "@" in full:
        raise CommandFailed("cannot push a digest reference", 1)
    if opts["all_tags"] and tag:
        raise CommandFailed("tag can't be used with --all-tags/-a", 1)
    if not tag and not opts["all_tags"]:
        tag = "latest"
        if not opts["quiet"]:
            ctx.write("Using default tag: latest\n")
    resp = ctx.client().raw("POST", f"/images/{quote_name(repo)}/push", {"tag": tag}, b"",
                            {"X-Registry-Auth": _auth_header(_domain_of(repo))})
    _stream(ctx, resp, opts["quiet"])
    if opts["quiet"]:
        ctx.write(full + (f":{tag}" if tag and ":" + tag not in full else "") + "\n")
    return 0


def _server_arg(args: list[str]) -> str:
    if not args:
        return INDEX_SERVER
    s = args[0]
    if s in ("docker.io", "index.docker.io", "registry-1.docker.io") or "index.docker.io" in s:
        return INDEX_SERVER
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.rstrip("/")


def run_login(ctx: Context, opts: dict, args: list[str]) -> int:
    from ..distribution.credentials import AuthConfig, CredentialStore
    server = _server_arg(args)
    user, password = opts["username"], opts["password"]
    if password and opts["password_stdin"]:
        raise CommandFailed("--password and --password-stdin are mutually exclusive", 1)
    if opts["password_stdin"]:
        if not user:
            raise CommandFailed("Must provide --username with --password-stdin", 1)
        password = ctx.inp.read().rstrip("\r\n")
    elif password:
        ctx.error("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    store = CredentialStore()
    if not user and not password:
        saved = store.get(server)
        if not saved.empty:
            user, password = saved.username, saved.password
    if not user:
        if not ctx.in_is_terminal():
            raise CommandFailed("Error: Cannot perform an interactive login from a non TTY device", 1)
        ctx.write("Username: ")
        ctx.out.flush()
        user = ctx.inp.readline().strip()
    if not password:
        if not ctx.in_is_terminal():
            raise CommandFailed("Error: Cannot perform an interactive login from a non TTY device", 1)
        import getpass
        password = getpass.getpass("Password: ")
    if not user:
        raise CommandFailed("Error: Non-null Username Required", 1)
    if not password:
        raise CommandFailed("Error: Password Required", 1)
    auth = AuthConfig(user, password, server)
    resp = ctx.client().post_json("/auth", body={"username": user, "password": password,
                                                 "serveraddress": server})
    token = (resp or {}).get("IdentityToken") or ""
    store.store(AuthConfig(user, "" if token else password, server, token) if token else auth)
    ctx.write(str((resp or {}).get("Status") or "Login Succeeded") + "\n")
    return 0


def run_logout(ctx: Context, opts: dict, args: list[str]) -> int:
    from ..distribution.credentials import CredentialStore
    server = _server_arg(args)
    if CredentialStore().erase(server):
        ctx.write(f"Removing login credentials for {server}\n")
    else:
        ctx.write(f"Not logged in to {server}\n")
    return 0


def build() -> dict[str, Command]:
    pull = Command("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
                   flags=(Flag("all-tags", "a", help="Download all tagged images in the repository"),
                          Flag("disable-content-trust", None, "bool", True,
                               help="Skip image verification"),
                          Flag("platform", None, "string", help="Set platform if server is multi-platform capable",
                               default=os.environ.get("DOCKER_DEFAULT_PLATFORM", "")),
                          Flag("quiet", "q", help="Suppress verbose output")),
                   args=(1, 1), run=run_pull, aliases="hoist image pull, hoist pull")
    push = Command("push", "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry",
                   flags=(Flag("all-tags", "a", help="Push all tags of an image to the repository"),
                          Flag("disable-content-trust", None, "bool", True,
                               help="Skip image signing"),
                          Flag("quiet", "q", help="Suppress verbose output")),
                   args=(1, 1), run=run_push, aliases="hoist image push, hoist push")
    login = Command("login", "login [OPTIONS] [SERVER]",
                    "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
                    flags=(Flag("password", "p", "string", help="Password"),
                           Flag("password-stdin", None, help="Take the password from stdin"),
                           Flag("username", "u", "string", help="Username")),
                    args=(0, 1), run=run_login)
    logout = Command("logout", "logout [SERVER]",
                     "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
                     args=(0, 1), run=run_logout)
    return {"pull": pull, "push": push, "login": login, "logout": logout}


