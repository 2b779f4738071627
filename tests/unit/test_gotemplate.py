"""Tests for hoist.cli.gotemplate: Go text/template as docker's --format uses it.

Expected outputs were worked out from Go's documented behaviour (text/template,
fmt, encoding/json, text/tabwriter) and the docker CLI's formatter.
"""
from __future__ import annotations

import pytest

from hoist.cli.gotemplate import (
    MISSING,
    Template,
    TemplateError,
    compile_template,
    format_rows,
    tabwrite,
)
from hoist.errors import InvalidArgument

IMAGE = {
    "Repository": "nginx",
    "Tag": "latest",
    "ID": "sha256:abc",
    "Size": 1234,
    "RepoTags": ["nginx:latest", "nginx:1.25"],
}

CONTAINER = {
    "Name": "/web",
    "State": "running",
    "Config": {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/bin", "X=<a&b>"],
        "Labels": {"com.example": "v1", "b": "2"},
        "Volumes": None,
        "ExposedPorts": {},
    },
    "Labels": {"z": "last", "a": "first"},
    "Ports": [{"PrivatePort": 80, "Type": "tcp"}],
}


def render(text: str, data: object = None) -> str:
    return compile_template(text).render(data)


# --------------------------------------------------------------------------- the docker cases


@pytest.mark.parametrize(
    "text,data,expected",
    [
        ("{{.Repository}}:{{.Tag}}", IMAGE, "nginx:latest"),
        ("{{.ID}}\t{{.Size}}", IMAGE, "sha256:abc\t1234"),
        ("{{range .RepoTags}}{{.}} {{end}}", IMAGE, "nginx:latest nginx:1.25 "),
        ('{{index .Config.Labels "com.example"}}', CONTAINER, "v1"),
        ('{{if eq .State "running"}}up{{else}}down{{end}}', CONTAINER, "up"),
        ('{{if eq .State "running"}}up{{else}}down{{end}}', {"State": "exited"}, "down"),
        ("{{json .Config.Env}}", CONTAINER, '["PATH=/usr/bin","X=<a&b>"]'),
        ("{{.Config.Cmd}}", CONTAINER, "[sh]"),
        ('{{join .RepoTags ","}}', IMAGE, "nginx:latest,nginx:1.25"),
        ("{{.Missing}}", IMAGE, "<no value>"),
        ("{{.Config.Volumes}}", CONTAINER, "<no value>"),
        ('{{printf "%-10s|" .Name}}', CONTAINER, "/web      |"),
        ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", CONTAINER, "a=first;z=last;"),
        ("{{.Labels}}", CONTAINER, "map[a:first z:last]"),
        ("{{(index .Ports 0).PrivatePort}}/{{(index .Ports 0).Type}}", CONTAINER, "80/tcp"),
        ("{{.Name | printf \"%s!\"}}", CONTAINER, "/web!"),
        ("{{json .Config.ExposedPorts}}", CONTAINER, "{}"),
    ],
)
def test_docker_cases(text, data, expected):
    assert render(text, data) == expected


def test_json_of_whole_row_is_compact_and_keeps_order():
    row = {"Repository": "nginx", "Tag": "latest", "Size": 1.0, "Labels": None, "N": [1, 2.5]}
    assert render("{{json .}}", row) == (
        '{"Repository":"nginx","Tag":"latest","Size":1,"Labels":null,"N":[1,2.5]}'
    )


# --------------------------------------------------------------------------- syntax


def test_plain_text_and_whitespace_in_actions():
    assert render("hello", {}) == "hello"
    assert render("{{ .A }}|{{.A}}|{{   .A\t}}", {"A": "x"}) == "x|x|x"
    assert render("{{\n.A\n}}", {"A": "x"}) == "x"


