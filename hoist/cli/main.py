"""``hoist``: the command-line client. A pure Docker Engine API client, docker's flags.

Startup is kept lean: this module imports only the small command framework; a
command's module (and the HTTP client, and the template engine) is imported when that
command runs. Exit statuses as the docker CLI's: 0 ok, 125 for flag errors, 1 when the
daemon refuses a request or a command fails (``rmi`` of a missing image, ``inspect`` of
an unknown object, ...); 126/127 from :class:`hoist.errors.HoistError` keep their meaning.
"""
from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any

from .command import Command, CommandFailed, Context, Flag, HelpRequested, UsageError, flag_usages

# Which module provides each top-level command (imported only when it is used).
COMMAND_MODULES: dict[str, str] = {
    "images": "images", "image": "images", "inspect": "images", "tag": "images",
    "rmi": "images", "history": "images", "import": "images", "save": "images",
    "load": "images",
    "system": "system", "info": "system", "version": "system", "events": "system",
    "pull": "distribution", "push": "distribution", "login": "distribution",
    "logout": "distribution",
    "run": "containers", "create": "containers", "start": "containers", "ps": "containers",
    "logs": "containers", "stop": "containers", "restart": "containers", "kill": "containers",
    "rm": "containers", "wait": "containers", "pause": "containers", "unpause": "containers",
    "rename": "containers", "top": "containers", "exec": "containers", "attach": "containers",
    "stats": "containers", "cp": "containers", "diff": "containers", "commit": "containers",
    "export": "containers", "update": "containers", "port": "containers",
    "container": "containers",
    "registry": "registry",
}
COMMON_COMMANDS = ("run", "exec", "ps", "images", "version", "info")

GLOBAL_FLAGS = (
    Flag("debug", "D", help="Enable debug mode"),
    Flag("data-root", None, "string",
         help="Root of the hoist daemon's state, used when the CLI starts the daemon itself "
              "(default \"/var/lib/hoist\", env HOIST_DATA_ROOT)"),
    Flag("host", "H", "string", help="Daemon socket to connect to"),
    Flag("log-level", "l", "string", help='Set the logging level ("debug", "info", "warn", '
                                          '"error", "fatal")', default="info"),
    Flag("version", "v", help="Print version information and quit"),
)


def _root() -> Command:
    return Command("hoist", "hoist [OPTIONS] COMMAND", "A self-sufficient runtime for containers",
                   flags=GLOBAL_FLAGS, args=(0, None), interspersed=False)


def _load(module: str) -> dict[str, Command]:
    if module == "images":
        from . import images as mod
    elif module == "system":
        from . import system as mod
    else:  # pragma: no cover - extension point for more command modules
        import importlib

        mod = importlib.import_module(f"{__package__}.{module}")
    return mod.build()


def lookup(name: str) -> Command | None:
    module = COMMAND_MODULES.get(name)
    if module is None:
        return None
    cmd = _load(module).get(name)
    if cmd is not None:
        cmd.parent = _root()
    return cmd


def root_help() -> str:
    root = _root()
    cmds: dict[str, Command] = {}
    for module in dict.fromkeys(COMMAND_MODULES.values()):
        for name, cmd in _load(module).items():
            cmds[name] = cmd
    out = [f"Usage:  {root.use}\n\n{root.short}\n"]

    def section(title: str, names: list[str]) -> None:
        if names:
            out.append(f"\n{title}:\n")
            out.extend(f"  {n.ljust(11)} {cmds[n].short}\n" for n in names)

    section("Common Commands", [n for n in COMMON_COMMANDS if n in cmds])
    section("Management Commands",
            sorted(n for n, c in cmds.items() if c.category == "management"))
    section("Commands", sorted(n for n, c in cmds.items()
                               if n not in COMMON_COMMANDS and c.category != "management"))
    out.append("\nGlobal Options:\n")
    out.append(flag_usages(list(GLOBAL_FLAGS), _width() - 1))
    out.append("\nRun 'hoist COMMAND --help' for more information on a command.\n")
    return "".join(out)


def _width() -> int:
    from .command import _help_width

    return _help_width()


def _group_usage_error(group: Command, message: str) -> UsageError:
    return UsageError(f"{message}\nSee '{group.path} --help'.\n\n{group.help().rstrip()}", 125)


