"""A small Go ``text/template`` engine for docker-style ``--format`` flags.

Docker users write ``--format`` strings in Go template syntax
(``{{.Repository}}:{{.Tag}}``, ``table {{.ID}}\\t{{.Names}}``, ``{{json .}}``...).
This module implements the part of that language real scripts use: a tokenizer,
a parser producing a small tree (compiled once, reusable for every row) and an
evaluator that follows Go's rules for field lookup, truthiness, comparison and
value printing, plus Go's builtin functions and the docker CLI's extra ones
(``json``, ``join``, ``split``, ``lower``, ``upper``, ``title``, ``pad``,
``truncate``).

Public API:

* :func:`compile_template` -- parse a template; syntax errors raise
  :class:`hoist.errors.InvalidArgument` worded like Docker's
  ``template parsing error: template: :1: ...``.
* :meth:`Template.render` -- execute against a dict (JSON-shaped) or an object;
  execution errors raise :class:`TemplateError` (an ``InvalidArgument``).
* :func:`format_rows` -- the docker CLI formatter: default/``table``/``json``/custom
  formats, table headers and tabwriter column alignment.

Only builtins are used at import time so the CLI starts fast.
"""
from __future__ import annotations

from hoist.errors import InvalidArgument

__all__ = [
    "MISSING",
    "TABLE_MINWIDTH",
    "Template",
    "TemplateError",
    "compile_template",
    "format_rows",
    "tabwrite",
]

# docker's formatter: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
TABLE_MINWIDTH = 10
TABLE_PADDING = 3


class TemplateError(InvalidArgument):
    """A template failed while executing (bad field, bad function argument...)."""


class _Missing:
    """Go's "invalid value": what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()
_NOFINAL = object()  # "no value piped in from a previous command"
_SPACE = " \t\r\n"


# --------------------------------------------------------------------------- lexer

(_EOF, _ERROR, _TEXT, _LDELIM, _RDELIM, _WS, _FIELD, _VAR, _DOT, _IDENT, _KEYWORD,
 _BOOL, _NIL, _NUMBER, _CHARCONST, _STRING, _RAWSTRING, _PIPE, _LPAREN, _RPAREN,
 _DECLARE, _ASSIGN, _CHAR) = range(23)

_KEYWORDS = frozenset(
    ("if", "else", "end", "range", "with", "break", "continue", "define", "template", "block")
)


class _Tok:
    __slots__ = ("kind", "val", "pos")

    def __init__(self, kind: int, val: str, pos: int) -> None:
        self.kind = kind
        self.val = val
        self.pos = pos

    def describe(self) -> str:
        """How Go's parser names a token in "unexpected X" messages."""
        if self.kind == _EOF:
            return "EOF"
        if self.kind == _ERROR:
            return self.val
        if self.kind == _KEYWORD or self.kind == _DOT:
            return "<%s>" % self.val
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()


def _char_desc(c: str) -> str:
    """Go's %#U: U+0021 '!'."""
    s = "U+%04X" % ord(c)
    if c.isprintable():
        s += " '%s'" % c
    return s


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    add = toks.append
    n = len(src)
    pos = 0

    def at_terminator(p: int) -> bool:
        if p >= n:
            return True
        c = src[p]
        return c in _SPACE or c in ".,|:()" or src.startswith("}}", p)

    while True:
        # ---- text up to the next "{{"
        i = src.find("{{", pos)
        if i < 0:
            if pos < n:
                add(_Tok(_TEXT, src[pos:], pos))
            add(_Tok(_EOF, "", n))
            return toks
        text_end = i
        after = i + 2
        if after + 1 < n and src[after] == "-" and src[after + 1] in _SPACE:
            while text_end > pos and src[text_end - 1] in _SPACE:
                text_end -= 1
            after += 2
        if text_end > pos:
            add(_Tok(_TEXT, src[pos:text_end], pos))

        # ---- comment: {{/* ... */}}
        if src.startswith("/*", after):
            k = src.find("*/", after + 2)
            if k < 0:
                add(_Tok(_ERROR, "unclosed comment", after))
                return toks
            p = k + 2
            if p < n and src[p] in _SPACE and src.startswith("-}}", p + 1):
                p += 4
                while p < n and src[p] in _SPACE:
                    p += 1
            elif src.startswith("}}", p):
                p += 2
            else:
                add(_Tok(_ERROR, "comment ends before closing delimiter", p))
                return toks
            pos = p
            continue

        add(_Tok(_LDELIM, "{{", i))
        pos = after
        depth = 0

        # ---- inside an action
        while True:
            if pos < n and src[pos] in _SPACE and src.startswith("-}}", pos + 1):
                if depth:
                    add(_Tok(_ERROR, "unclosed left paren", pos))
                    return toks
                add(_Tok(_RDELIM, "}}", pos))
                pos += 4
                while pos < n and src[pos] in _SPACE:
                    pos += 1
                break
            if src.startswith("}}", pos):
                if depth:
                    add(_Tok(_ERROR, "unclosed left paren", pos))
                    return toks
                add(_Tok(_RDELIM, "}}", pos))
                pos += 2
                break
            if pos >= n:
                add(_Tok(_ERROR, "unclosed action", pos))
                return toks
            c = src[pos]
            start = pos
            if c in _SPACE:
                while pos < n and src[pos] in _SPACE:
                    pos += 1
                if src.startswith("-}}", pos):
                    pos -= 1  # leave the space of a " -}}" trim marker
                if pos > start:
                    add(_Tok(_WS, src[start:pos], start))
            elif c == "=":
                add(_Tok(_ASSIGN, "=", pos))
                pos += 1
            elif c == ":":
                if not src.startswith(":=", pos):
                    add(_Tok(_ERROR, "expected :=", pos))
                    return toks
                add(_Tok(_DECLARE, ":=", pos))
                pos += 2
            elif c == "|":
                add(_Tok(_PIPE, "|", pos))
                pos += 1
            elif c == '"' or c == "'":
                pos += 1
                while True:
                    ch = src[pos] if pos < n else ""
                    if ch == "\\":
                        pos += 1
                        ch = src[pos] if pos < n else ""
                        if ch and ch != "\n":
                            pos += 1
                            continue
                    if ch == "" or ch == "\n":
                        what = "quoted string" if c == '"' else "character constant"
                        add(_Tok(_ERROR, "unterminated " + what, start))
                        return toks
                    pos += 1
                    if ch == c:
                        break
                add(_Tok(_STRING if c == '"' else _CHARCONST, src[start:pos], start))
            elif c == "`":
                k = src.find("`", pos + 1)
                if k < 0:
                    add(_Tok(_ERROR, "unterminated raw quoted string", start))
                    return toks
                pos = k + 1
                add(_Tok(_RAWSTRING, src[start:pos], start))
            elif c == "$" or (c == "." and not (pos + 1 < n and "0" <= src[pos + 1] <= "9")):
                pos += 1
                if at_terminator(pos):
                    add(_Tok(_VAR if c == "$" else _DOT, c, start))
                    continue
                while pos < n and _is_alnum(src[pos]):
                    pos += 1
                if not at_terminator(pos):
                    add(_Tok(_ERROR, "bad character " + _char_desc(src[pos]), pos))
                    return toks
                add(_Tok(_VAR if c == "$" else _FIELD, src[start:pos], start))
            elif c in "+-." or "0" <= c <= "9":
                pos = _scan_number(src, pos)
                if pos < 0:
                    pos = -pos
                    add(_Tok(_ERROR, "bad number syntax: " + _go_quote(src[start:pos]), start))
                    return toks
                add(_Tok(_NUMBER, src[start:pos], start))
            elif _is_alnum(c):
                while pos < n and _is_alnum(src[pos]):
                    pos += 1
                if not at_terminator(pos):
                    add(_Tok(_ERROR, "bad character " + _char_desc(src[pos]), pos))
                    return toks
                word = src[start:pos]
                if word in _KEYWORDS:
                    kind = _KEYWORD
                elif word == "true" or word == "false":
                    kind = _BOOL
                elif word == "nil":
                    kind = _NIL
                else:
                    kind = _IDENT
                add(_Tok(kind, word, start))
            elif c == "(":
                depth += 1
                add(_Tok(_LPAREN, c, pos))
                pos += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    add(_Tok(_ERROR, "unexpected right paren", pos))
                    return toks
                add(_Tok(_RPAREN, c, pos))
                pos += 1
            elif c.isascii() and c.isprintable():
                add(_Tok(_CHAR, c, pos))
                pos += 1
            else:
                add(_Tok(_ERROR, "bad character " + _char_desc(c), pos))
                return toks