def test_trim_markers():
    assert render("a  {{- .A -}}  b", {"A": "x"}) == "axb"
    assert render("a \n {{- .A }} \n b", {"A": "x"}) == "ax \n b"
    assert render("a {{ .A -}} \n\t b", {"A": "x"}) == "a xb"
    # "{{-3}}" is the number -3, not a trim marker
    assert render("a {{-3}} b", {}) == "a -3 b"


def test_comments():
    assert render("a{{/* a comment */}}b", {}) == "ab"
    assert render("a {{- /* spaced */ -}} b", {}) == "ab"
    assert render("{{/* multi\nline */}}x", {}) == "x"


def test_dot_root_and_nested_fields():
    data = {"A": {"B": {"C": "deep"}}, "Name": "n"}
    assert render("{{.A.B.C}}", data) == "deep"
    assert render("{{with .A}}{{.B.C}}-{{$.Name}}{{end}}", data) == "deep-n"
    assert render("{{.A.Missing.Deeper}}", data) == "<no value>"
    assert render("{{.}}", "plain") == "plain"
    assert render("{{.}}", None) == "<no value>"


def test_literals():
    assert render('{{"a\\tb\\u00e9"}}', {}) == "a\tbé"
    assert render("{{`raw\\n`}}", {}) == "raw\\n"
    assert render("{{1}} {{1.5}} {{1e3}} {{0x10}} {{-2}} {{'a'}}", {}) == "1 1.5 1000 16 -2 97"
    assert render("{{true}} {{false}}", {}) == "true false"
    assert render('{{print nil}}', {}) == "<nil>"


def test_if_else_if_chain():
    text = "{{if .A}}a{{else if .B}}b{{else if .C}}c{{else}}none{{end}}"
    assert render(text, {"A": 1}) == "a"
    assert render(text, {"B": "x"}) == "b"
    assert render(text, {"C": [1]}) == "c"
    assert render(text, {"A": 0, "B": "", "C": []}) == "none"


@pytest.mark.parametrize(
    "value,truth",
    [(False, False), (0, False), (0.0, False), ("", False), (None, False), ([], False),
     ({}, False), (True, True), (1, True), (-1, True), ("0", True), ([0], True), ({"k": 0}, True)],
)
def test_truthiness(value, truth):
    assert render("{{if .V}}T{{else}}F{{end}}", {"V": value}) == ("T" if truth else "F")


def test_if_on_missing_key_is_false():
    assert render("{{if .Nope}}T{{else}}F{{end}}", {}) == "F"


def test_with_and_else():
    assert render("{{with .A}}<{{.}}>{{end}}", {"A": "x"}) == "<x>"
    assert render("{{with .A}}<{{.}}>{{else}}empty{{end}}", {"A": ""}) == "empty"
    assert render("{{with $v := .A}}{{$v}}{{end}}", {"A": "y"}) == "y"


def test_range_forms():
    data = {"L": ["a", "b", "c"], "M": {"b": 2, "a": 1}, "E": []}
    assert render("{{range $i, $v := .L}}{{$i}}={{$v}} {{end}}", data) == "0=a 1=b 2=c "
    assert render("{{range $v := .L}}{{$v}}{{end}}", data) == "abc"
    assert render("{{range $k, $v := .M}}{{$k}}:{{$v}},{{end}}", data) == "a:1,b:2,"
    assert render("{{range .M}}{{.}}{{end}}", data) == "12"
    assert render("{{range .E}}x{{else}}empty{{end}}", data) == "empty"
    assert render("{{range .Nope}}x{{else}}none{{end}}", data) == "none"
    assert render("{{range $i, $v := .L}}{{if $i}},{{end}}{{$v}}{{end}}", data) == "a,b,c"


def test_range_break_and_continue():
    data = {"L": [1, 2, 3, 4]}
    assert render("{{range .L}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", data) == "12"
    assert render("{{range .L}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", data) == "134"