def _resolve(args: list[str]) -> tuple[Command, list[str]]:
    """Find the command named by ``args``; returns it and its remaining arguments."""
    name = args[0]
    cmd = lookup(name)
    if cmd is None:
        raise UsageError(f"hoist: '{name}' is not a hoist command.\nSee 'hoist --help'", 1)
    rest = args[1:]
    while cmd.subcommands:
        if not rest or rest[0] in ("-h", "--help"):
            raise HelpRequested(cmd)
        if rest[0].startswith("-") and rest[0] != "-":
            flag = rest[0].split("=", 1)[0]
            what = f"unknown flag: {flag}" if flag.startswith("--") else \
                f"unknown shorthand flag: '{flag[1:2]}' in {rest[0]}"
            raise _group_usage_error(cmd, what)
        sub = cmd.find(rest[0])
        if sub is None:
            raise UsageError("\n" + cmd.help().rstrip(), 1)
        cmd, rest = sub, rest[1:]
    return cmd, rest


def main(argv: list[str] | None = None, *, client: Any = None, stdout: Any = None,
         stderr: Any = None, stdin: Any = None) -> int:
    """Run the hoist CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    ``client``/``stdout``/``stderr``/``stdin`` let tests inject a fake API client and
    capture the streams."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    ctx: Context | None = None
    debug = False
    try:
        root = _root()
        try:
            gopts, args = root.parse(argv)
        except HelpRequested:
            out.write(root_help())
            return 0
        debug = gopts["debug"]
        if gopts["version"]:
            from .. import __version__

            out.write(f"hoist version {__version__}\n")
            return 0
        if not args:
            err.write(root_help())
            return 0
        if args[0] == "help":
            if len(args) == 1:
                out.write(root_help())
                return 0
            try:
                cmd, _ = _resolve(args[1:] + ["--help"])
            except HelpRequested as h:
                cmd = h.command
            out.write(cmd.help())
            return 0
        try:
            cmd, rest = _resolve(args)
            opts, pargs = cmd.parse(rest)
        except HelpRequested as h:
            out.write(h.command.help())
            return 0
        ctx = Context(host=gopts["host"] or None, data_root=gopts["data_root"] or None,
                      debug=debug, stdout=out, stderr=err, stdin=stdin, client=client)
        assert cmd.run is not None
        rc = cmd.run(ctx, opts, pargs)
        return int(rc or 0)
    except UsageError as e:
        err.write(e.message.rstrip("\n") + "\n")
        return e.exit_code
    except CommandFailed as e:
        _flush(out)
        if e.message:
            err.write(e.message.rstrip("\n") + "\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except Exception as e:  # noqa: BLE001 - the one place errors become exit statuses
        from ..errors import HoistError

        _flush(out)
        if isinstance(e, HoistError):
            err.write(e.message.rstrip("\n") + "\n")
            if debug:
                _traceback(err)
            # The docker CLI exits 1 when the daemon refuses a request; 125 is what
            # `run`/`create` report for engine errors, and those commands say so
            # themselves (CommandFailed). 126/127 keep their meaning everywhere.
            return 1 if e.exit_code == 125 else e.exit_code
        if isinstance(e, OSError):
            err.write(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "") + "\n")
            if debug:
                _traceback(err)
            return 1
        err.write(f"hoist: internal error: {type(e).__name__}: {e}\n")
        if debug:
            _traceback(err)
        else:
            err.write("(run with -D for the traceback)\n")
        return 1
    finally:
        if ctx is not None and client is None and ctx._client is not None:
            try:
                ctx._client.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            _flush(out)
        except BrokenPipeError:
            _silence_stdout()


def _flush(stream: Any) -> None:
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


def _traceback(err: Any) -> None:
    import traceback

    err.write(traceback.format_exc())


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run() -> None:
    """Console-script entry point (``hoist = hoist.cli.main:run``)."""
    code = main()
    # The interpreter's teardown (module and object finalisation) is ~2 ms of every
    # command and does nothing for us once our output is flushed: skip it, unless a
    # thread is still alive (it may have work to finish) or flushing fails (then
    # Python's own handling, message and status, applies).
    threading = sys.modules.get("threading")
    if isinstance(code, int) and (threading is None or threading.active_count() == 1):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        import os
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