def _scan_number(src: str, pos: int) -> int:
    """Scan a number like Go's lexer; return the end, or -end when malformed."""
    n = len(src)

    def accept(p: int, chars: str) -> int:
        return p + 1 if p < n and src[p] in chars else p

    def accept_run(p: int, chars: str) -> int:
        while p < n and src[p] in chars:
            p += 1
        return p

    p = accept(pos, "+-")
    digits = "0123456789_"
    if p < n and src[p] == "0":
        p += 1
        if p < n and src[p] in "xX":
            p += 1
            digits = "0123456789abcdefABCDEF_"
        elif p < n and src[p] in "oO":
            p += 1
            digits = "01234567_"
        elif p < n and src[p] in "bB":
            p += 1
            digits = "01_"
    p = accept_run(p, digits)
    if p < n and src[p] == ".":
        p = accept_run(p + 1, digits)
    if len(digits) == 11 and p < n and src[p] in "eE":
        p = accept_run(accept(p + 1, "+-"), "0123456789_")
    if len(digits) == 23 and p < n and src[p] in "pP":
        p = accept_run(accept(p + 1, "+-"), "0123456789_")
    p = accept(p, "i")
    if p < n and _is_alnum(src[p]):
        return -(p + 1)
    return p


# --------------------------------------------------------------------------- literals

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
}
_HEX = "0123456789abcdefABCDEF"


def _unquote(text: str) -> str:
    """Go's strconv.Unquote for "..." and `...` literals (ValueError when malformed)."""
    quote = text[0]
    body = text[1:-1]
    if quote == "`":
        return body.replace("\r", "")
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("invalid syntax")
        e = body[i]
        i += 1
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e].encode()
        elif e == quote:
            out += e.encode()
        elif e in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[e]
            hx = body[i:i + size]
            if len(hx) != size or any(h not in _HEX for h in hx):
                raise ValueError("invalid syntax")
            i += size
            v = int(hx, 16)
            if e == "x":
                out.append(v)
            else:
                if v > 0x10FFFF or 0xD800 <= v < 0xE000:
                    raise ValueError("invalid syntax")
                out += chr(v).encode("utf-8")
        elif "0" <= e <= "7":
            oc = body[i - 1:i + 2]
            if len(oc) != 3 or any(not "0" <= o <= "7" for o in oc):
                raise ValueError("invalid syntax")
            i += 2
            v = int(oc, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            out.append(v)
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "replace")


def _parse_char(text: str) -> int:
    body = text[1:-1]
    if body.startswith("\\"):
        if body[1:2] == "x" and len(body) == 4:
            try:
                return int(body[2:], 16)
            except ValueError:
                pass
        elif len(body) == 4 and all("0" <= o <= "7" for o in body[1:]):
            return int(body[1:], 8)
        elif body == "\\'":
            return 39
        else:
            try:
                s = _unquote('"' + body + '"')
            except ValueError:
                s = ""
            if len(s) == 1 and body != '\\"':
                return ord(s)
        raise ValueError("malformed character constant: " + text)
    if len(body) != 1:
        raise ValueError("malformed character constant: " + text)
    return ord(body)


def _parse_number(text: str) -> int | float:
    """Go's idealConstant: integers stay ints, anything with . e p is a float."""
    if text.endswith("i"):
        raise ValueError("complex numbers are not supported: " + text)
    t = text
    sign = 1
    if t[:1] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    low = t.lower()
    try:
        if low.startswith("0x"):
            if "p" in low or "." in low:
                return sign * float.fromhex(t.replace("_", ""))
            return sign * int(t, 16)
        if low.startswith(("0o", "0b")):
            return sign * int(t, 0)
        if any(c in low for c in ".e"):
            return sign * float(t)
        if len(t) > 1 and t[0] == "0":
            return sign * int(t, 8)
        return sign * int(t, 10)
    except ValueError:
        raise ValueError("illegal number syntax: " + _go_quote(text)) from None


# --------------------------------------------------------------------------- tree


class _Node:
    __slots__ = ("pos",)


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text


class _Field(_Node):
    __slots__ = ("idents",)

    def __init__(self, pos: int, idents: tuple) -> None:
        self.pos, self.idents = pos, idents

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


class _Var(_Node):
    __slots__ = ("name", "idents")

    def __init__(self, pos: int, name: str, idents: tuple = ()) -> None:
        self.pos, self.name, self.idents = pos, name, idents

    def __str__(self) -> str:
        return self.name + "".join("." + i for i in self.idents)


class _Chain(_Node):
    __slots__ = ("node", "idents")

    def __init__(self, pos: int, node: _Node, idents: tuple) -> None:
        self.pos, self.node, self.idents = pos, node, idents

    def __str__(self) -> str:
        inner = str(self.node)
        if isinstance(self.node, _Pipe):
            inner = "(" + inner + ")"
        return inner + "".join("." + i for i in self.idents)


class _Dot(_Node):
    __slots__ = ()

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "."


class _Nil(_Node):
    __slots__ = ()

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "nil"


class _Literal(_Node):
    """A bool, number or string constant; ``text`` is how it was written."""

    __slots__ = ("val", "text")

    def __init__(self, pos: int, val: object, text: str) -> None:
        self.pos, self.val, self.text = pos, val, text

    def __str__(self) -> str:
        return self.text


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class _Cmd(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int) -> None:
        self.pos, self.args = pos, []

    def __str__(self) -> str:
        return " ".join("(%s)" % a if isinstance(a, _Pipe) else str(a) for a in self.args)


class _Pipe(_Node):
    __slots__ = ("decls", "is_assign", "cmds")

    def __init__(self, pos: int) -> None:
        self.pos, self.decls, self.is_assign, self.cmds = pos, [], False, []

    def __str__(self) -> str:
        s = ""
        if self.decls:
            s = ", ".join(self.decls) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: _Pipe) -> None:
        self.pos, self.pipe = pos, pipe

    def __str__(self) -> str:
        return "{{%s}}" % self.pipe


class _Control(_Node):
    """{{if}}, {{with}} and {{range}}: ``kind`` tells which."""

    __slots__ = ("kind", "pipe", "body", "else_body")

    def __init__(self, pos: int, kind: str, pipe: _Pipe, body: list, else_body: list | None) -> None:
        self.pos, self.kind, self.pipe, self.body, self.else_body = pos, kind, pipe, body, else_body

    def __str__(self) -> str:
        return "{{%s %s}}" % (self.kind, self.pipe)