def test_variables_and_scope():
    assert render('{{$x := "a"}}{{$x}}{{$x = "b"}}{{$x}}', {}) == "ab"
    assert render("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", {}) == "2"
    assert render("{{$}}", {"A": 1}) == "map[A:1]"
    assert render("{{range .L}}{{$.N}}{{end}}", {"L": [1, 2], "N": "n"}) == "nn"
    assert render("{{$c := .Config}}{{$c.Cmd}}", CONTAINER) == "[sh]"


def test_pipelines_pass_the_final_argument():
    assert render('{{.A | printf "%s-%s" "x"}}', {"A": "y"}) == "x-y"
    assert render('{{join .L "," | upper}}', {"L": ["a", "b"]}) == "A,B"
    assert render('{{.A | len | printf "%03d"}}', {"A": "abcd"}) == "004"
    assert render("{{(len .L)}}", {"L": [1, 2]}) == "2"


# --------------------------------------------------------------------------- value printing


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, "<no value>"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (1.0, "1"),
        (1000000.0, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (["a", "b", "c"], "[a b c]"),
        ([], "[]"),
        ([1, None, [2, "x"]], "[1 <nil> [2 x]]"),
        ({"b": 2, "a": {"c": [1]}}, "map[a:map[c:[1]] b:2]"),
        ({}, "map[]"),
    ],
)
def test_value_printing(value, expected):
    assert render("{{.V}}", {"V": value}) == expected


# --------------------------------------------------------------------------- functions


def test_json_function_matches_go_encoding():
    assert render("{{json .}}", {"B": True, "N": None, "F": 0.5, "I": 3}) == (
        '{"B":true,"N":null,"F":0.5,"I":3}'
    )
    assert render("{{json .S}}", {"S": 'q"\\\n\t\u2028é'}) == '"q\\"\\\\\\n\\t\\u2028é"'
    assert render("{{json .S}}", {"S": "\x01"}) == '"\\u0001"'
    # docker's json function turns Go's HTML escaping off
    assert render("{{json .S}}", {"S": "<a&b>"}) == '"<a&b>"'
    assert render("{{json .F}} {{json .G}} {{json .H}}", {"F": 1e21, "G": 1e-7, "H": 1e6}) == (
        "1e+21 1e-7 1000000"
    )
    assert render("{{json .Missing}}", {}) == "null"


def test_string_functions():
    assert render('{{split .S ":"}}', {"S": "a:b:c"}) == "[a b c]"
    assert render('{{index (split .S ":") 1}}', {"S": "a:b:c"}) == "b"
    assert render("{{lower .S}} {{upper .S}}", {"S": "MiXed"}) == "mixed MIXED"
    assert render('{{title "hello wide-world foo_bar"}}', {}) == "Hello Wide-World Foo_bar"
    assert render("{{pad .S 2 3}}|", {"S": "x"}) == "  x   |"
    assert render('{{pad "" 2 3}}|', {}) == "|"
    assert render("{{truncate .S 3}} {{truncate .S 10}}", {"S": "abcdef"}) == "abc abcdef"
    assert render('{{html "<a href=\'x\'>&</a>"}}', {}) == "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    assert render('{{urlquery "a b&c=d/é"}}', {}) == "a+b%26c%3Dd%2F%C3%A9"
    assert render('{{js "it\'s <b>"}}', {}) == "it\\'s \\u003Cb\\u003E"


def test_print_functions():
    assert render('{{print "a" "b" 1 2 "c"}}', {}) == "ab1 2c"
    assert render('{{println "a" 1}}', {}) == "a 1\n"
    assert render('{{printf "%d items" 3}}', {}) == "3 items"


