"""Image commands: images/ls, inspect, tag, rmi, history, import, save, load, prune and
hoist's own ``image bootstrap``. Each talks to the Engine API and formats like docker."""
from __future__ import annotations

import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any

from ..client import quote_name
from ..errors import HoistError, NotFound
from .command import (FORMAT_HELP, INSPECT_FORMAT_HELP, Command, CommandFailed, Context, Flag,
                      filters_json)
from .output import (display_messages, go_reformat_json, go_time_string, human_size,
                     human_size_precision, rfc3339, since, table, truncate_id)

# ---------------------------------------------------------------------- references


def split_domain(name: str) -> tuple[str, str]:
    """``(domain, path)`` of a repository name, with docker.io as the default domain."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    return domain, path


def familiar_name(name: str) -> str:
    """docker's reference.FamiliarName: ``docker.io/library/busybox`` → ``busybox``."""
    domain, path = split_domain(name)
    if domain == "docker.io":
        if path.startswith("library/") and path.count("/") == 1:
            return path[len("library/"):]
        return path
    return f"{domain}/{path}"


def split_tag(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` → ``(repo, tag)``: the tag follows the last ``:`` after the last ``/``."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, None


def _valid_ref(ref: str) -> bool:
    return bool(ref) and "<" not in ref and " " not in ref


# ---------------------------------------------------------------------- image rows


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def is_dangling(img: dict[str, Any]) -> bool:
    tags = img.get("RepoTags") or []
    digests = img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def image_row(img: dict[str, Any], repo: str, tag: str, digest: str, *, trunc: bool = True,
              now: float | None = None) -> dict[str, str]:
    image_id = str(img.get("Id") or img.get("ID") or "")
    created = _int(img.get("Created"))
    size = _int(img.get("Size"))
    shared = _int(img.get("SharedSize"))
    containers = _int(img.get("Containers"))
    return {
        "ID": truncate_id(image_id) if trunc else image_id,
        "Repository": repo,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": since(created, now),
        "CreatedAt": go_time_string(created),
        "Size": human_size_precision(size, 3),
        "Containers": "N/A" if containers == -1 else str(containers),
        "SharedSize": "N/A" if shared == -1 else human_size(shared),
        "UniqueSize": "N/A" if size == -1 or shared == -1 else human_size(size - shared),
        "VirtualSize": human_size(size),
    }


def image_rows(images: list[dict[str, Any]], *, trunc: bool = True, show_digests: bool = False,
               need_digest: bool = False, now: float | None = None) -> list[dict[str, str]]:
    """One row per (repository, tag[, digest]) the way ``docker images`` lays them out."""
    now = time.time() if now is None else now
    rows: list[dict[str, str]] = []
    for img in images:
        if is_dangling(img):
            rows.append(image_row(img, "<none>", "<none>", "<none>", trunc=trunc, now=now))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            if not _valid_ref(ref) or "@" in ref:
                continue
            repo, tag = split_tag(ref)
            if tag is None:
                continue
            repo_tags.setdefault(familiar_name(repo), []).append(tag)
        for ref in img.get("RepoDigests") or []:
            if not _valid_ref(ref) or "@" not in ref:
                continue
            repo, _, dgst = ref.partition("@")
            repo, _tag = split_tag(repo)
            repo_digests.setdefault(familiar_name(repo), []).append(dgst)
        for repo, tags in repo_tags.items():
            digests = repo_digests.pop(repo, [])
            if not need_digest:
                digests = []
            for tag in tags:
                if not digests:
                    rows.append(image_row(img, repo, tag, "<none>", trunc=trunc, now=now))
                for d in digests:
                    rows.append(image_row(img, repo, tag, d, trunc=trunc, now=now))
        for repo, digests in repo_digests.items():
            if show_digests:
                for d in digests:
                    rows.append(image_row(img, repo, "<none>", d, trunc=trunc, now=now))
            else:
                rows.append(image_row(img, repo, "<none>", "", trunc=trunc, now=now))
    return rows


IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}
DEFAULT_IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                       "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
DEFAULT_IMAGE_TABLE_DIGEST = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                              "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")


def _gotemplate() -> Any:
    try:
        from . import gotemplate
    except ImportError:  # pragma: no cover - the module ships with hoist
        raise CommandFailed("--format is not available: hoist.cli.gotemplate is missing") from None
    return gotemplate


def _template_error(e: Exception, code: int) -> CommandFailed:
    msg = getattr(e, "message", None) or str(e)
    if not msg.startswith("template parsing error"):
        msg = "template parsing error: " + msg
    return CommandFailed(msg, code)


def go_json(obj: Any) -> str:
    """Go's ``json.Marshal`` of a map: sorted keys, compact, HTML characters escaped (what
    docker prints for ``{{json .}}`` of its formatter rows)."""
    import json

    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _is_json_format(fmt: str) -> bool:
    body = fmt.strip(" ")
    return body == "json" or body.replace(" ", "") == "{{json.}}"


class _Row:
    """A formatter row as an object: a template naming a field the row does not have
    fails (``can't evaluate field Foo in type ...``) as it does with docker's structs."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


_ROW_TYPES: dict[str, type] = {}


def _row_objects(rows: list[dict[str, Any]], type_name: str) -> list[Any]:
    cls = _ROW_TYPES.get(type_name)
    if cls is None:
        cls = _ROW_TYPES[type_name] = type(type_name, (_Row,), {})
    return [cls(r) for r in rows]


def format_rows(fmt: str, rows: list[dict[str, Any]], *, default_table: str,
                headers: dict[str, str], type_name: str = "*formatter.Context") -> str:
    """Render rows with a user ``--format`` (Go template, ``table ...`` or ``json``)."""
    if _is_json_format(fmt):
        return "".join(go_json(r) + "\n" for r in rows)
    gt = _gotemplate()
    try:
        text = gt.format_rows(fmt, _row_objects(rows, type_name), default_table=default_table,
                              headers=headers)
    except (HoistError, ValueError, KeyError, TypeError) as e:
        raise _template_error(e, 1) from None
    if text and not text.endswith("\n"):
        text += "\n"
    return text


class CompiledTemplate:
    """A parsed ``--format`` template; render errors become docker's exit status 1."""

    def __init__(self, tmpl: Any) -> None:
        self._tmpl = tmpl

    def render(self, data: Any) -> str:
        try:
            return self._tmpl.render(data)
        except (HoistError, ValueError, KeyError, TypeError) as e:
            raise _template_error(e, 1) from None


def compile_template(fmt: str) -> CompiledTemplate:
    """Parse a ``--format``/``-f`` template; a syntax error exits 64 as in docker."""
    gt = _gotemplate()
    try:
        return CompiledTemplate(gt.compile_template(fmt))
    except (HoistError, ValueError, KeyError, TypeError) as e:
        raise _template_error(e, 64) from None


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


_IMAGE_SUBCOMMANDS = {"build", "history", "import", "inspect", "list", "load", "ls", "prune",
                      "pull", "push", "rm", "save", "tag"}


def run_images(ctx: Context, opts: dict[str, Any], args: list[str], *, called_as: str = "") -> int:
    filters = filters_json(opts["filter"])
    if args:
        filters.setdefault("reference", []).append(args[0])
    params: dict[str, Any] = {}
    if opts["all"]:
        params["all"] = "1"
    if filters:
        params["filters"] = filters
    images = ctx.client().get_json("/images/json", params) or []
    fmt = opts["format"] or "table"
    trunc = not opts["no_trunc"]
    if opts["quiet"] and fmt == "table":
        ids = _unique([str(i.get("Id") or "") for i in images])
        ctx.write("".join((truncate_id(i) if trunc else i) + "\n" for i in ids))
        return 0
    show_digests = opts["digests"]
    need_digest = show_digests or "{{.Digest}}" in fmt
    rows = image_rows(images, trunc=trunc, show_digests=show_digests, need_digest=need_digest)
    if fmt == "table":
        cols = ["Repository", "Tag"] + (["Digest"] if show_digests else []) + \
               ["ID", "CreatedSince", "Size"]
        ctx.write(table([IMAGE_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows)))
    else:
        if fmt.startswith("table") and show_digests and "{{.Digest}}" not in fmt:
            fmt += "\t{{.Digest}}"
        default = DEFAULT_IMAGE_TABLE_DIGEST if show_digests else DEFAULT_IMAGE_TABLE
        ctx.write(format_rows(fmt, rows, default_table=default, headers=IMAGE_HEADERS,
                              type_name="*formatter.imageContext"))
    if args and not images and called_as == "images" and args[0] in _IMAGE_SUBCOMMANDS:
        ctx.error(f'\nNo images found matching "{args[0]}": did you mean '
                  f'"{ctx_root(ctx)} image {args[0]}"?')
    return 0


def ctx_root(ctx: Context) -> str:
    return "hoist"


# ---------------------------------------------------------------------- inspect

_INSPECT_PATHS = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}


def _inspect_output(ctx: Context, fmt: str, raws: list[bytes]) -> None:
    if not fmt:
        if not raws:
            ctx.write("[]\n")
        else:
            ctx.write(go_reformat_json(b"[" + b",".join(raws) + b"]") + "\n")
        return
    if fmt == "json":
        if not raws:
            ctx.write("[]\n")
        else:
            ctx.write(go_reformat_json(b"[" + b",".join(raws) + b"]", indent=None) + "\n")
        return
    import json

    tmpl = compile_template(fmt)
    out = [tmpl.render(json.loads(raw)) + "\n" for raw in raws]
    ctx.write("".join(out) or "\n")


def run_inspect_images(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    raws: list[bytes] = []
    errors: list[str] = []
    for ref in args:
        try:
            raws.append(client.request("GET", f"/images/{quote_name(ref)}/json"))
        except NotFound as e:
            errors.append(e.message)  # docker 28: the daemon's own words
    _inspect_output(ctx, opts["format"], raws)
    if errors:
        raise CommandFailed("\n".join(errors), 1)
    return 0


def run_inspect(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    kind = opts["type"]
    if kind and kind not in _INSPECT_PATHS:
        raise CommandFailed(f'"{kind}" is not a valid value for --type')
    client = ctx.client()
    kinds = [kind] if kind else list(_INSPECT_PATHS)
    raws: list[bytes] = []
    errors: list[str] = []
    for ref in args:
        found = False
        last: HoistError | None = None
        for k in kinds:
            params = {"size": "1"} if k == "container" and opts["size"] else None
            try:
                raws.append(client.request("GET", _INSPECT_PATHS[k].format(quote_name(ref)), params))
                found = True
                break
            except NotFound as e:
                if kind:  # docker 28 prints the daemon's words for a typed inspect
                    last = e
                    break
                continue
            except HoistError as e:
                if getattr(e, "status", 0) in (400, 501) and not kind:
                    continue  # that object kind is not supported by this daemon
                last = e
                break
        if not found:
            if last is not None:
                errors.append(last.message)
            elif kind:
                errors.append(f"Error: No such {kind}: {ref}")
            else:
                errors.append(f"Error: No such object: {ref}")
    _inspect_output(ctx, opts["format"], raws)
    if errors:
        raise CommandFailed("\n".join(errors), 1)
    return 0


# ---------------------------------------------------------------------- tag / rmi


def run_tag(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    source, target = args
    if "@" in target:
        raise CommandFailed("refusing to create a tag with a digest reference")
    repo, tag = split_tag(target)
    ctx.client().post_json(f"/images/{quote_name(source)}/tag",
                           {"repo": repo, "tag": tag or "latest"})
    return 0


def run_rmi(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    client = ctx.client()
    params: dict[str, Any] = {}
    if opts["force"]:
        params["force"] = "1"
    if opts["no_prune"]:
        params["noprune"] = "1"
    errors: list[str] = []
    fatal = False
    for ref in args:
        try:
            deleted = client.delete_json(f"/images/{quote_name(ref)}", params) or []
        except HoistError as e:
            if not isinstance(e, NotFound):
                fatal = True
            errors.append(e.message)
            continue
        lines = []
        for d in deleted:
            if d.get("Deleted"):
                lines.append(f"Deleted: {d['Deleted']}\n")
            else:
                lines.append(f"Untagged: {d.get('Untagged', '')}\n")
        ctx.write("".join(lines))
    if errors:
        msg = "\n".join(errors)
        if not opts["force"] or fatal:
            raise CommandFailed(msg, 1)
        ctx.error(msg)
    return 0


# ---------------------------------------------------------------------- history

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
DEFAULT_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_EPOCH_2000 = 946684800


def history_row(item: dict[str, Any], *, human: bool = True, trunc: bool = True,
                now: float | None = None) -> dict[str, str]:
    from .output import ellipsis

    hid = str(item.get("Id") or item.get("ID") or "")
    created = _int(item.get("Created"))
    created_at = rfc3339(created)
    if not human:
        created_since = created_at
    elif created <= _EPOCH_2000:
        created_since = "N/A"
    else:
        created_since = since(created, now)
    created_by = str(item.get("CreatedBy") or "").replace("\t", " ")
    size = _int(item.get("Size"))
    return {
        "ID": truncate_id(hid) if trunc else hid,
        "CreatedSince": created_since,
        "CreatedAt": created_at,
        "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
        "Size": human_size_precision(size, 3) if human else str(size),
        "Comment": str(item.get("Comment") or ""),
    }


def run_history(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    items = ctx.client().get_json(f"/images/{quote_name(args[0])}/history") or []
    fmt = opts["format"] or "table"
    human = opts["human"]
    trunc = not opts["no_trunc"]
    now = time.time()
    rows = [history_row(i, human=human, trunc=trunc, now=now) for i in items]
    if fmt == "table":
        if opts["quiet"]:
            ctx.write("".join(r["ID"] + "\n" for r in rows))
            return 0
        cols = ["ID", "CreatedSince" if human else "CreatedAt", "CreatedBy", "Size", "Comment"]
        ctx.write(table([HISTORY_HEADERS[c] for c in cols], ([r[c] for c in cols] for r in rows)))
        return 0
    default = DEFAULT_HISTORY_TABLE if human else NON_HUMAN_HISTORY_TABLE
    ctx.write(format_rows(fmt, rows, default_table=default, headers=HISTORY_HEADERS,
                          type_name="*image.historyContext"))
    return 0


# ---------------------------------------------------------------------- import / save / load


def _open_error(path: str, e: OSError) -> CommandFailed:
    reason = (e.strerror or str(e)).lower()
    return CommandFailed(f"open {path}: {reason}")


def _stream_writer(ctx: Context):
    def write(text: str) -> None:
        ctx.write(text)
        try:
            ctx.out.flush()
        except (AttributeError, ValueError):
            pass
    return write


def _show_stream(ctx: Context, resp: Any, aux: Any = None) -> None:
    from ..client.http import iter_json
    from .output import StreamError

    try:
        display_messages(iter_json(resp), _stream_writer(ctx), is_terminal=ctx.out_is_terminal(),
                         aux=aux)
    except StreamError as e:
        raise CommandFailed(e.message, 1) from None
    finally:
        close = getattr(resp, "close", None)
        if close:
            close()


def run_import(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    source = args[0]
    params: dict[str, Any] = {}
    body: Any = None
    fh = None
    if source == "-":
        params["fromSrc"] = "-"
        body = ctx.binary_in()
    elif source.startswith(("http://", "https://")):
        params["fromSrc"] = source
    else:
        try:
            fh = open(source, "rb")
        except OSError as e:
            raise _open_error(source, e) from None
        params["fromSrc"] = "-"
        body = fh
    if len(args) > 1:
        repo, tag = split_tag(args[1])
        params["repo"] = repo
        if tag:
            params["tag"] = tag
    params["message"] = opts["message"]
    if opts["change"]:
        params["changes"] = list(opts["change"])
    if opts["platform"]:
        params["platform"] = opts["platform"]
    try:
        headers = {"Content-Type": "application/x-tar"} if body is not None else None
        resp = ctx.client().raw("POST", "/images/create", params, body, headers)
        _show_stream(ctx, resp)
    finally:
        if fh is not None:
            fh.close()
    return 0


def run_save(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    output = opts["output"]
    if not output and ctx.out_is_terminal():
        raise CommandFailed("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if len(args) == 1:
        path, params = f"/images/{quote_name(args[0])}/get", None
    else:
        path, params = "/images/get", {"names": list(args)}
    client = ctx.client()
    if not output:
        client.download(path, params, ctx.binary_out())
        ctx.binary_out().flush()
        return 0
    if os.path.isdir(output):
        raise CommandFailed(f'failed to save image: invalid output path: "{output}" is a directory')
    resp = client.raw("GET", path, params)
    tmp = os.path.join(os.path.dirname(os.path.abspath(output)),
                       f".{os.path.basename(output)}.hoist-{os.getpid()}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise CommandFailed(f"failed to save image: open {output}: "
                                f"{(e.strerror or str(e)).lower()}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                resp.copy_to(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, output)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    finally:
        resp.close()
    return 0


def run_load(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    fh = None
    if opts["input"]:
        try:
            fh = open(opts["input"], "rb")
        except OSError as e:
            raise _open_error(opts["input"], e) from None
        body = fh
    else:
        if ctx.in_is_terminal():
            raise CommandFailed("requested load from stdin, but stdin is empty")
        body = ctx.binary_in()
    quiet = opts["quiet"] or not ctx.out_is_terminal()
    try:
        resp = ctx.client().raw("POST", "/images/load", {"quiet": "1" if quiet else "0"}, body,
                                {"Content-Type": "application/x-tar"})
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/json" or not ctype:
            _show_stream(ctx, resp)
        else:
            try:
                out = ctx.binary_out()
                for chunk in resp:
                    out.write(chunk)
                out.flush()
            finally:
                resp.close()
    finally:
        if fh is not None:
            fh.close()
    return 0


# ---------------------------------------------------------------------- prune

_ALL_IMAGES_WARNING = ("WARNING! This will remove all images without at least one container "
                       "associated to them.\nAre you sure you want to continue?")
_DANGLING_WARNING = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"


def confirm(ctx: Context, message: str) -> bool:
    ctx.write(message + " [y/N] ")
    try:
        ctx.out.flush()
    except (AttributeError, ValueError):
        pass
    line = ctx.inp.readline()
    return line.strip().lower() == "y"


def run_prune(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    filters = filters_json(opts["filter"])
    filters.setdefault("dangling", []).append("false" if opts["all"] else "true")
    if not opts["force"]:
        if not confirm(ctx, _ALL_IMAGES_WARNING if opts["all"] else _DANGLING_WARNING):
            return 0  # docker treats a "no" as a cancellation: silent, status 0
    report = ctx.client().post_json("/images/prune", {"filters": filters}) or {}
    deleted = report.get("ImagesDeleted") or []
    reclaimed = 0
    if deleted:
        lines = ["Deleted Images:\n"]
        for d in deleted:
            if d.get("Untagged"):
                lines.append(f"untagged: {d['Untagged']}\n")
            else:
                lines.append(f"deleted: {d.get('Deleted', '')}\n")
        ctx.write("".join(lines) + "\n")
        reclaimed = _int(report.get("SpaceReclaimed"))
    ctx.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


# ---------------------------------------------------------------------- bootstrap (hoist)


def is_unsupported_route(e: HoistError) -> bool:
    """A 404 that means "no such endpoint" (a daemon that is not hoistd)."""
    if not isinstance(e, NotFound):
        return False
    msg = (getattr(e, "daemon_message", "") or "").strip().lower()
    return msg in ("page not found", "404 page not found", "not found", "") or \
        msg.startswith("request returned not found")


def run_bootstrap(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    try:
        resp = ctx.client().raw("POST", "/hoist/images/bootstrap", {"name": args[0]})
    except NotFound as e:
        if is_unsupported_route(e):
            raise CommandFailed("this daemon does not support bootstrap (is it hoistd?)", 125) from None
        raise
    _show_stream(ctx, resp)
    return 0


# ---------------------------------------------------------------------- command table

_FMT = Flag("format", None, "string", help=FORMAT_HELP)
_IMAGES_FLAGS = (
    Flag("all", "a", help="Show all images (default hides intermediate images)"),
    Flag("digests", None, help="Show digests"),
    Flag("filter", "f", "filter", help="Filter output based on conditions provided"),
    _FMT,
    Flag("no-trunc", None, help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
)


def _images_top(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    return run_images(ctx, opts, args, called_as="images")


def _registry_subcommands() -> list[Command]:
    """`image pull` and `image push`: the same commands as the top-level ones."""
    from .distribution import build as build_distribution

    cmds = build_distribution()
    return [cmds["pull"], cmds["push"]]


def build() -> dict[str, Command]:
    """The image commands: the ``image`` group plus docker's top-level shortcuts."""
    def images_cmd(name: str, use: str, run: Any, aliases: tuple[str, ...] = ()) -> Command:
        return Command(name, use, "List images", flags=_IMAGES_FLAGS, args=(0, 1), run=run,
                       aliases="hoist image ls, hoist image list, hoist images",
                       alias_names=aliases)

    def inspect_img() -> Command:
        return Command("inspect", "inspect [OPTIONS] IMAGE [IMAGE...]",
                       "Display detailed information on one or more images",
                       flags=(Flag("format", "f", "string", help=INSPECT_FORMAT_HELP),),
                       args=(1, None), run=run_inspect_images)

    def tag(name: str = "tag") -> Command:
        return Command(name, "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                       "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", args=(2, 2),
                       run=run_tag, aliases="hoist image tag, hoist tag", interspersed=False)

    def rmi(name: str, use: str, alias_names: tuple[str, ...] = ()) -> Command:
        return Command(name, use, "Remove one or more images",
                       flags=(Flag("force", "f", help="Force removal of the image"),
                              Flag("no-prune", None, help="Do not delete untagged parents")),
                       args=(1, None), run=run_rmi,
                       aliases="hoist image rm, hoist image remove, hoist rmi",
                       alias_names=alias_names)

    def history() -> Command:
        return Command("history", "history [OPTIONS] IMAGE", "Show the history of an image",
                       flags=(_FMT,
                              Flag("human", "H", "bool", True,
                                   help="Print sizes and dates in human readable format"),
                              Flag("no-trunc", None, help="Don't truncate output"),
                              Flag("quiet", "q", help="Only show image IDs")),
                       args=(1, 1), run=run_history,
                       aliases="hoist image history, hoist history")

    def import_() -> Command:
        return Command("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                       "Import the contents from a tarball to create a filesystem image",
                       flags=(Flag("change", "c", "list",
                                   help="Apply Dockerfile instruction to the created image"),
                              Flag("message", "m", "string",
                                   help="Set commit message for imported image"),
                              Flag("platform", None, "string",
                                   help="Set platform if server is multi-platform capable",
                                   default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""))),
                       args=(1, 2), run=run_import,
                       aliases="hoist image import, hoist import")

    def save() -> Command:
        return Command("save", "save [OPTIONS] IMAGE [IMAGE...]",
                       "Save one or more images to a tar archive (streamed to STDOUT by default)",
                       flags=(Flag("output", "o", "string",
                                   help="Write to a file, instead of STDOUT"),),
                       args=(1, None), run=run_save, aliases="hoist image save, hoist save")

    def load() -> Command:
        return Command("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN",
                       flags=(Flag("input", "i", "string",
                                   help="Read from tar archive file, instead of STDIN"),
                              Flag("quiet", "q", help="Suppress the load output")),
                       args=(0, 0), run=run_load, aliases="hoist image load, hoist load")

    prune = Command("prune", "prune [OPTIONS]", "Remove unused images",
                    flags=(Flag("all", "a", help="Remove all unused images, not just dangling ones"),
                           Flag("filter", None, "filter",
                                help='Provide filter values (e.g. "until=<timestamp>")'),
                           Flag("force", "f", help="Do not prompt for confirmation")),
                    args=(0, 0), run=run_prune)
    bootstrap = Command("bootstrap", "bootstrap NAME",
                        "Build a base image (busybox, debian:bookworm) from the host's Debian "
                        "packages, without a registry",
                        args=(1, 1), run=run_bootstrap)

    group = Command("image", "image COMMAND", "Manage images", args=(0, 0), subcommands=[
        images_cmd("ls", "ls [OPTIONS] [REPOSITORY[:TAG]]", run_images, ("list",)),
        inspect_img(), tag(), rmi("rm", "rm [OPTIONS] IMAGE [IMAGE...]", ("rmi", "remove")),
        history(), import_(), save(), load(), prune, bootstrap, *_registry_subcommands(),
    ], category="management")
    return {
        "image": group,
        "images": images_cmd("images", "images [OPTIONS] [REPOSITORY[:TAG]]", _images_top),
        "inspect": Command("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]",
                           "Return low-level information on Docker objects",
                           flags=(Flag("format", "f", "string", help=INSPECT_FORMAT_HELP),
                                  Flag("size", "s",
                                       help="Display total file sizes if the type is container"),
                                  Flag("type", None, "string",
                                       help="Only inspect objects of the given type")),
                           args=(1, None), run=run_inspect),
        "tag": tag(),
        "rmi": rmi("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]"),
        "history": history(),
        "import": import_(),
        "save": save(),
        "load": load(),
    }
