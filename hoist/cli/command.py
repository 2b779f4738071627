"""A small cobra/pflag look-alike: commands, flags, parsing, help and usage errors.

The docker CLI is built on cobra + pflag; users (and scripts) rely on their parsing
rules and messages, so this module follows them instead of argparse's:

* ``--flag=value``, ``--flag value``, ``-f value``, ``-fvalue``, ``-f=value``, grouped
  booleans ``-aq``, ``--bool=false``; ``--`` ends the flags; flags may follow
  positional arguments unless the command turns interspersing off (``tag``).
* A non-bool flag takes the next argument even when it starts with ``-``.
* Errors: ``unknown flag: --x``, ``unknown shorthand flag: 'x' in -x``, ``flag needs an
  argument: --x`` / ``'x' in -x``, ``invalid argument "v" for "-a, --all" flag: ...``.

Only the standard library's ``os`` and ``sys`` are used so importing stays cheap.
"""
from __future__ import annotations

import os
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any, Callable

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting "
    "output with templates")
INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting "
    "output with templates")

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class UsageError(Exception):
    """A command-line mistake. ``exit_code`` 125 for flag errors (docker's
    FlagErrorFunc), 1 for wrong argument counts."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class HelpRequested(Exception):
    def __init__(self, command: "Command") -> None:
        super().__init__(command.path)
        self.command = command


class Flag:
    """One flag. ``kind``: bool, string, int, list (repeatable), filter (repeatable
    ``key=value``), strings (repeatable, comma separated)."""

    __slots__ = ("name", "short", "kind", "default", "help", "hidden", "typename")

    def __init__(self, name: str, short: str | None = None, kind: str = "bool",
                 default: Any = None, help: str = "", *, hidden: bool = False,
                 typename: str | None = None) -> None:
        self.name = name
        self.short = short
        self.kind = kind
        if default is None:
            default = {"bool": False, "string": "", "int": 0}.get(kind)
        self.default = default
        self.help = help
        self.hidden = hidden
        self.typename = typename

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def initial(self) -> Any:
        if self.kind in ("list", "filter", "strings"):
            return []
        return self.default

    def type_name(self) -> str:
        if self.typename is not None:
            return self.typename
        return {"bool": "", "string": "string", "int": "int", "list": "list",
                "filter": "filter", "strings": "strings"}[self.kind]


class Command:
    def __init__(self, name: str, use: str, short: str, *,
                 flags: tuple[Flag, ...] | list[Flag] = (), args: tuple[int, int | None] = (0, 0),
                 run: Callable[..., Any] | None = None, aliases: str = "",
                 alias_names: tuple[str, ...] = (), interspersed: bool = True,
                 subcommands: list["Command"] | None = None, hidden: bool = False,
                 category: str = "") -> None:
        self.name = name
        self.use = use
        self.short = short
        self.flags = list(flags)
        self.min_args, self.max_args = args
        self.run = run
        self.aliases = aliases            # "docker image ls, docker images" line in help
        self.alias_names = alias_names    # other names this subcommand answers to
        self.interspersed = interspersed
        self.subcommands: list[Command] = []
        self.parent: Command | None = None
        self.hidden = hidden
        self.category = category
        for sub in subcommands or ():
            self.add(sub)

    def add(self, sub: "Command") -> "Command":
        sub.parent = self
        self.subcommands.append(sub)
        return sub

    def find(self, name: str) -> "Command | None":
        for sub in self.subcommands:
            if sub.name == name or name in sub.alias_names:
                return sub
        return None

    @property
    def path(self) -> str:
        return f"{self.parent.path} {self.name}" if self.parent else self.name

    @property
    def root_name(self) -> str:
        c = self
        while c.parent:
            c = c.parent
        return c.name

    def use_line(self) -> str:
        return f"{self.parent.path} {self.use}" if self.parent else self.use

    # ------------------------------------------------------------------ parsing

    def _long(self, name: str) -> Flag | None:
        for f in self.flags:
            if f.name == name:
                return f
        return None

    def _short(self, ch: str) -> Flag | None:
        for f in self.flags:
            if f.short == ch:
                return f
        return None

    def flag_error(self, message: str) -> UsageError:
        return UsageError(f"{message}\n\nUsage:  {self.use_line()}\n\n"
                          f"Run '{self.path} --help' for more information", 125)

    def parse(self, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Parse ``argv`` (everything after the command name) into ``(opts, args)``."""
        opts = {f.dest: f.initial() for f in self.flags}
        args: list[str] = []
        i = 0
        n = len(argv)
        help_wanted = False
        while i < n:
            a = argv[i]
            i += 1
            if a == "--":
                args.extend(argv[i:])
                break
            if a.startswith("--") and len(a) > 2:
                name, eq, value = a[2:].partition("=")
                if name == "help" and self._long("help") is None:
                    help_wanted = True
                    continue
                flag = self._long(name)
                if flag is None:
                    raise self.flag_error(f"unknown flag: --{name}")
                if flag.kind == "bool":
                    self._set(opts, flag, value if eq else "true")
                elif eq:
                    self._set(opts, flag, value)
                elif i < n:
                    self._set(opts, flag, argv[i])
                    i += 1
                else:
                    raise self.flag_error(f"flag needs an argument: --{name}")
                continue
            if a.startswith("-") and len(a) > 1:
                shorts = a[1:]
                while shorts:
                    ch = shorts[0]
                    flag = self._short(ch)
                    if flag is None:
                        if ch == "h":
                            help_wanted = True
                            shorts = shorts[1:]
                            continue
                        raise self.flag_error(f"unknown shorthand flag: '{ch}' in -{a[1:]}")
                    if len(shorts) > 2 and shorts[1] == "=":
                        self._set(opts, flag, shorts[2:])
                        shorts = ""
                    elif len(shorts) == 2 and shorts[1] == "=":
                        self._set(opts, flag, "")
                        shorts = ""
                    elif flag.kind == "bool":
                        self._set(opts, flag, "true")
                        shorts = shorts[1:]
                    elif len(shorts) > 1:
                        self._set(opts, flag, shorts[1:])
                        shorts = ""
                    elif i < n:
                        self._set(opts, flag, argv[i])
                        i += 1
                        shorts = ""
                    else:
                        raise self.flag_error(f"flag needs an argument: '{ch}' in -{ch}")
                continue
            args.append(a)
            if not self.interspersed:
                args.extend(argv[i:])
                break
        if help_wanted:
            raise HelpRequested(self)
        self.check_args(args)
        return opts, args

    def _set(self, opts: dict[str, Any], flag: Flag, value: str) -> None:
        kind = flag.kind
        if kind == "bool":
            if value in _TRUE:
                opts[flag.dest] = True
            elif value in _FALSE:
                opts[flag.dest] = False
            else:
                raise self.flag_error(f'invalid argument "{value}" for "{flag.label}" flag: '
                                      f'strconv.ParseBool: parsing "{value}": invalid syntax')
        elif kind == "string":
            opts[flag.dest] = value
        elif kind == "int":
            try:
                opts[flag.dest] = int(value, 0)
            except ValueError:
                raise self.flag_error(f'invalid argument "{value}" for "{flag.label}" flag: '
                                      f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        elif kind == "list":
            opts[flag.dest].append(value)
        elif kind == "strings":
            opts[flag.dest].extend(v for v in value.split(",") if v)
        elif kind == "filter":
            if value == "":
                return
            if "=" not in value:
                raise self.flag_error(f'invalid argument "{value}" for "{flag.label}" flag: '
                                      "bad format of filter (expected name=value)")
            k, _, v = value.partition("=")
            opts[flag.dest].append((k.strip().lower(), v.strip()))
        else:  # pragma: no cover
            raise AssertionError(kind)

    def check_args(self, args: list[str]) -> None:
        lo, hi = self.min_args, self.max_args
        n = len(args)
        if lo <= n and (hi is None or n <= hi):
            return
        if self.subcommands and hi == 0:
            raise UsageError(f"{self.root_name}: '{args[0]}' is not a {self.root_name} "
                             f"command.\nSee '{self.path} --help'", 1)
        if hi == 0:
            what = "accepts no arguments"
        elif lo == hi:
            what = f"requires exactly {lo} {_plural('argument', lo)}"
        elif hi is None:
            what = f"requires at least {lo} {_plural('argument', lo)}"
        elif lo == 0:
            what = f"requires at most {hi} {_plural('argument', hi)}"
        else:
            what = f"requires at least {lo} and at most {hi} {_plural('argument', hi)}"
        raise UsageError(f'"{self.path}" {what}.\nSee \'{self.path} --help\'.\n\n'
                         f"Usage:  {self.use_line()}\n\n{self.short}", 1)

    # ------------------------------------------------------------------ help

    def help(self, width: int | None = None) -> str:
        width = width or _help_width()
        out = [f"Usage:  {self.use_line()}\n", "\n", f"{self.short}\n"]
        if self.aliases:
            out += ["\n", "Aliases:\n", f"  {self.aliases}\n"]
        visible = [f for f in self.flags if not f.hidden]
        if visible:
            out += ["\n", "Options:\n", flag_usages(visible, width - 1)]
        if self.subcommands:
            out.append(self.commands_help())
            out.append(f"\nRun '{self.path} COMMAND --help' for more information on a command.\n")
        return "".join(out)

    def commands_help(self, title: str = "Commands") -> str:
        subs = [c for c in self.subcommands if not c.hidden]
        if not subs:
            return ""
        pad = max(11, max(len(c.name) for c in subs) + 1)
        lines = [f"\n{title}:\n"]
        for c in sorted(subs, key=lambda c: c.name):
            lines.append(f"  {c.name.ljust(pad)} {c.short}\n")
        return "".join(lines)


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


def _help_width() -> int:
    try:
        return os.get_terminal_size(0).columns
    except OSError:
        return 80


def flag_usages(flags: list[Flag], cols: int) -> str:
    """pflag's FlagUsagesWrapped: flags sorted by name, descriptions aligned and wrapped."""
    lines = []
    maxlen = 0
    for f in sorted(flags, key=lambda f: f.name):
        line = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        tn = f.type_name()
        if tn:
            line += " " + tn
        maxlen = max(maxlen, len(line) + 1)
        usage = f.help
        if f.kind == "bool" and f.default:
            usage += " (default true)"
        elif f.kind == "string" and f.default:
            usage += f' (default "{f.default}")'
        elif f.kind == "int" and f.default:
            usage += f" (default {f.default})"
        lines.append((line, usage))
    out = []
    for line, usage in lines:
        out.append(f"{line} {' ' * (maxlen - len(line))} {_wrap(maxlen + 2, cols, usage)}\n")
    return "".join(out)


def _wrap(i: int, w: int, s: str) -> str:
    if w <= 0:
        return s.replace("\n", "\n" + " " * i)
    width = w - i
    r = ""
    if width < 24:
        i = 16
        width = w - i
        r += "\n" + " " * i
    if width < 24:
        return s.replace("\n", r)
    slop = 5
    width -= slop
    head, s = _wrap_n(width, slop, s)
    r += head.replace("\n", "\n" + " " * i)
    while s:
        t, s = _wrap_n(width, slop, s)
        r += "\n" + " " * i + t.replace("\n", "\n" + " " * i)
    return r


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    head = s[:i]
    w = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n"))
    if w <= 0:
        return s, ""
    nl = head.rfind("\n")
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def filters_json(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """``-f k=v`` pairs → the Engine API ``filters`` map (``{"dangling": ["true"]}``)."""
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        vals = out.setdefault(k, [])
        if v not in vals:
            vals.append(v)
    return out


class Context:
    """What a command's ``run`` gets besides its options: streams, global flags and a
    lazily created API client."""

    def __init__(self, *, host: str | None = None, data_root: str | None = None,
                 debug: bool = False, stdout: Any = None, stderr: Any = None,
                 stdin: Any = None, client: Any = None) -> None:
        self.host = host
        self.data_root = data_root
        self.debug = debug
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.inp = stdin or sys.stdin
        self._client = client

    def client(self) -> Any:
        if self._client is None:
            from ..client.http import Client

            self._client = Client(self.host, data_root=self.data_root, debug=self.debug)
        return self._client

    def write(self, text: str) -> None:
        self.out.write(text)

    def error(self, text: str) -> None:
        self.err.write(text if text.endswith("\n") else text + "\n")

    def out_is_terminal(self) -> bool:
        try:
            return self.out.isatty()
        except (AttributeError, ValueError):
            return False

    def in_is_terminal(self) -> bool:
        try:
            return self.inp.isatty()
        except (AttributeError, ValueError):
            return False

    def binary_out(self) -> Any:
        self.out.flush()
        return getattr(self.out, "buffer", self.out)

    def binary_in(self) -> Any:
        return getattr(self.inp, "buffer", self.inp)


class CommandFailed(Exception):
    """A failure docker reports with its generic exit status (1 unless given)."""

    def __init__(self, message: str = "", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