@pytest.mark.parametrize(
    "fmt,args,expected",
    [
        ('"%s"', ".S", "abc"),
        ('"%5s|"', ".S", "  abc|"),
        ('"%-10s|"', ".S", "abc       |"),
        ('"%.2s"', ".S", "ab"),
        ('"%q"', ".S", '"abc"'),
        ('"%v"', ".S", "abc"),
        ('"%x"', ".S", "616263"),
        ('"%d"', ".I", "42"),
        ('"%5d|%-5d|%05d"', ".I .I .I", "   42|42   |00042"),
        ('"%+d"', ".I", "+42"),
        ('"%x %X %o %b"', ".I .I .I .I", "2a 2A 52 101010"),
        ('"%#x"', ".I", "0x2a"),
        ('"%c"', "65", "A"),
        ('"%t %t"', ".T .F", "true false"),
        ('"%v"', ".F", "false"),
        ('"%.2f"', ".R", "3.14"),
        ('"%8.3f|"', ".R", "   3.142|"),
        ('"%e"', ".R", "3.141590e+00"),
        ('"%g"', ".R", "3.14159"),
        ('"%v"', ".L", "[a b]"),
        ('"%q"', ".L", '["a" "b"]'),
        ('"%s=%s"', ".S", "abc=%!s(MISSING)"),
        ('"%d"', ".S", "%!d(string=abc)"),
        ('"%s"', ".S .I", "abc%!(EXTRA int=42)"),
        ('"100%%"', "", "100%"),
        ('"%[2]d %[1]s"', ".S .I", "42 abc"),
        ('"%*d|"', "4 .I", "  42|"),
    ],
)
def test_printf_verbs(fmt, args, expected):
    data = {"S": "abc", "I": 42, "T": True, "F": False, "R": 3.14159, "L": ["a", "b"]}
    assert render("{{printf %s %s}}" % (fmt, args), data) == expected


def test_len_index_slice():
    data = {"L": ["a", "b", "c"], "M": {"k": "v"}, "S": "héllo", "N": {"a": {"b": [10, 20]}}}
    assert render("{{len .L}} {{len .M}} {{len .S}}", data) == "3 1 6"  # Go counts bytes
    assert render("{{index .L 1}}", data) == "b"
    assert render('{{index .N "a" "b" 1}}', data) == "20"
    assert render('{{index .M "k"}}', data) == "v"
    assert render("{{slice .L 1}} {{slice .L 0 2}} {{slice .S 1 3}}", data) == "[b c] [a b] él"


def test_index_missing_key():
    # a map of strings (labels) yields "" like Go's map[string]string ...
    assert render('{{index .Labels "nope"}}', {"Labels": {"a": "b"}}) == ""
    # ... any other map gives Go's "no value"
    assert render('{{index .M "nope"}}', {"M": {"a": {"x": 1}}}) == "<no value>"


def test_comparisons():
    data = {"S": "running", "N": 5, "F": 2.5}
    assert render('{{eq .S "running"}} {{eq .S "a" "b" "running"}} {{eq .S "a" "b"}}', data) == (
        "true true false"
    )
    assert render('{{ne .S "exited"}} {{ne .N 5}}', data) == "true false"
    assert render("{{lt .N 10}} {{le .N 5}} {{gt .N 5}} {{ge .N 5}}", data) == "true true false true"
    assert render('{{lt "a" "b"}} {{lt .F 3}} {{eq .N 5.0}}', data) == "true true true"
    assert render('{{eq .Missing "x"}}', data) == "false"


def test_logic():
    assert render('{{and 1 "x" 0}}|{{and 1 "x"}}|{{or 0 "" "y"}}|{{or 0 ""}}|{{not 0}}', {}) == (
        "0|x|y||true"
    )
    assert render("{{if and .A .B}}both{{else}}no{{end}}", {"A": 1, "B": 0}) == "no"
    assert render("{{if or .A .B}}one{{end}}", {"A": 0, "B": "x"}) == "one"
    # and/or short-circuit: the failing call after a decided operand is never made
    assert render("{{or .A (index .Nil 1)}}", {"A": "set", "Nil": None}) == "set"


# --------------------------------------------------------------------------- objects


class _Inner:
    def __init__(self) -> None:
        self.Value = "inner"