class _Simple(_Node):
    """{{end}}, {{else}}, {{break}}, {{continue}}."""

    __slots__ = ("word",)

    def __init__(self, pos: int, word: str) -> None:
        self.pos, self.word = pos, word

    def __str__(self) -> str:
        return "{{%s}}" % self.word


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, src: str, toks: list[_Tok]) -> None:
        self.src = src
        self.toks = toks
        self.i = 0
        self.cur = toks[0]
        self.vars = ["$"]
        self.range_depth = 0

    # -- errors
    def error(self, msg: str, tok: _Tok | None = None) -> None:
        tok = tok or self.cur
        line = self.src.count("\n", 0, tok.pos) + 1
        raise InvalidArgument("template parsing error: template: :%d: %s" % (line, msg))

    def unexpected(self, tok: _Tok, context: str) -> None:
        if tok.kind == _ERROR:
            self.error(tok.val, tok)
        self.error("unexpected %s in %s" % (tok.describe(), context), tok)

    # -- token stream
    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind == _ERROR:
            self.error(tok.val, tok)
        if tok.kind != _EOF:
            self.i += 1
        self.cur = tok
        return tok

    def backup(self) -> None:
        if self.cur.kind != _EOF:
            self.i -= 1

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.kind == _WS:
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.backup()
        return tok

    def expect(self, kind: int, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.kind != kind:
            self.unexpected(tok, context)
        return tok

    # -- grammar
    def parse(self) -> list:
        root = []
        while self.peek().kind != _EOF:
            node = self.text_or_action()
            if isinstance(node, _Simple) and node.word in ("end", "else"):
                self.error("unexpected %s" % node)
            root.append(node)
        return root

    def text_or_action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind == _TEXT:
            return _Text(tok.pos, tok.val)
        if tok.kind == _LDELIM:
            return self.action()
        self.unexpected(tok, "input")
        raise AssertionError  # unreachable

    def item_list(self) -> tuple[list, _Simple]:
        items = []
        while self.peek_non_space().kind != _EOF:
            node = self.text_or_action()
            if isinstance(node, _Simple) and node.word in ("end", "else"):
                return items, node
            items.append(node)
        self.error("unexpected EOF")
        raise AssertionError  # unreachable

    def action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind == _KEYWORD:
            word = tok.val
            if word in ("if", "with", "range"):
                return self.control(word)
            if word == "else":
                peek = self.peek_non_space()
                if peek.kind == _KEYWORD and peek.val in ("if", "with"):
                    return _Simple(peek.pos, "else")
                self.expect(_RDELIM, "else")
                return _Simple(tok.pos, "else")
            if word == "end":
                self.expect(_RDELIM, "end")
                return _Simple(tok.pos, "end")
            if word in ("break", "continue"):
                self.expect(_RDELIM, "{{%s}}" % word)
                if not self.range_depth:
                    self.error("{{%s}} outside {{range}}" % word)
                return _Simple(tok.pos, word)
            self.error("{{%s}} is not supported" % word)
        self.backup()
        start = self.peek()
        return _Action(start.pos, self.pipeline("command", _RDELIM))

    def control(self, kind: str) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, _RDELIM)
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body = None
        if nxt.word == "else":
            peek = self.peek()
            if kind in ("if", "with") and peek.kind == _KEYWORD and peek.val == kind:
                # {{else if x}} is {{else}}{{if x}}...{{end}}{{end}} sharing the last end
                self.next()
                else_body = [self.control(kind)]
            else:
                else_body, nxt = self.item_list()
                if nxt.word != "end":
                    self.error("expected end; found %s" % nxt)
        del self.vars[mark:]
        return _Control(pipe.pos, kind, pipe, body, else_body)

    def pipeline(self, context: str, end: int) -> _Pipe:
        pipe = _Pipe(self.peek_non_space().pos)
        while True:  # declarations: $x :=, $x =, $i, $v :=
            v = self.peek_non_space()
            if v.kind != _VAR:
                break
            before = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.kind in (_ASSIGN, _DECLARE):
                self.next_non_space()
                pipe.is_assign = nxt.kind == _ASSIGN
                pipe.decls.append(v.val)
                if pipe.is_assign:
                    if v.val not in self.vars:
                        self.error("undefined variable %s" % _go_quote(v.val))
                else:
                    self.vars.append(v.val)
                break
            if nxt.kind == _CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decls.append(v.val)
                self.vars.append(v.val)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().kind in (_VAR, _RDELIM, _RPAREN):
                        continue
                    self.error("range can only initialize variables")
                self.error("too many declarations in %s" % context)
            self.i = before
            break
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                if not pipe.cmds:
                    self.error("missing value for %s" % context)
                for i, cmd in enumerate(pipe.cmds[1:]):
                    if isinstance(cmd.args[0], (_Literal, _Dot, _Nil)):
                        self.error("non executable command in pipeline stage %d" % (i + 2))
                return pipe
            if tok.kind in (_BOOL, _CHARCONST, _DOT, _FIELD, _IDENT, _NUMBER, _NIL,
                            _RAWSTRING, _STRING, _VAR, _LPAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def command(self) -> _Cmd:
        cmd = _Cmd(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == _WS:
                continue
            if tok.kind in (_RDELIM, _RPAREN):
                self.backup()
            elif tok.kind != _PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == _FIELD:
            pos = self.peek().pos  # Go reports a chain at its first chained field
            idents = []
            while self.peek().kind == _FIELD:
                idents.append(self.next().val[1:])
            if isinstance(node, _Field):
                node = _Field(pos, node.idents + tuple(idents))
            elif isinstance(node, _Var):
                node = _Var(pos, node.name, node.idents + tuple(idents))
            elif isinstance(node, (_Literal, _Nil, _Dot)):
                self.error("unexpected . after term %s" % _go_quote(str(node)))
            else:
                node = _Chain(pos, node, tuple(idents))
        return node

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == _IDENT:
            if tok.val not in _FUNCS:
                self.error("function %s not defined" % _go_quote(tok.val))
            return _Ident(tok.pos, tok.val)
        if kind == _DOT:
            return _Dot(tok.pos)
        if kind == _NIL:
            return _Nil(tok.pos)
        if kind == _VAR:
            if tok.val not in self.vars:
                self.error("undefined variable %s" % _go_quote(tok.val))
            return _Var(tok.pos, tok.val)
        if kind == _FIELD:
            return _Field(tok.pos, (tok.val[1:],))
        if kind == _BOOL:
            return _Literal(tok.pos, tok.val == "true", tok.val)
        if kind == _NUMBER or kind == _CHARCONST:
            try:
                val = _parse_number(tok.val) if kind == _NUMBER else _parse_char(tok.val)
            except ValueError as e:
                self.error(str(e))
            return _Literal(tok.pos, val, tok.val)
        if kind == _LPAREN:
            return self.pipeline("parenthesized pipeline", _RPAREN)
        if kind == _STRING or kind == _RAWSTRING:
            try:
                val = _unquote(tok.val)
            except ValueError as e:
                self.error(str(e))
            return _Literal(tok.pos, val, tok.val)
        self.backup()
        return None


# --------------------------------------------------------------------------- Go value printing


def _gotype(v: object) -> str:
    """The Go type name a JSON-decoded value would have (for error messages)."""
    if v is None or v is MISSING:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__


def _shortest_digits(a: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a > 0: value = 0.DIGITS * 10**dp."""
    r = repr(a)
    exp = 0
    if "e" in r:
        r, e = r.split("e")
        exp = int(e)
    if "." in r:
        ip, fp = r.split(".")
    else:
        ip, fp = r, ""
    digits = ip + fp
    dp = len(ip) + exp
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", dp


def _fmt_e(digits: str, dp: int, min_exp_digits: int = 2) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1
    return "%se%s%0*d" % (mant, "-" if exp < 0 else "+", min_exp_digits, abs(exp))


def _fmt_f(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _is_neg(f: float) -> bool:
    return f < 0 or (f == 0 and repr(f).startswith("-"))


def _float_v(f: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form below 1e-4 or from 1e6 up."""
    if f != f:
        return "NaN"
    if f in (_INF, -_INF):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if _is_neg(f) else ""
    if f == 0:
        return sign + "0"
    digits, dp = _shortest_digits(abs(f))
    exp = dp - 1
    if exp < -4 or exp >= 6:  # strconv's shortest %g switches to %e here
        return sign + _fmt_e(digits, dp)
    return sign + _fmt_f(digits, dp)


_INF = float("inf")


def _sorted_keys(d: dict) -> list:
    keys = list(d)
    try:
        keys.sort()
    except TypeError:
        keys.sort(key=lambda k: (type(k).__name__, str(k)))
    return keys


def _fmt_v(v: object) -> str:
    """fmt's %v of a value, the way Go prints JSON-decoded data."""
    if isinstance(v, str):
        return v
    if v is None:
        return "<nil>"
    if v is MISSING:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_v(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt_v(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(_fmt_v(k) + ":" + _fmt_v(v[k]) for k in _sorted_keys(v)) + "]"
    fields = getattr(v, "__dataclass_fields__", None)
    if fields is not None and not isinstance(v, type):
        return "{" + " ".join(_fmt_v(getattr(v, f)) for f in fields) + "}"
    return str(v)


def _go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and (o < 128 or not ascii_only):
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append(_GO_ESC[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0xD800 <= o < 0xE000:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


_GO_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


# --------------------------------------------------------------------------- printf


def _pad(s: str, width: int | None, minus: bool, zero: bool = False) -> str:
    if width is None or len(s) >= width:
        return s
    fill = width - len(s)
    if minus:
        return s + " " * fill
    return ("0" if zero else " ") * fill + s


class _Flags:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def _bad_verb(verb: str, a: object) -> str:
    if a is None or a is MISSING:
        return "%!" + verb + "(<nil>)"
    return "%!" + verb + "(" + _gotype(a) + "=" + _fmt_v(a) + ")"


def _fmt_int(n: int, verb: str, f: _Flags) -> str:
    if verb == "c":
        try:
            s = chr(n)
        except (ValueError, OverflowError):
            s = "\ufffd"
        return _pad(s, f.width, f.minus)
    if verb == "q":
        try:
            ch = chr(n)
        except (ValueError, OverflowError):
            ch = "\ufffd"
        inner = _go_quote(ch, f.plus)[1:-1]
        inner = {'\\"': '"', "'": "\\'"}.get(inner, inner)
        return _pad("'" + inner + "'", f.width, f.minus)
    if verb == "U":
        s = "U+%04X" % n
        if f.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
            s += " '" + chr(n) + "'"
        return _pad(s, f.width, f.minus)
    neg = n < 0
    a = -n if neg else n
    base_fmt = {"v": "d", "d": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}[verb]
    digits = format(a, base_fmt)
    if f.prec is not None:
        digits = "" if (f.prec == 0 and a == 0) else digits.rjust(f.prec, "0")
    elif f.zero and f.width is not None and not f.minus:
        want = f.width - (1 if (neg or f.plus or f.space) else 0)
        digits = digits.rjust(want, "0")
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif f.sharp:
        if verb == "b":
            prefix = "0b"
        elif verb == "o" and not digits.startswith("0"):
            prefix = "0"
        elif verb == "x":
            prefix = "0x"
        elif verb == "X":
            prefix = "0X"
    sign = "-" if neg else ("+" if f.plus else (" " if f.space else ""))
    return _pad(sign + prefix + digits, f.width, f.minus)


def _fmt_float(x: float, verb: str, f: _Flags) -> str:
    if x != x or x in (_INF, -_INF):
        if x != x:
            s = "NaN"
            if f.plus:
                s = "+NaN"
            elif f.space:
                s = " NaN"
        else:
            s = "-Inf" if x < 0 else ("+Inf" if (f.plus or not f.space) else " Inf")
        return _pad(s, f.width, f.minus)
    neg = _is_neg(x)
    a = -x if neg else x
    if verb in "vgG":
        if f.prec is None:
            if a == 0:
                body = "0"
            else:
                digits, dp = _shortest_digits(a)
                exp = dp - 1
                body = _fmt_e(digits, dp) if (exp < -4 or exp >= 6) else _fmt_f(digits, dp)
        else:
            body = "%.*g" % (f.prec, a)
        if verb == "G":
            body = body.upper()
    elif verb in "eE":
        body = "%.*e" % (6 if f.prec is None else f.prec, a)
        if verb == "E":
            body = body.upper()
    else:  # f F
        body = "%.*f" % (6 if f.prec is None else f.prec, a)
    sign = "-" if neg else ("+" if f.plus else (" " if f.space else ""))
    if f.zero and f.width is not None and not f.minus:
        body = body.rjust(f.width - len(sign), "0")
    return _pad(sign + body, f.width, f.minus)


def _fmt_str(s: str, verb: str, f: _Flags) -> str:
    if verb in "vs":
        if f.sharp and verb == "v":
            return _pad(_go_quote(s), f.width, f.minus)
        if f.prec is not None:
            s = s[:f.prec]
        return _pad(s, f.width, f.minus, f.zero)
    if verb == "q":
        if f.prec is not None:
            s = s[:f.prec]
        if f.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", f.width, f.minus)
        return _pad(_go_quote(s, f.plus), f.width, f.minus)
    if verb in "xX":
        data = s.encode("utf-8", "surrogatepass")
        if f.prec is not None:
            data = data[:f.prec]
        hexes = ["%02x" % b for b in data]
        pre = "0x" if f.sharp else ""
        if f.space:
            out = " ".join(pre + h for h in hexes)
        else:
            out = pre + "".join(hexes) if hexes else ""
        if verb == "X":
            out = out.upper()
        return _pad(out, f.width, f.minus)
    return _bad_verb(verb, s)


def _fmt_arg(a: object, verb: str, f: _Flags) -> str:
    if verb == "T":
        return _pad("<nil>" if a is None else _gotype(a), f.width, f.minus)
    if a is None or a is MISSING:
        if verb == "v":
            return _pad("<nil>", f.width, f.minus)
        return _bad_verb(verb, None)
    if isinstance(a, bool):
        if verb in "vt":
            return _pad("true" if a else "false", f.width, f.minus)
        return _bad_verb(verb, a)
    if isinstance(a, int):
        if verb in "vdbcoOqxXU":
            return _fmt_int(a, verb, f)
        if verb in "eEfFgG":
            return _fmt_float(float(a), verb, f)
        return _bad_verb(verb, a)
    if isinstance(a, float):
        if verb in "veEfFgG":
            return _fmt_float(a, verb, f)
        if verb == "d" and a.is_integer():
            return _fmt_int(int(a), verb, f)
        if verb in "xX" and a == a and a not in (_INF, -_INF):
            return _pad(_hex_float(a, verb), f.width, f.minus)
        return _bad_verb(verb, a)
    if isinstance(a, str):
        return _fmt_str(a, verb, f)
    if isinstance(a, (list, tuple)):
        return "[" + " ".join(_fmt_elem(x, verb, f) for x in a) + "]"
    if isinstance(a, dict):
        return "map[" + " ".join(
            _fmt_elem(k, verb, f) + ":" + _fmt_elem(a[k], verb, f) for k in _sorted_keys(a)
        ) + "]"
    if verb in "vs":
        return _fmt_str(_fmt_v(a), verb, f)
    return _bad_verb(verb, a)


def _fmt_elem(a: object, verb: str, f: _Flags) -> str:
    """An element inside a list or map: a nil there prints as <nil> for any verb."""
    if a is None:
        return _pad("<nil>", f.width, f.minus)
    return _fmt_arg(a, verb, f)


def _hex_float(x: float, verb: str) -> str:
    """Go's %x for floats: 0x1.8p+00."""
    h = float.hex(abs(x))
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    s = "%sp%s%02d" % (mant, "-" if int(exp) < 0 else "+", abs(int(exp)))
    if _is_neg(x):
        s = "-" + s
    return s.upper() if verb == "X" else s


def _sprintf(fmt: str, args: tuple | list) -> str:
    """fmt.Sprintf for the verbs people use in templates (with %[n]v indexes)."""
    out: list[str] = []
    n = len(fmt)
    nargs = len(args)
    i = 0
    argi = 0
    reordered = False
    good = True

    def arg_number(i: int) -> tuple[bool, int]:
        nonlocal argi, reordered, good
        if i >= n or fmt[i] != "[":
            return False, i
        reordered = True
        close = fmt.find("]", i + 1)
        if close < 0 or n - i < 3:
            good = False
            return False, i + 1
        num = fmt[i + 1:close]
        if not num.isdigit() or not num.isascii():
            good = False
            return False, close + 1
        idx = int(num) - 1
        if 0 <= idx < nargs:
            argi = idx
            return True, close + 1
        good = False
        return True, close + 1

    def star() -> int | None:
        nonlocal argi
        val = args[argi] if argi < nargs else None
        argi += 1
        if isinstance(val, int) and not isinstance(val, bool):
            return val
        return None

    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        good = True
        f = _Flags()
        while i < n and fmt[i] in "+-# 0":
            c = fmt[i]
            if c == "-":
                f.minus, f.zero = True, False
            elif c == "+":
                f.plus = True
            elif c == "#":
                f.sharp = True
            elif c == " ":
                f.space = True
            elif not f.minus:
                f.zero = True
            i += 1
        after_index, i = arg_number(i)
        if i < n and fmt[i] == "*":
            i += 1
            f.width = star()
            if f.width is None:
                out.append("%!(BADWIDTH)")
            elif f.width < 0:
                f.minus, f.zero, f.width = True, False, -f.width
            after_index = False
        else:
            s = i
            while i < n and "0" <= fmt[i] <= "9":
                i += 1
            if i > s:
                f.width = int(fmt[s:i])
                after_index = False
        if i < n and fmt[i] == ".":
            i += 1
            if after_index:
                good = False
            after_index, i = arg_number(i)
            if i < n and fmt[i] == "*":
                i += 1
                f.prec = star()
                if f.prec is None:
                    out.append("%!(BADPREC)")
                elif f.prec < 0:
                    f.prec = None
                after_index = False
            else:
                s = i
                while i < n and "0" <= fmt[i] <= "9":
                    i += 1
                f.prec = int(fmt[s:i]) if i > s else 0
        if not after_index:
            after_index, i = arg_number(i)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good:
            out.append("%!" + verb + "(BADINDEX)")
        elif argi >= nargs:
            out.append("%!" + verb + "(MISSING)")
        else:
            out.append(_fmt_arg(args[argi], verb, f))
            argi += 1
    if not reordered and argi < nargs:
        extra = ", ".join(
            "<nil>" if a is None else _gotype(a) + "=" + _fmt_v(a) for a in args[argi:]
        )
        out.append("%!(EXTRA " + extra + ")")
    return "".join(out)


def _sprint(args: tuple | list) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    prev_str = False
    for k, a in enumerate(args):
        is_str = isinstance(a, str)
        if k and not is_str and not prev_str:
            out.append(" ")
        out.append(_fmt_v(a))
        prev_str = is_str
    return "".join(out)


# --------------------------------------------------------------------------- JSON like Go


class _JSONUnsupported(Exception):
    pass


def _json_float(x: float) -> str:
    if x != x or x in (_INF, -_INF):
        raise _JSONUnsupported
    if x == 0:
        return "-0" if _is_neg(x) else "0"
    sign = "-" if x < 0 else ""
    a = abs(x)
    digits, dp = _shortest_digits(a)
    if a < 1e-6 or a >= 1e21:
        s = _fmt_e(digits, dp)
        if s[-4:-1] == "e-0":  # e-07 -> e-7
            s = s[:-2] + s[-1]
        return sign + s
    return sign + _fmt_f(digits, dp)


def _json_str(s: str) -> str:
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20:
            esc = _JSON_ESC.get(ch)
            out.append(esc if esc else "\\u%04x" % o)
        elif o == 0x2028 or o == 0x2029:
            out.append("\\u%04x" % o)
        elif 0xD800 <= o < 0xE000:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_JSON_ESC = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_encode(v: object) -> str:
    """Compact JSON the way docker's ``json`` template function writes it.

    Like Go's encoder: no spaces, floats without a needless ``.0``, U+2028/2029
    escaped; dicts keep their insertion order (they stand for Go structs). Docker's
    function turns HTML escaping off, so <, > and & are written as they are.
    """
    parts: list[str] = []
    add = parts.append

    def enc(x: object) -> None:
        if x is None or x is MISSING:
            add("null")
        elif isinstance(x, str):
            add(_json_str(x))
        elif isinstance(x, bool):
            add("true" if x else "false")
        elif isinstance(x, int):
            add(str(x))
        elif isinstance(x, float):
            add(_json_float(x))
        elif isinstance(x, (list, tuple)):
            add("[")
            for k, item in enumerate(x):
                if k:
                    add(",")
                enc(item)
            add("]")
        elif isinstance(x, dict):
            add("{")
            for k, (key, item) in enumerate(x.items()):
                if k:
                    add(",")
                add(_json_str(key if isinstance(key, str) else _fmt_v(key)))
                add(":")
                enc(item)
            add("}")
        else:
            fields = getattr(x, "__dataclass_fields__", None)
            if fields is not None and not isinstance(x, type):
                enc({name: getattr(x, name) for name in fields})
            elif hasattr(x, "__dict__") and not isinstance(x, type):
                enc({k: val for k, val in vars(x).items() if not k.startswith("_")})
            else:
                add(_json_str(str(x)))

    try:
        enc(v)
    except _JSONUnsupported:
        return ""  # Go's encoder fails; docker's json func then prints nothing
    return "".join(parts)


# --------------------------------------------------------------------------- functions


class _CallError(Exception):
    """A function failed: reported as ``error calling NAME: MSG``."""


class _ArgError(Exception):
    """An argument has the wrong type: reported verbatim, like Go's validateType."""


def _want_str(v: object) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        raise _ArgError("invalid value; expected string")
    if isinstance(v, (bool, int, float)):
        return _fmt_v(v)
    raise _ArgError("wrong type for value; expected string; got " + _gotype(v))


def _want_int(v: object) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if v is None:
        raise _ArgError("invalid value; expected int")
    raise _ArgError("wrong type for value; expected int; got " + _gotype(v))


def _truth(v: object) -> bool:
    if v is None or v is MISSING:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def _f_json(v: object) -> str:
    return _json_encode(v)


def _f_split(s: object, sep: object) -> list:
    s, sep = _want_str(s), _want_str(sep)
    return list(s) if sep == "" else s.split(sep)


def _f_join(items: object, sep: object) -> str:
    sep = _want_str(sep)
    if items is None:
        return ""
    if not isinstance(items, (list, tuple)):
        raise _ArgError("wrong type for value; expected []string; got " + _gotype(items))
    return sep.join(x if isinstance(x, str) else _fmt_v(x) for x in items)


def _title_sep(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdecimal():
        return False
    return c.isspace()


def _f_title(s: object) -> str:
    s = _want_str(s)
    out = []
    prev = " "
    for ch in s:
        if _title_sep(prev):
            t = ch.title()
            out.append(t if len(t) == 1 else ch)
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _f_lower(s: object) -> str:
    return _want_str(s).lower()


def _f_upper(s: object) -> str:
    return _want_str(s).upper()


def _f_pad(s: object, before: object, after: object) -> str:
    s = _want_str(s)
    before, after = _want_int(before), _want_int(after)
    if s == "":
        return s
    return " " * before + s + " " * after


def _f_truncate(s: object, length: object) -> str:
    s = _want_str(s)
    length = _want_int(length)
    if len(s) < length:
        return s
    return s[:max(length, 0)]


def _f_print(*args: object) -> str:
    return _sprint(args)


def _f_printf(fmt: object, *args: object) -> str:
    return _sprintf(_want_str(fmt), args)


def _f_println(*args: object) -> str:
    return " ".join(_fmt_v(a) for a in args) + "\n"


def _f_len(v: object) -> int:
    if v is None:
        raise _CallError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise _CallError("len of type " + _gotype(v))


def _index_arg(i: object, cap: int) -> int:
    if isinstance(i, bool) or not isinstance(i, int):
        if isinstance(i, float) and i.is_integer():
            i = int(i)
        else:
            raise _CallError("cannot index slice/array with type " + _gotype(i))
    if i < 0 or i > cap:
        raise _CallError("index out of range: %d" % i)
    return i


def _f_index(item: object, *indexes: object) -> object:
    if item is None:
        raise _CallError("index of untyped nil")
    for idx in indexes:
        if item is None:
            raise _CallError("index of nil pointer")
        if isinstance(item, (list, tuple, str)):
            seq = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
            x = _index_arg(idx, len(seq))
            if x == len(seq):
                raise _CallError("index out of range: %d" % x)
            item = seq[x]
        elif isinstance(item, dict):
            if not isinstance(idx, str) and item and all(isinstance(k, str) for k in item):
                raise _CallError("value has type %s; should be string" % _gotype(idx))
            if idx in item:
                item = item[idx]
            elif not item or all(isinstance(val, str) for val in item.values()):
                # a map[string]string (labels, options...): Go yields the zero value ""
                item = ""
            else:
                item = None
        else:
            raise _CallError("can't index item of type " + _gotype(item))
    return item


def _f_slice(item: object, *indexes: object) -> object:
    if item is None:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError("too many slice indexes: %d" % len(indexes))
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
    elif not isinstance(item, (list, tuple)):
        raise _CallError("can't slice item of type " + _gotype(item))
    idx = [0, len(item)]
    for k, i in enumerate(indexes):
        x = _index_arg(i, len(item))
        if k < 2:
            idx[k] = x
        else:
            idx.append(x)
    if idx[0] > idx[1]:
        raise _CallError("invalid slice index: %d > %d" % (idx[0], idx[1]))
    if len(idx) == 3 and idx[1] > idx[2]:
        raise _CallError("invalid slice index: %d > %d" % (idx[1], idx[2]))
    return item[idx[0]:idx[1]]


def _kind(v: object) -> int:
    if v is None or v is MISSING:
        return 0
    if isinstance(v, bool):
        return 1
    if isinstance(v, (int, float)):
        return 2
    if isinstance(v, str):
        return 3
    return 4


def _f_eq(a: object, *others: object) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka and kb:
                raise _CallError("incompatible types for comparison")
            continue
        if ka == 0 or a == b:
            return True
    return False


def _f_ne(a: object, b: object) -> bool:
    return not _f_eq(a, b)


def _f_lt(a: object, b: object) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in (2, 3) or kb not in (2, 3):
        raise _CallError("invalid type for comparison")
    if ka != kb:
        raise _CallError("incompatible types for comparison")
    return a < b  # type: ignore[operator]


def _f_le(a: object, b: object) -> bool:
    return _f_lt(a, b) or _f_eq(a, b)


def _f_gt(a: object, b: object) -> bool:
    return not _f_le(a, b)


def _f_ge(a: object, b: object) -> bool:
    return not _f_lt(a, b)


def _f_not(v: object) -> bool:
    return not _truth(v)


def _printable_args(args: tuple) -> str:
    """text/template's evalArgs, used by html, js and urlquery."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if a is None else a for a in args])


def _f_html(*args: object) -> str:
    s = _printable_args(args)
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&#34;").replace("'", "&#39;").replace("\0", "\ufffd")
    )


_JS_ESC = {
    "\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
    "&": "\\u0026", "=": "\\u003D",
}


def _f_js(*args: object) -> str:
    out = []
    for ch in _printable_args(args):
        esc = _JS_ESC.get(ch)
        if esc:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("\\u%04X" % ord(ch))
    return "".join(out)


def _f_urlquery(*args: object) -> str:
    out = []
    for b in _printable_args(args).encode("utf-8", "surrogatepass"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_.~"):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def _f_call(fn: object, *args: object) -> object:
    if fn is None:
        raise _CallError("call of nil")
    if not callable(fn):
        raise _CallError("non-function of type " + _gotype(fn))
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 -- report like Go's call does
        raise _CallError(str(e)) from None


def _f_andor(*args: object) -> object:  # evaluated lazily by the executor
    raise AssertionError


def _want_list(v: object) -> list | tuple:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return v
    raise _ArgError("wrong type for value; expected []string; got " + _gotype(v))


_CONVERT = {"a": None, "s": _want_str, "i": _want_int, "L": _want_list}


def _spec(fn: object, params: str) -> tuple:
    """(function, min args, max args or -1, per-parameter converters).

    ``params`` has one letter per parameter: a=any, s=string, i=int, L=list;
    a trailing ``*`` makes the last one variadic, as in a Go ``...T`` signature.
    """
    variadic = params.endswith("*")
    params = params.rstrip("*")
    convs = tuple(_CONVERT[p] for p in params)
    lo = len(params) - 1 if variadic else len(params)
    return fn, lo, -1 if variadic else len(params), convs


_FUNCS: dict[str, tuple] = {
    "and": _spec(_f_andor, "aa*"),
    "or": _spec(_f_andor, "aa*"),
    "not": _spec(_f_not, "a"),
    "len": _spec(_f_len, "a"),
    "index": _spec(_f_index, "aa*"),
    "slice": _spec(_f_slice, "aa*"),
    "print": _spec(_f_print, "a*"),
    "printf": _spec(_f_printf, "sa*"),
    "println": _spec(_f_println, "a*"),
    "html": _spec(_f_html, "a*"),
    "js": _spec(_f_js, "a*"),
    "urlquery": _spec(_f_urlquery, "a*"),
    "call": _spec(_f_call, "aa*"),
    "eq": _spec(_f_eq, "aa*"),
    "ne": _spec(_f_ne, "aa"),
    "lt": _spec(_f_lt, "aa"),
    "le": _spec(_f_le, "aa"),
    "gt": _spec(_f_gt, "aa"),
    "ge": _spec(_f_ge, "aa"),
    # the docker CLI's template functions
    "json": _spec(_f_json, "a"),
    "split": _spec(_f_split, "ss"),
    "join": _spec(_f_join, "Ls"),
    "title": _spec(_f_title, "s"),
    "lower": _spec(_f_lower, "s"),
    "upper": _spec(_f_upper, "s"),
    "pad": _spec(_f_pad, "sii"),
    "truncate": _spec(_f_truncate, "si"),
}


def _header_passthrough(v: object, *_rest: object) -> str:
    return v if isinstance(v, str) else ""


# docker's HeaderFunctions: while rendering a table header these return the header
# text untouched (``pad`` is kept so headers stay aligned with padded columns).
_HEADER_FUNCS = {
    name: _spec(_header_passthrough, "aa*" if name == "index" else "a" * (_FUNCS[name][2]))
    for name in ("json", "split", "join", "title", "lower", "upper", "truncate", "index")
}


# --------------------------------------------------------------------------- executor


class _ExecError(Exception):
    def __init__(self, msg: str, node: _Node | None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.node = node


class _BreakLoop(Exception):
    pass


class _ContinueLoop(Exception):
    pass


class _HeaderDot:
    """The dot while rendering a table header: prints as nothing."""

    __slots__ = ()

    def __str__(self) -> str:
        return ""


def _default_header(name: str) -> str:
    """CreatedAt -> CREATED_AT, IPAddress -> IP_ADDRESS, ID -> ID."""
    out = []
    for k, ch in enumerate(name):
        if ch.isupper() and k:
            prev = name[k - 1]
            nxt = name[k + 1] if k + 1 < len(name) else ""
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append("_")
        out.append(ch.upper())
    return "".join(out)


class _State:
    __slots__ = ("out", "vars", "node", "header")

    def __init__(self, data: object, header: dict | None) -> None:
        self.out: list[str] = []
        self.vars: list[list] = [["$", data]]
        self.node: _Node | None = None
        self.header = header

    def error(self, msg: str) -> None:
        raise _ExecError(msg, self.node)

    # -- variables
    def var_value(self, name: str) -> object:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.error("undefined variable: " + name)

    def set_var(self, name: str, value: object) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.error("undefined variable: " + name)

    # -- statements
    def walk(self, dot: object, nodes: list) -> None:
        for node in nodes:
            t = type(node)
            if t is _Text:
                self.out.append(node.text)
            elif t is _Action:
                val = self.eval_pipeline(dot, node.pipe)
                if not node.pipe.decls:
                    self.node = node
                    self.out.append("<no value>" if val is MISSING else _fmt_v(val))
            elif t is _Control:
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_with(dot, node)
            elif node.word == "break":
                raise _BreakLoop
            else:
                raise _ContinueLoop

    def walk_if_with(self, dot: object, node: _Control) -> None:
        mark = len(self.vars)
        val = self.eval_pipeline(dot, node.pipe)
        if _truth(val):
            self.walk(val if node.kind == "with" else dot, node.body)
        elif node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def walk_range(self, dot: object, node: _Control) -> None:
        mark = len(self.vars)
        pipe = node.pipe
        val = self.eval_pipeline(dot, pipe)
        inner = len(self.vars)
        decls = pipe.decls
        ran = False

        def one(index: object, elem: object) -> None:
            if decls:
                if pipe.is_assign:
                    if len(decls) > 1:
                        self.set_var(decls[0], index)
                        self.set_var(decls[1], elem)
                    else:
                        self.set_var(decls[0], elem)
                else:
                    self.vars[inner - 1][1] = elem
                    if len(decls) > 1:
                        self.vars[inner - 2][1] = index
            try:
                self.walk(elem, node.body)
            except _ContinueLoop:
                pass
            finally:
                del self.vars[inner:]

        try:
            if val is MISSING or val is None:
                pass
            elif isinstance(val, (list, tuple)):
                for k, elem in enumerate(val):
                    ran = True
                    one(k, elem)
            elif isinstance(val, dict):
                for key in _sorted_keys(val):
                    ran = True
                    one(key, val[key])
            elif isinstance(val, int) and not isinstance(val, bool):
                if len(decls) > 1:
                    self.error("can't use %s to iterate over more than one variable" % val)
                for k in range(val):
                    ran = True
                    one(k, k)
            elif self.header is not None and isinstance(val, str):
                ran = True
                one(0, val)
            else:
                self.error("range can't iterate over " + _fmt_v(val))
        except _BreakLoop:
            pass
        if not ran and node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    # -- expressions
    def eval_pipeline(self, dot: object, pipe: _Pipe) -> object:
        value: object = _NOFINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = MISSING  # Go turns a nil interface into "no value"
        for name in pipe.decls:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def not_a_function(self, first: _Node, args: list, final: object) -> None:
        if args or final is not _NOFINAL:
            self.error("can't give argument to non-function " + str(first))

    def eval_command(self, dot: object, cmd: _Cmd, final: object) -> object:
        first = cmd.args[0]
        rest = cmd.args[1:]
        t = type(first)
        if t is _Field:
            self.node = first
            return self.field_chain(dot, first, first.idents, rest, final)
        if t is _Ident:
            return self.eval_function(dot, first, rest, final, cmd)
        if t is _Var:
            return self.eval_variable(dot, first, rest, final)
        if t is _Chain:
            return self.eval_chain(dot, first, rest, final)
        if t is _Pipe:
            self.node = first
            self.not_a_function(first, rest, final)
            return self.eval_pipeline(dot, first)
        self.node = first
        self.not_a_function(first, rest, final)
        if t is _Dot:
            return dot
        if t is _Nil:
            self.error("nil is not a command")
        return first.val

    def eval_arg(self, dot: object, node: _Node) -> object:
        """An argument to a function: Go hands a nil interface for "no value"."""
        self.node = node
        t = type(node)
        if t is _Literal:
            return node.val
        if t is _Dot:
            val = dot
        elif t is _Field:
            val = self.field_chain(dot, node, node.idents, (), _NOFINAL)
        elif t is _Var:
            val = self.eval_variable(dot, node, (), _NOFINAL)
        elif t is _Pipe:
            val = self.eval_pipeline(dot, node)
        elif t is _Ident:
            val = self.eval_function(dot, node, (), _NOFINAL)
        elif t is _Chain:
            val = self.eval_chain(dot, node, (), _NOFINAL)
        else:  # nil
            return None
        return None if val is MISSING else val

    def eval_variable(self, dot: object, node: _Var, args: list, final: object) -> object:
        self.node = node
        value = self.var_value(node.name)
        if not node.idents:
            self.not_a_function(node, args, final)
            return value
        return self.field_chain(value, node, node.idents, args, final)

    def eval_chain(self, dot: object, node: _Chain, args: list, final: object) -> object:
        self.node = node
        if isinstance(node.node, _Nil):
            self.error("indirection through explicit nil in " + str(node))
        value = self.eval_arg(dot, node.node)
        self.node = node
        if value is None:
            value = MISSING
        return self.field_chain(value, node, node.idents, args, final)

    def field_chain(self, receiver: object, node: _Node, idents: tuple,
                    args: list | tuple, final: object) -> object:
        if self.header is not None:
            return self.header_for(idents)
        last = len(idents) - 1
        for k, name in enumerate(idents):
            if k < last:
                receiver = self.field(receiver, name, (), _NOFINAL)
            else:
                receiver = self.field(receiver, name, args, final)
        return receiver

    def field(self, receiver: object, name: str, args: list | tuple, final: object) -> object:
        has_args = bool(args) or final is not _NOFINAL
        if receiver is MISSING:
            return MISSING
        if isinstance(receiver, dict):
            if has_args:
                self.error(name + " is not a method but has arguments")
            return receiver.get(name, MISSING)
        if receiver is None:
            self.error("nil pointer evaluating interface {}." + name)
        if isinstance(receiver, (str, int, float, list, tuple)):
            # a value taken out of JSON-shaped data: Go knows it as interface {}
            self.error("can't evaluate field %s in type interface {}" % name)
        if name.startswith("_"):
            self.error("can't evaluate field %s in type %s" % (name, _gotype(receiver)))
        try:
            val = getattr(receiver, name)
        except AttributeError:
            self.error("can't evaluate field %s in type %s" % (name, _gotype(receiver)))
        if callable(val) and getattr(val, "__self__", None) is receiver:
            argv = [self.eval_arg(receiver, a) for a in args]  # Go evaluates them with the outer dot
            if final is not _NOFINAL:
                argv.append(None if final is MISSING else final)
            try:
                return val(*argv)
            except TypeError as e:
                self.error("error calling %s: %s" % (name, e))
        if has_args:
            self.error(name + " has arguments but cannot be invoked as function")
        return val

    def header_for(self, idents: tuple) -> str:
        header = self.header
        key = ".".join(idents)
        if key in header:
            return header[key]
        if idents[-1] in header:
            return header[idents[-1]]
        return _default_header(idents[-1])

    def eval_function(self, dot: object, node: _Ident, args: list | tuple, final: object,
                      cmd: _Node | None = None) -> object:
        self.node = node
        name = node.name
        spec = None
        if self.header is not None:
            spec = _HEADER_FUNCS.get(name)
        if spec is None:
            spec = _FUNCS[name]
        fn, lo, hi, convs = spec
        count = len(args) + (final is not _NOFINAL)
        if count < lo or (hi >= 0 and count > hi):
            if lo == hi:
                self.error("wrong number of args for %s: want %d got %d" % (name, lo, count))
            self.error("wrong number of args for %s: want at least %d got %d" % (name, lo, count))
        if name == "and" or name == "or":
            want = name == "or"
            val: object = None
            for a in args:
                val = self.eval_arg(dot, a)
                if _truth(val) == want:
                    return val
            if final is not _NOFINAL:
                val = None if final is MISSING else final
            return val
        last = len(convs) - 1
        argv = []
        for k, a in enumerate(args):
            val = self.eval_arg(dot, a)
            conv = convs[min(k, last)]
            if conv is not None:
                if type(a) is _Nil and conv is not _want_list:
                    self.error("cannot assign nil to " + ("int" if conv is _want_int else "string"))
                try:
                    val = conv(val)
                except _ArgError as e:
                    self.node = a
                    self.error(str(e))
            argv.append(val)
        if final is not _NOFINAL:
            val = None if final is MISSING else final
            conv = convs[min(len(args), last)]
            if conv is not None:
                try:
                    val = conv(val)
                except _ArgError as e:
                    self.node = cmd or node
                    self.error(str(e))
            argv.append(val)
        self.node = cmd or node
        try:
            return fn(*argv)
        except _ArgError as e:
            self.error(str(e))
        except _CallError as e:
            self.error("error calling %s: %s" % (name, e))


# --------------------------------------------------------------------------- public API


class Template:
    """A parsed template; :meth:`render` may be called any number of times."""

    __slots__ = ("source", "_root")

    def __init__(self, source: str, root: list) -> None:
        self.source = source
        self._root = root

    def __repr__(self) -> str:
        return "Template(%r)" % self.source

    def render(self, data: object) -> str:
        """Execute against ``data`` (a dict keyed like Docker's JSON, or an object)."""
        state = _State(MISSING if data is None else data, None)
        try:
            state.walk(state.vars[0][1], self._root)
        except _ExecError as e:
            raise TemplateError(self._error_text(e)) from None
        except (_BreakLoop, _ContinueLoop):  # pragma: no cover -- parser forbids it
            pass
        return "".join(state.out)

    def render_header(self, headers: dict[str, str] | None = None) -> str:
        """The table header line: each field replaced by its column title.

        Mirrors docker's header pass: fields evaluate to ``headers[name]`` (or the
        name upper-cased with underscores), formatting functions leave the title
        alone, and an error just stops the header where it happened.
        """
        state = _State(_HeaderDot(), dict(headers or {}))
        try:
            state.walk(state.vars[0][1], self._root)
        except (_ExecError, _BreakLoop, _ContinueLoop):
            pass
        return "".join(state.out)

    def _error_text(self, e: _ExecError) -> str:
        node = e.node
        if node is None:
            return "template: :1:0: executing \"\": " + e.msg
        pos = node.pos
        nl = self.source.rfind("\n", 0, pos)
        col = pos if nl < 0 else pos - nl - 1
        line = self.source.count("\n", 0, pos) + 1
        ctx = str(node)
        if len(ctx) > 20:
            ctx = ctx[:20] + "..."
        return 'template: :%d:%d: executing "" at <%s>: %s' % (line, col, ctx, e.msg)


_CACHE: dict[str, Template] = {}
_CACHE_MAX = 64


def compile_template(text: str) -> Template:
    """Parse ``text`` (Go text/template syntax); raises InvalidArgument on bad syntax."""
    tmpl = _CACHE.get(text)
    if tmpl is not None:
        return tmpl
    root = _Parser(text, _lex(text)).parse()
    tmpl = Template(text, root)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[text] = tmpl
    return tmpl


def _cell_width(s: str) -> int:
    if s.isascii():
        return len(s)
    import unicodedata  # only for non-ASCII cells

    w = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def tabwrite(text: str, minwidth: int = TABLE_MINWIDTH, padding: int = TABLE_PADDING) -> str:
    """Align tab-terminated cells like Go's text/tabwriter with padchar ' '.

    A column is a run of consecutive lines that all have a tab-terminated cell at
    that index; its width is the widest cell plus ``padding`` (at least
    ``minwidth``). The text after a line's last tab is not part of any column and
    is never padded.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    widths_of = [[_cell_width(c) for c in cells] for cells in lines]
    nlines = len(lines)
    out: list[str] = []
    widths: list[int] = []

    def write_lines(l0: int, l1: int) -> None:
        ncols = len(widths)
        for i in range(l0, l1):
            cells = lines[i]
            cw = widths_of[i]
            for j, cell in enumerate(cells):
                out.append(cell)
                if j < ncols:
                    out.append(" " * (widths[j] - cw[j]))
            if i + 1 < nlines:
                out.append("\n")

    def fmt(l0: int, l1: int) -> None:
        column = len(widths)
        this = l0
        while this < l1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(l0, this)
            l0 = this
            width = minwidth
            while this < l1 and column < len(lines[this]) - 1:
                w = widths_of[this][column] + padding
                if w > width:
                    width = w
                this += 1
            widths.append(width)
            fmt(l0, this)
            widths.pop()
            l0 = this
        write_lines(l0, l1)

    fmt(0, nlines)
    return "".join(out)


def format_rows(
    fmt: str | None,
    rows: list,
    *,
    default_table: str,
    headers: dict[str, str] | None = None,
    minwidth: int = TABLE_MINWIDTH,
) -> str:
    """Render ``rows`` for a ``--format`` value the way the docker CLI does.

    * ``None``, ``""`` or ``"table"``: use ``default_table``;
    * ``"table ..."``: a header line (fields replaced by ``headers`` titles) and one
      line per row, tab-separated columns aligned like docker's tabwriter;
    * ``"json"``: one compact JSON object per row (docker's ``{{json .}}``);
    * anything else: one rendered line per row, no header.

    The two-character sequences ``\\t`` and ``\\n`` become a real tab and newline
    before parsing, and surrounding spaces are trimmed, as docker does. Errors
    raise InvalidArgument (``template parsing error: ...``).
    """
    if not fmt or fmt == "table":
        fmt = default_table
    is_table = fmt.startswith("table")
    if is_table:
        body = fmt[len("table"):]
    elif fmt == "json":
        body = "{{json .}}"
    else:
        body = fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = compile_template(body)
    out: list[str] = []
    for row in rows:
        try:
            out.append(tmpl.render(row))
        except TemplateError as e:
            raise TemplateError("template parsing error: " + e.message) from None
        out.append("\n")
    if not is_table:
        return "".join(out)
    text = tmpl.render_header(headers) + "\n" + "".join(out)
    return tabwrite(text, minwidth, TABLE_PADDING)