class _Obj:
    def __init__(self) -> None:
        self.Name = "obj"
        self.Inner = _Inner()
        self.Tags = ["t1", "t2"]
        self.Nothing = None
        self._secret = "hidden"

    def Greet(self, who: str = "world") -> str:
        return "hi " + who


def test_objects_by_attribute():
    obj = _Obj()
    assert render("{{.Name}} {{.Inner.Value}} {{.Tags}}", obj) == "obj inner [t1 t2]"
    assert render('{{.Greet}} {{.Greet "bob"}}', obj) == "hi world hi bob"
    assert render("{{.Nothing}}", obj) == "<no value>"
    assert render("{{range .Tags}}{{.}};{{end}}", obj) == "t1;t2;"


def test_missing_attribute_is_an_error():
    with pytest.raises(TemplateError) as exc:
        render("{{.Nope}}", _Obj())
    assert "can't evaluate field Nope in type _Obj" in str(exc.value)
    assert str(exc.value).startswith('template: :1:2: executing "" at <.Nope>')
    with pytest.raises(TemplateError):
        render("{{._secret}}", _Obj())


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text,message",
    [
        ("{{.Name", "unclosed action"),
        ("{{foo .Name}}", 'function "foo" not defined'),
        ("{{if .Name}}x", "unexpected EOF"),
        ("{{range .L}}x", "unexpected EOF"),
        ("x{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{$y}}", 'undefined variable "$y"'),
        ("{{if}}{{end}}", "missing value for if"),
        ("{{}}", "missing value for command"),
        ('{{"abc}}', "unterminated quoted string"),
        ("{{.Name!}}", "bad character U+0021 '!'"),
        ("{{/* open", "unclosed comment"),
        ("{{break}}", "{{break}} outside {{range}}"),
        ('{{.A | "x"}}', "non executable command in pipeline stage 2"),
        ("{{(.A}}", "unclosed left paren"),
        ("a\nb\n{{.X", "template: :3: unclosed action"),
    ],
)
def test_syntax_errors(text, message):
    with pytest.raises(InvalidArgument) as exc:
        compile_template(text)
    text_of_error = str(exc.value)
    assert text_of_error.startswith("template parsing error: template: :")
    assert message in text_of_error


def test_execution_errors():
    cases = [
        ("{{.A.B}}", {"A": None}, "nil pointer evaluating interface {}.B"),
        ("{{.A.B}}", {"A": "str"}, "can't evaluate field B in type interface {}"),
        ("{{index .L 5}}", {"L": [1]}, "error calling index: index out of range: 5"),
        ('{{eq .A "x"}}', {"A": 1}, "error calling eq: incompatible types for comparison"),
        ("{{len .A}}", {"A": 3}, "error calling len: len of type int"),
        ("{{join .A \",\"}}", {"A": "s"}, "wrong type for value; expected []string; got string"),
        ("{{upper .Missing}}", {}, "invalid value; expected string"),
        ("{{printf}}", {}, "wrong number of args for printf: want at least 1 got 0"),
        ("{{.A 1}}", {"A": 1}, "A is not a method but has arguments"),
        ("{{range .A}}{{end}}", {"A": "s"}, "range can't iterate over s"),
    ]
    for text, data, message in cases:
        with pytest.raises(TemplateError) as exc:
            render(text, data)
        assert message in str(exc.value), text
        assert isinstance(exc.value, InvalidArgument)


def test_template_is_reusable():
    tmpl = compile_template("{{.A}}-{{range .L}}{{.}}{{end}}")
    assert isinstance(tmpl, Template)
    assert tmpl.render({"A": 1, "L": [1, 2]}) == "1-12"
    assert tmpl.render({"A": 2, "L": []}) == "2-"
    assert compile_template("{{.A}}-{{range .L}}{{.}}{{end}}") is tmpl


def test_missing_sentinel_is_falsy():
    assert not MISSING
    assert repr(MISSING) == "<no value>"


# --------------------------------------------------------------------------- tables

ROWS = [
    {"Repository": "nginx", "Tag": "latest", "ID": "abc123", "CreatedAt": "2 days ago"},
    {"Repository": "averyveryverylongrepositoryname", "Tag": "1.2.3-alpine", "ID": "def",
     "CreatedAt": "1 hour ago"},
]
HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID"}


def test_table_alignment():
    out = format_rows(
        "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", ROWS, default_table="", headers=HEADERS
    )
    assert out == (
        "REPOSITORY                        TAG            IMAGE ID\n"
        "nginx                             latest         abc123\n"
        "averyveryverylongrepositoryname   1.2.3-alpine   def\n"
    )


def test_table_minimum_width_and_real_tabs():
    rows = [{"ID": "a", "Tag": "t"}, {"ID": "bb", "Tag": "tt"}]
    out = format_rows("table {{.ID}}\t{{.Tag}}", rows, default_table="", headers={})
    assert out == "ID        TAG\na         t\nbb        tt\n"
    out = format_rows("table {{.ID}}\t{{.Tag}}", rows, default_table="", headers={}, minwidth=20)
    assert out == "ID" + " " * 18 + "TAG\na" + " " * 19 + "t\nbb" + " " * 18 + "tt\n"


def test_table_header_fallback_and_functions():
    out = format_rows(
        "table {{upper .Repository}}\\t{{.CreatedAt}}\\t{{truncate .ID 2}}",
        ROWS[:1],
        default_table="",
        headers=HEADERS,
    )
    assert out == (
        "REPOSITORY   CREATED_AT   IMAGE ID\n"
        "NGINX        2 days ago   ab\n"
    )


def test_table_without_rows_prints_the_header():
    out = format_rows(None, [], default_table="table {{.ID}}\\t{{.Tag}}", headers=HEADERS)
    assert out == "IMAGE ID   TAG\n"


def test_default_table_is_used_for_empty_and_bare_table():
    expected = format_rows(
        "table {{.ID}}\\t{{.Tag}}", ROWS, default_table="", headers=HEADERS
    )
    for fmt in (None, "", "table"):
        assert format_rows(fmt, ROWS, default_table="table {{.ID}}\\t{{.Tag}}",
                           headers=HEADERS) == expected


def test_json_format():
    out = format_rows("json", ROWS[:1], default_table="table {{.ID}}", headers=HEADERS)
    assert out == (
        '{"Repository":"nginx","Tag":"latest","ID":"abc123","CreatedAt":"2 days ago"}\n'
    )


def test_custom_format_has_no_header_and_unescapes():
    out = format_rows("{{.ID}}\\t{{.Tag}}", ROWS, default_table="", headers=HEADERS)
    assert out == "abc123\tlatest\ndef\t1.2.3-alpine\n"
    out = format_rows("  {{.ID}}\\n  ", ROWS[:1], default_table="", headers=HEADERS)
    assert out == "abc123\n\n"
    assert format_rows("{{.ID}}", [], default_table="", headers={}) == ""


def test_format_rows_errors_say_template_parsing_error():
    with pytest.raises(InvalidArgument) as exc:
        format_rows("{{.ID", ROWS, default_table="", headers={})
    assert str(exc.value).startswith("template parsing error: template: :1:")
    with pytest.raises(InvalidArgument) as exc:
        format_rows("{{.ID.X}}", ROWS, default_table="", headers={})
    assert str(exc.value).startswith("template parsing error: template: :1:")


def test_tabwrite_columns_are_blocks_of_lines():
    # the second column only spans the lines that have it (Go's elastic tabstops)
    text = "a\tb\tc\nlonger-cell\td\n\nx\ty\n"
    assert tabwrite(text, 0, 1) == "a           b c\nlonger-cell d\n\nx y\n"
