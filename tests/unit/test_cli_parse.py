"""The hoist CLI without a daemon: argument parsing, humanised sizes and times, and the
output of each command for canned Engine API answers (a fake client stands in for the
daemon). The HTTP client itself is exercised against a tiny fake server on a unix
socket in a temporary directory."""
from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
import time

import pytest

from hoist.cli import output as out
from hoist.cli.main import main
from hoist.errors import Conflict, HoistError, InvalidArgument, NotFound, Unavailable

try:  # the real template engine; a tiny stand-in keeps these tests independent of it
    from hoist.cli import gotemplate as _gt  # noqa: F401
    HAVE_GOTEMPLATE = True
except ImportError:  # pragma: no cover
    HAVE_GOTEMPLATE = False


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def gotemplate_shim(monkeypatch):
    """If hoist.cli.gotemplate is not there, provide the tiny subset these tests use."""
    if HAVE_GOTEMPLATE:
        yield
        return
    import re
    import types

    mod = types.ModuleType("hoist.cli.gotemplate")

    class T:
        def __init__(self, text):
            self.text = text

        def render(self, data):
            def field(m):
                v = data
                for part in m.group(1).split(".")[1:]:
                    v = v[part] if isinstance(v, dict) else getattr(v, part)
                return str(v)
            return re.sub(r"\{\{\s*(\.[\w.]*)\s*\}\}", field, self.text)

    def format_rows(fmt, rows, *, default_table, headers):
        body = fmt.replace("\\t", "\t")
        return "".join(T(body).render(r) + "\n" for r in rows)

    mod.compile_template = T
    mod.format_rows = format_rows
    monkeypatch.setitem(sys.modules, "hoist.cli.gotemplate", mod)
    import hoist.cli
    monkeypatch.setattr(hoist.cli, "gotemplate", mod, raising=False)
    yield


# ---------------------------------------------------------------------- fake client


class FakeResponse:
    def __init__(self, body: bytes, content_type: str = "application/json"):
        self._buf = io.BytesIO(body)
        self.content_type = content_type
        self.closed = False

    def getheader(self, name, default=None):
        return self.content_type if name.lower() == "content-type" else default

    def read(self, n=-1):
        return self._buf.read(n)

    def read1(self, n=1 << 20):
        return self._buf.read(n)

    def readinto(self, b):
        return self._buf.readinto(b)

    def copy_to(self, f):
        data = self._buf.read()
        f.write(data)
        return len(data)

    def __iter__(self):
        while True:
            data = self._buf.read(7)  # small pieces: the stream decoder must cope
            if not data:
                return
            yield data

    def close(self):
        self.closed = True


class FakeClient:
    """Answers from a dict ``(METHOD, path) -> value``; a value that is an exception is
    raised; bytes are returned raw; anything else is JSON."""

    def __init__(self, answers=None):
        self.answers = dict(answers or {})
        self.calls = []
        self.api_version = "1.47"

    def _answer(self, method, path, params, body=None):
        self.calls.append((method, path, params, body))
        key = (method, path)
        if key not in self.answers:
            raise NotFound(f"Error response from daemon: fake: no answer for {method} {path}")
        value = self.answers[key]
        if callable(value) and not isinstance(value, type):
            value = value(params, body)
        if isinstance(value, BaseException):
            raise value
        return value

    def request(self, method, path, params=None, body=None, headers=None):
        value = self._answer(method, path, params, body)
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    def get_json(self, path, params=None):
        return self._answer("GET", path, params)

    def post_json(self, path, params=None, body=None):
        return self._answer("POST", path, params, body)

    def delete_json(self, path, params=None):
        return self._answer("DELETE", path, params)

    def raw(self, method, path, params=None, body=None, headers=None):
        if body is not None and hasattr(body, "read"):
            body = body.read()
        value = self._answer(method, path, params, body)
        if isinstance(value, FakeResponse):
            return value
        if isinstance(value, bytes):
            return FakeResponse(value, "application/x-tar")
        if isinstance(value, list):
            return FakeResponse(b"".join(json.dumps(m).encode() + b"\r\n" for m in value))
        return FakeResponse(json.dumps(value).encode())

    def stream_json(self, method, path, params=None, body=None, headers=None):
        value = self._answer(method, path, params, body)
        yield from value

    def download(self, path, params=None, out_file=None):
        data = self._answer("GET", path, params)
        out_file.write(data)
        return len(data)


class TTY(io.StringIO):
    def isatty(self):
        return True


def run(argv, client=None, stdin="", stdout=None):
    so = stdout if stdout is not None else io.StringIO()
    se = io.StringIO()
    si = io.StringIO(stdin)
    rc = main(list(argv), client=client or FakeClient(), stdout=so, stderr=se, stdin=si)
    return rc, so.getvalue(), se.getvalue()


NOW = time.time()
ID1 = "sha256:" + "a1" * 32
ID2 = "sha256:" + "b2" * 32
ID3 = "sha256:" + "c3" * 32
IMAGES = [
    {"Id": ID1, "RepoTags": ["busybox:latest", "localhost:5000/tools/bb:1.36"],
     "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": int(NOW - 15 * 86400),
     "Size": 4261550, "SharedSize": -1, "Containers": -1},
    {"Id": ID2, "RepoTags": [], "RepoDigests": [], "Created": int(NOW - 3600),
     "Size": 0, "SharedSize": -1, "Containers": -1},
    {"Id": ID1.replace("a1", "e5"), "RepoTags": ["docker.io/library/debian:bookworm"],
     "RepoDigests": None, "Created": int(NOW - 100 * 86400), "Size": 1_234_567_890,
     "SharedSize": 0, "Containers": 2},
]


# ---------------------------------------------------------------------- humanising


@pytest.mark.parametrize("size,expected", [
    (0, "0B"), (8, "8B"), (999, "999B"), (1000, "1kB"), (4261550, "4.26MB"),
    (1_234_567_890, "1.23GB"), (1_200_000_000, "1.2GB"), (999_500, "1e+03kB"),
    (5_000_000_000_000, "5TB"),
])
def test_human_size_precision_3(size, expected):
    assert out.human_size_precision(size, 3) == expected


@pytest.mark.parametrize("size,expected", [
    (0, "0B"), (1_234_567, "1.235MB"), (1_200_000, "1.2MB"), (12345, "12.35kB")])
def test_human_size(size, expected):
    assert out.human_size(size) == expected


def test_bytes_size():
    assert out.bytes_size(25_275_000_000) == "23.54GiB"
    assert out.bytes_size(1024) == "1KiB"


@pytest.mark.parametrize("secs,expected", [
    (0.5, "Less than a second"), (-30, "Less than a second"), (1, "1 second"),
    (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (59 * 60, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"),
    (60 * 86400, "2 months"), (729 * 86400, "24 months"), (730 * 86400, "2 years"),
])
def test_human_duration(secs, expected):
    assert out.human_duration(secs) == expected


def test_times_utc():
    ts = 1704207845  # 2024-01-02 15:04:05 UTC
    assert out.go_time_string(ts) == "2024-01-02 15:04:05 +0000 UTC"
    assert out.rfc3339(ts) == "2024-01-02T15:04:05Z"
    assert out.rfc3339_nano_fixed(ts * 10**9 + 1234) == "2024-01-02T15:04:05.000001234Z"
    assert out.ansic("2024-01-02T15:04:05.123456789Z") == "Tue Jan  2 15:04:05 2024"
    assert out.ansic("not a date") == "not a date"


def test_truncate_and_ellipsis():
    assert out.truncate_id(ID1) == "a1" * 6
    assert out.truncate_id("<missing>") == "<missing>"
    assert out.ellipsis("a" * 45, 45) == "a" * 45
    assert out.ellipsis("a" * 46, 45) == "a" * 44 + "…"
    assert out.ellipsis("日本語のテキスト", 7) == "日本語…"
    assert out.ellipsis("abc", 1) == "a"


def test_tabwrite_like_go():
    text = "REPOSITORY\tTAG\tSIZE\nbusybox\tlatest\t4.26MB\nlocalhost:5000/tools/bb\t1.36\t0B\n"
    assert out.tabwrite(text) == (
        "REPOSITORY                TAG       SIZE\n"
        "busybox                   latest    4.26MB\n"
        "localhost:5000/tools/bb   1.36      0B\n")
    # a line without cells ends the column block
    assert out.tabwrite("a\tb\nxx\n" + "longer cell\tc\n", minwidth=0, padding=1) == \
        "a b\nxx\nlonger cell c\n"


def test_go_reformat_json_keeps_raw_tokens():
    raw = b'{"a":[],"b":{},"c":"x{,}\\"y","d":[1,2e+06],"e":{"f":null}}\n'
    assert out.go_reformat_json(raw) == (
        '{\n    "a": [],\n    "b": {},\n    "c": "x{,}\\"y",\n    "d": [\n        1,\n'
        '        2e+06\n    ],\n    "e": {\n        "f": null\n    }\n}')
    assert out.go_reformat_json(b'[ {"a" : 1} , {"b":"\\u003c"} ]', indent=None) == \
        '[{"a":1},{"b":"\\u003c"}]'


def test_display_messages():
    lines = []
    out.display_messages([{"status": "sha256:abc"}, {"stream": "Loaded image: x\n"},
                          {"aux": {"ID": "sha256:1"}},
                          {"status": "Downloading", "progressDetail": {"current": 1, "total": 2},
                           "id": "l1"},
                          {"status": "Pull complete", "id": "l1"}], lines.append)
    assert "".join(lines) == "sha256:abc\nLoaded image: x\nl1: Pull complete\n"
    with pytest.raises(out.StreamError, match="boom"):
        out.display_messages([{"stream": "x\n"}, {"error": "boom", "errorDetail": {"message": "boom"}}],
                             lines.append)


# ---------------------------------------------------------------------- flag parsing


def _images_cmd():
    from hoist.cli.main import lookup

    return lookup("images")


def test_parse_grouped_and_valued_flags():
    c = _images_cmd()
    opts, args = c.parse(["-aq", "--filter=dangling=true", "-f", "label=a=b", "busybox"])
    assert opts["all"] and opts["quiet"] and args == ["busybox"]
    assert opts["filter"] == [("dangling", "true"), ("label", "a=b")]
    opts, args = c.parse(["busybox", "--no-trunc", "--format", "{{.ID}}"])
    assert opts["no_trunc"] and opts["format"] == "{{.ID}}" and args == ["busybox"]
    opts, args = c.parse(["-q=false", "--all=true", "--", "-x"])
    assert opts["all"] and not opts["quiet"] and args == ["-x"]
    opts, _ = c.parse(["-f", "-x=1"])  # a valued flag takes the next word whatever it is
    assert opts["filter"] == [("-x", "1")]


@pytest.mark.parametrize("argv,msg", [
    (["--bogus"], "unknown flag: --bogus"),
    (["-z"], "unknown shorthand flag: 'z' in -z"),
    (["-az"], "unknown shorthand flag: 'z' in -az"),
    (["--format"], "flag needs an argument: --format"),
    (["-f"], "flag needs an argument: 'f' in -f"),
    (["--all=maybe"], 'invalid argument "maybe" for "-a, --all" flag: strconv.ParseBool'),
    (["-f", "nokey"], "bad format of filter (expected name=value)"),
])
def test_flag_errors_exit_125(argv, msg):
    rc, so, se = run(["images", *argv])
    assert rc == 125
    assert msg in se
    assert "Run 'hoist images --help' for more information" in se
    assert so == ""


def test_argument_count_errors_exit_1():
    rc, _, se = run(["tag", "only-one"])
    assert rc == 1
    assert se.startswith('"hoist tag" requires exactly 2 arguments.\nSee \'hoist tag --help\'.')
    assert "Usage:  hoist tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]" in se
    rc, _, se = run(["images", "a", "b"])
    assert rc == 1 and '"hoist images" requires at most 1 argument.' in se
    rc, _, se = run(["rmi"])
    assert rc == 1 and '"hoist rmi" requires at least 1 argument.' in se
    rc, _, se = run(["load", "x"])
    assert rc == 1 and '"hoist load" accepts no arguments.' in se


def test_tag_is_not_interspersed():
    fake = FakeClient({("POST", "/images/busybox/tag"): None})
    rc, _, _ = run(["tag", "busybox", "-weird-but-a-name"], fake)
    assert rc == 0
    assert fake.calls[0][2] == {"repo": "-weird-but-a-name", "tag": "latest"}


def test_help_and_unknown_commands():
    rc, so, _ = run(["images", "--help"])
    assert rc == 0
    assert so.startswith("Usage:  hoist images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n")
    assert "Aliases:\n  hoist image ls, hoist image list, hoist images\n" in so
    assert "  -a, --all             Show all images (default hides intermediate images)\n" in so
    assert "      --format string   Format output using a custom template:\n" in so
    rc, so, _ = run(["history", "-h"])
    assert rc == 0 and "(default true)" in so
    rc, so, _ = run(["--help"])
    assert rc == 0
    for name in ("images", "image", "system", "rmi", "tag", "history", "import", "save", "load",
                 "inspect", "events", "version", "info"):
        assert f"\n  {name.ljust(11)} " in so
    assert "Management Commands:" in so and "Global Options:" in so
    rc, so, _ = run(["image"])
    assert rc == 0 and "Usage:  hoist image COMMAND" in so and "  bootstrap " in so
    rc, so, _ = run(["help", "system", "df"])
    assert rc == 0 and so.startswith("Usage:  hoist system df [OPTIONS]")
    rc, _, se = run(["bogus"])
    assert rc == 1 and "hoist: 'bogus' is not a hoist command." in se
    rc, _, se = run(["image", "bogus"])
    assert rc == 1 and "Usage:  hoist image COMMAND" in se
    rc, so, _ = run(["-v"])
    assert rc == 0 and so.startswith("hoist version ")
    rc, _, se = run(["--nope", "images"])
    assert rc == 125 and "unknown flag: --nope\n\nUsage:  hoist [OPTIONS] COMMAND" in se
    assert "Run 'hoist --help' for more information" in se


def test_global_flags_reach_the_context(monkeypatch):
    seen = {}

    def fake_run(ctx, opts, args):
        seen.update(host=ctx.host, root=ctx.data_root, debug=ctx.debug)
        return 0

    from hoist.cli import main as m

    real = m.lookup

    def lookup(name):
        c = real(name)
        c.run = fake_run
        return c

    monkeypatch.setattr(m, "lookup", lookup)
    rc, _, _ = run(["-D", "-H", "tcp://127.0.0.1:2375", "--data-root", "/x", "images"])
    assert rc == 0 and seen == {"host": "tcp://127.0.0.1:2375", "root": "/x", "debug": True}


# ---------------------------------------------------------------------- images


def test_images_table():
    fake = FakeClient({("GET", "/images/json"): IMAGES})
    rc, so, se = run(["images"], fake)
    assert rc == 0, se
    lines = so.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[0].startswith("REPOSITORY                TAG        IMAGE ID       CREATED")
    assert lines[1].split() == ["busybox", "latest", "a1a1a1a1a1a1", "2", "weeks", "ago", "4.26MB"]
    assert lines[2].split() == ["localhost:5000/tools/bb", "1.36", "a1a1a1a1a1a1", "2", "weeks",
                                "ago", "4.26MB"]
    assert lines[3].split() == ["<none>", "<none>", "b2b2b2b2b2b2", "About", "an", "hour", "ago", "0B"]
    assert lines[4].split() == ["debian", "bookworm", "e5e5e5e5e5e5", "3", "months", "ago", "1.23GB"]
    assert fake.calls == [("GET", "/images/json", {}, None)]
    # columns are aligned like Go's tabwriter: every row's TAG starts where the header's does
    col = lines[0].index("TAG")
    assert all(ln[col - 3:col] == "   " and ln[col] != " " for ln in lines[1:])


def test_images_exact_table_layout():
    imgs = [{"Id": ID1, "RepoTags": ["t/imp:1"], "Created": int(time.time() - 2), "Size": 8}]
    rc, so, _ = run(["images"], FakeClient({("GET", "/images/json"): imgs}))
    assert so == ("REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n"
                  "t/imp        1         a1a1a1a1a1a1   2 seconds ago   8B\n")


def test_images_digests_quiet_notrunc_and_filters():
    fake = FakeClient({("GET", "/images/json"): IMAGES})
    rc, so, _ = run(["images", "--digests"], fake)
    head, first = so.splitlines()[:2]
    assert head.split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert "sha256:" + "d" * 64 in first
    rc, so, _ = run(["images", "-q"], fake)
    assert so.splitlines() == ["a1" * 6, "b2" * 6, "e5" * 6]  # unique, one per image
    rc, so, _ = run(["images", "-q", "--no-trunc"], fake)
    assert so.splitlines()[0] == ID1
    fake.calls.clear()
    run(["images", "-a", "-f", "dangling=true", "--filter", "label=x", "busy*"], fake)
    method, path, params, _ = fake.calls[0]
    assert params["all"] == "1"
    assert params["filters"] == {"dangling": ["true"], "label": ["x"], "reference": ["busy*"]}


def test_images_format_and_json():
    fake = FakeClient({("GET", "/images/json"): IMAGES[:2]})
    rc, so, _ = run(["images", "--format", "{{.Repository}}:{{.Tag}}"], fake)
    assert so.splitlines() == ["busybox:latest", "localhost:5000/tools/bb:1.36", "<none>:<none>"]
    rc, so, _ = run(["images", "--format", "json"], fake)
    row = json.loads(so.splitlines()[2])
    assert row["Repository"] == "<none>" and '"\\u003cnone\\u003e"' in so.splitlines()[2]
    assert list(row) == sorted(row)
    assert set(row) == {"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"}
    assert row["Containers"] == "N/A" and row["SharedSize"] == "N/A"
    assert row["CreatedAt"].endswith(" +0000 UTC")


@pytest.mark.skipif(not HAVE_GOTEMPLATE, reason="needs hoist.cli.gotemplate")
def test_images_custom_table_and_bad_field():
    fake = FakeClient({("GET", "/images/json"): IMAGES[:1]})
    rc, so, _ = run(["images", "--format", "table {{.Repository}}\t{{.Size}}"], fake)
    assert so.splitlines()[0].split() == ["REPOSITORY", "SIZE"]
    rc, so, se = run(["images", "--format", "{{.Nope}}"], fake)
    assert rc == 1 and "template parsing error" in se and "can't evaluate field Nope" in se


def test_image_rows_names():
    from hoist.cli.images import familiar_name, split_tag

    assert familiar_name("docker.io/library/busybox") == "busybox"
    assert familiar_name("index.docker.io/library/busybox") == "busybox"
    assert familiar_name("docker.io/foo/bar") == "foo/bar"
    assert familiar_name("library/busybox") == "busybox"
    assert familiar_name("localhost:5000/a") == "localhost:5000/a"
    assert split_tag("localhost:5000/a/b:c") == ("localhost:5000/a/b", "c")
    assert split_tag("localhost:5000/a") == ("localhost:5000/a", None)
    assert split_tag("busybox") == ("busybox", None)


def test_ambiguous_images_hint():
    rc, so, se = run(["images", "ls"], FakeClient({("GET", "/images/json"): []}))
    assert rc == 0 and 'No images found matching "ls": did you mean "hoist image ls"?' in se


# ---------------------------------------------------------------------- inspect / tag / rmi

RAW_INSPECT = b'{"Id":"' + ID1.encode() + b'","RepoTags":["busybox:latest"],"Config":{"Env":null}}\n'


def test_image_inspect_indent_and_missing():
    fake = FakeClient({("GET", "/images/busybox/json"): RAW_INSPECT,
                       ("GET", "/images/missing/json"):
                           NotFound("Error response from daemon: No such image: missing:latest")})
    rc, so, se = run(["image", "inspect", "busybox"], fake)
    assert rc == 0
    assert so == ('[\n    {\n        "Id": "%s",\n        "RepoTags": [\n            '
                  '"busybox:latest"\n        ],\n        "Config": {\n            "Env": null\n'
                  '        }\n    }\n]\n' % ID1)
    rc, so, se = run(["image", "inspect", "missing"], fake)
    assert (rc, so) == (1, "[]\n") and "No such image: missing" in se
    rc, so, se = run(["image", "inspect", "busybox", "missing"], fake)
    assert rc == 1 and so.startswith("[\n    {") and "No such image: missing" in se
    rc, so, _ = run(["image", "inspect", "-f", "json", "busybox"], fake)
    assert so == "[" + RAW_INSPECT.decode().strip() + "]\n"
    rc, so, _ = run(["image", "inspect", "-f", "{{.Id}} {{index .RepoTags 0}}", "busybox"], fake)
    assert so == f"{ID1} busybox:latest\n"


def test_inspect_any_type_falls_through_to_image():
    fake = FakeClient({("GET", "/images/busybox/json"): RAW_INSPECT})
    rc, so, _ = run(["inspect", "busybox"], fake)
    assert rc == 0 and json.loads(so)[0]["Id"] == ID1
    assert [c[1] for c in fake.calls][:2] == ["/containers/busybox/json", "/images/busybox/json"]
    rc, so, se = run(["inspect", "nothing"], FakeClient())
    assert (rc, so, se) == (1, "[]\n", "Error: No such object: nothing\n")
    rc, _, se = run(["inspect", "--type", "image", "nothing"], FakeClient())
    # docker 28 prints the daemon's own words when --type is given
    assert rc == 1 and se.startswith("Error response from daemon: ")
    rc, _, se = run(["inspect", "--type", "bogus", "x"], FakeClient())
    assert rc == 1 and '"bogus" is not a valid value for --type' in se


@pytest.mark.parametrize("target,repo,tag", [
    ("t/imp:2", "t/imp", "2"), ("localhost:5000/a/b:c", "localhost:5000/a/b", "c"),
    ("localhost:5000/a", "localhost:5000/a", "latest"), ("busybox", "busybox", "latest")])
def test_tag_splits_target(target, repo, tag):
    fake = FakeClient({("POST", "/images/t/imp:1/tag"): None})
    rc, so, se = run(["image", "tag", "t/imp:1", target], fake)
    assert rc == 0 and so == "" and se == ""
    assert fake.calls == [("POST", "/images/t/imp:1/tag", {"repo": repo, "tag": tag}, None)]


def test_tag_errors():
    fake = FakeClient({("POST", "/images/nope/tag"):
                       NotFound("Error response from daemon: No such image: nope:latest")})
    rc, _, se = run(["tag", "nope", "x"], fake)
    assert rc == 1 and se == "Error response from daemon: No such image: nope:latest\n"
    rc, _, se = run(["tag", "nope", "x@sha256:" + "0" * 64], fake)
    assert rc == 1 and "refusing to create a tag with a digest reference" in se


def test_rmi_continues_and_exits_1():
    fake = FakeClient({
        ("DELETE", "/images/a"): [{"Untagged": "a:latest"}, {"Deleted": ID1}],
        ("DELETE", "/images/b"): NotFound("Error response from daemon: No such image: b:latest"),
        ("DELETE", "/images/c"): [{"Untagged": "c:1"}],
    })
    rc, so, se = run(["rmi", "a", "b", "c"], fake)
    assert rc == 1
    assert so == f"Untagged: a:latest\nDeleted: {ID1}\nUntagged: c:1\n"
    assert se == "Error response from daemon: No such image: b:latest\n"
    rc, so, se = run(["image", "rm", "-f", "--no-prune", "b"], fake)
    assert rc == 0 and se == "Error response from daemon: No such image: b:latest\n"
    assert fake.calls[-1][2] == {"force": "1", "noprune": "1"}
    fake.answers[("DELETE", "/images/d")] = Conflict("Error response from daemon: conflict: in use")
    rc, _, se = run(["rmi", "-f", "d"], fake)
    assert rc == 1 and "conflict: in use" in se


# ---------------------------------------------------------------------- history

HISTORY = [
    {"Id": ID1, "Created": int(NOW - 7200), "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"]\tx",
     "Size": 0, "Comment": "", "Tags": ["busybox:latest"]},
    {"Id": "<missing>", "Created": int(NOW - 7300),
     "CreatedBy": "/bin/sh -c #(nop) ADD file:7e9002edaafd4e4579b65c8f0aaabde1aeb7fd3f8d95579f7fd3443cef785fd1 in / ",
     "Size": 4261550, "Comment": "imported"},
    {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 0, "Comment": ""},
]


def test_history_table_and_truncation():
    fake = FakeClient({("GET", "/images/busybox/history"): HISTORY})
    rc, so, _ = run(["history", "busybox"], fake)
    lines = so.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert "a1a1a1a1a1a1   2 hours ago" in lines[1]
    assert '/bin/sh -c #(nop)  CMD ["sh"] x' in lines[1]  # tab became a space
    assert "/bin/sh -c #(nop) ADD file:7e9002edaafd4e457…" in lines[2]
    assert len("/bin/sh -c #(nop) ADD file:7e9002edaafd4e457…") == 45
    assert "4.26MB" in lines[2] and lines[2].rstrip().endswith("imported")
    assert lines[3].split()[:2] == ["<missing>", "N/A"]
    rc, so, _ = run(["history", "--no-trunc", "-H=false", "busybox"], fake)
    lines = so.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "CREATED", "AT"]
    assert lines[1].startswith(ID1)
    assert out.rfc3339(HISTORY[0]["Created"]) in lines[1]
    assert "4261550" in lines[2] and "fd1 in /" in lines[2]
    rc, so, _ = run(["history", "-q", "busybox"], fake)
    assert so.splitlines() == ["a1" * 6, "<missing>", "<missing>"]
    rc, so, _ = run(["history", "--format", "{{.ID}}|{{.Size}}", "busybox"], fake)
    assert so.splitlines()[1] == "<missing>|4.26MB"


# ---------------------------------------------------------------------- import / save / load


def test_import_stdin_and_file(tmp_path):
    fake = FakeClient({("POST", "/images/create"): [{"status": ID3}]})
    rc, so, se = run(["import", "-c", "ENV A=b", "--change", "CMD [\"sh\"]", "-m", "hi", "-",
                      "t/imp:1"], fake, stdin="tarbytes")
    assert rc == 0, se
    assert so == ID3 + "\n"
    method, path, params, body = fake.calls[0]
    assert params == {"fromSrc": "-", "repo": "t/imp", "tag": "1", "message": "hi",
                      "changes": ["ENV A=b", 'CMD ["sh"]']}
    assert body == "tarbytes"
    f = tmp_path / "x.tar"
    f.write_bytes(b"TAR")
    rc, so, _ = run(["image", "import", str(f)], fake)
    assert rc == 0 and fake.calls[-1][3] == b"TAR" and "repo" not in fake.calls[-1][2]
    rc, _, se = run(["import", str(tmp_path / "nope.tar")], fake)
    assert rc == 1 and se == f"open {tmp_path / 'nope.tar'}: no such file or directory\n"
    rc, _, _ = run(["import", "http://127.0.0.1:1/x.tar"], fake)
    assert fake.calls[-1][2]["fromSrc"] == "http://127.0.0.1:1/x.tar" and fake.calls[-1][3] is None


def test_save_paths_and_terminal(tmp_path):
    fake = FakeClient({("GET", "/images/busybox/get"): b"TARDATA",
                       ("GET", "/images/get"): b"MANY"})
    rc, so, se = run(["save", "busybox"], fake, stdout=TTY())
    assert rc == 1
    assert se == "cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    target = tmp_path / "out.tar"
    rc, _, se = run(["save", "-o", str(target), "busybox"], fake)
    assert rc == 0, se
    assert target.read_bytes() == b"TARDATA"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["out.tar"]
    buf = io.BytesIO()

    class BinOut(io.StringIO):
        buffer = buf

    rc, _, _ = run(["save", "a", "b"], fake, stdout=BinOut())
    assert rc == 0 and buf.getvalue() == b"MANY"
    assert fake.calls[-1][2] == {"names": ["a", "b"]}


def test_load(tmp_path):
    f = tmp_path / "in.tar"
    f.write_bytes(b"TAR")
    fake = FakeClient({("POST", "/images/load"): [{"stream": "Loaded image: t/imp:1\n"}]})
    rc, so, _ = run(["load", "-i", str(f)], fake)
    assert rc == 0 and so == "Loaded image: t/imp:1\n"
    assert fake.calls[0][2] == {"quiet": "1"} and fake.calls[0][3] == b"TAR"
    fake.answers[("POST", "/images/load")] = [
        {"stream": "x\n"}, {"errorDetail": {"message": "unexpected EOF"}, "error": "unexpected EOF"}]
    rc, so, se = run(["load", "-i", str(f)], fake)
    assert rc == 1 and so == "x\n" and se == "unexpected EOF\n"

    class TTYIn(io.StringIO):
        def isatty(self):
            return True

    rc = main(["load"], client=fake, stdout=io.StringIO(), stderr=(se := io.StringIO()),
              stdin=TTYIn())
    assert rc == 1 and "requested load from stdin, but stdin is empty" in se.getvalue()


# ---------------------------------------------------------------------- prune / bootstrap


def test_prune_prompt_and_output():
    report = {"ImagesDeleted": [{"Untagged": "a:1"}, {"Deleted": ID1}], "SpaceReclaimed": 1_200_000}
    fake = FakeClient({("POST", "/images/prune"): report})
    rc, so, _ = run(["image", "prune"], fake, stdin="n\n")
    assert rc == 0 and fake.calls == []
    assert so == ("WARNING! This will remove all dangling images.\n"
                  "Are you sure you want to continue? [y/N] ")
    rc, so, _ = run(["image", "prune", "-a"], fake, stdin="y\n")
    assert so == ("WARNING! This will remove all images without at least one container "
                  "associated to them.\nAre you sure you want to continue? [y/N] "
                  f"Deleted Images:\nuntagged: a:1\ndeleted: {ID1}\n\nTotal reclaimed space: 1.2MB\n")
    assert fake.calls[-1][2] == {"filters": {"dangling": ["false"]}}
    rc, so, _ = run(["image", "prune", "-f", "--filter", "until=24h"], fake)
    assert so.startswith("Deleted Images:")
    assert fake.calls[-1][2] == {"filters": {"until": ["24h"], "dangling": ["true"]}}
    fake.answers[("POST", "/images/prune")] = {"ImagesDeleted": None, "SpaceReclaimed": 0}
    rc, so, _ = run(["image", "prune", "-f"], fake)
    assert so == "Total reclaimed space: 0B\n"


def test_bootstrap_stream_and_unsupported():
    fake = FakeClient({("POST", "/hoist/images/bootstrap"): [
        {"stream": "unpacking busybox-static\n"}, {"aux": {"ID": ID1}}]})
    rc, so, _ = run(["image", "bootstrap", "busybox"], fake)
    assert rc == 0 and so == "unpacking busybox-static\n"
    assert fake.calls[0][2] == {"name": "busybox"}
    err = NotFound("Error response from daemon: page not found")
    err.daemon_message = "page not found"
    fake.answers[("POST", "/hoist/images/bootstrap")] = err
    rc, _, se = run(["image", "bootstrap", "busybox"], fake)
    assert rc == 125 and se == "this daemon does not support bootstrap (is it hoistd?)\n"


# ---------------------------------------------------------------------- system


def test_system_df():
    du = {"LayersSize": 1_000_000, "Images": [
        {"Id": ID1, "Containers": 1, "Size": 600_000, "SharedSize": 100_000, "RepoTags": ["a:1"],
         "Created": int(NOW - 60)},
        {"Id": ID2, "Containers": 0, "Size": 400_000, "SharedSize": 0, "RepoTags": [],
         "Created": int(NOW - 60)}],
        "Containers": [{"Id": "c" * 64, "State": "running", "SizeRw": 10},
                       {"Id": "d" * 64, "State": "exited", "SizeRw": 30}],
        "Volumes": [{"Name": "v", "UsageData": {"Size": 50, "RefCount": 0}}],
        "BuildCache": None}
    fake = FakeClient({("GET", "/system/df"): du})
    rc, so, _ = run(["system", "df"], fake)
    assert so == ("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
                  "Images          2         1         1MB       500kB (50%)\n"
                  "Containers      2         1         40B       30B (75%)\n"
                  "Local Volumes   1         0         50B       50B (100%)\n"
                  "Build Cache     0         0         0B        0B\n")
    rc, so, _ = run(["system", "df", "-v"], fake)
    assert so.startswith("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID ")
    assert "\nContainers space usage:\n\n" in so and "\nBuild cache usage: 0B\n\n" in so
    rc, so, _ = run(["system", "df", "--format", "{{.Type}}={{.Size}}"], fake)
    assert so.splitlines() == ["Images=1MB", "Containers=40B", "Local Volumes=50B", "Build Cache=0B"]


def test_system_check():
    ok = {"Problems": [], "Repaired": [], "Checked": {"blobs": 3, "images": 1, "layers": 1},
          "OK": True}
    fake = FakeClient({("POST", "/hoist/system/check"): ok})
    rc, so, _ = run(["system", "check"], fake)
    assert rc == 0 and so == "Checked: 3 blobs, 1 images, 1 layers\nOK\n"
    assert fake.calls[0][2] == {"repair": "0"}
    bad = {"Problems": ["blob x is corrupt"], "Repaired": [], "Checked": {"blobs": 3}, "OK": False}
    fake.answers[("POST", "/hoist/system/check")] = bad
    rc, so, _ = run(["system", "check", "--repair"], fake)
    assert rc == 1 and "  - blob x is corrupt\n" in so and "FAILED" in so
    assert fake.calls[-1][2] == {"repair": "1"}
    err = NotFound("Error response from daemon: page not found")
    err.daemon_message = "page not found"
    fake.answers[("POST", "/hoist/system/check")] = err
    rc, _, se = run(["system", "check"], fake)
    assert rc == 125 and "does not support system check" in se


def test_version_and_info():
    server = {"Platform": {"Name": "hoist 0.1.0"}, "Version": "27.5.1", "ApiVersion": "1.47",
              "MinAPIVersion": "1.24", "GitCommit": "abc", "GoVersion": "python3.11",
              "Os": "linux", "Arch": "amd64", "BuildTime": "2024-01-02T15:04:05.000000000+00:00",
              "Components": [{"Name": "Engine", "Version": "27.5.1", "Details": {
                  "ApiVersion": "1.47", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
                  "BuildTime": "2024-01-02T15:04:05.000000000+00:00", "Experimental": "false"}}]}
    fake = FakeClient({("GET", "/version"): server})
    fake.api_version = "1.41"
    rc, so, _ = run(["version"], fake)
    assert rc == 0
    assert " API version:       1.41 (downgraded from 1.47)\n" in so
    assert "\nServer: hoist 0.1.0\n Engine:\n  Version:          27.5.1\n" in so
    assert "  API version:      1.47 (minimum version 1.24)\n" in so
    assert "  Built:            Tue Jan  2 15:04:05 2024\n" in so
    assert so.endswith("  Experimental:     false\n")
    rc, so, _ = run(["version", "--format", "{{.Server.APIVersion}}/{{.Client.Version}}"], fake)
    from hoist import __version__
    assert so == f"1.47/{__version__}\n"
    info = {"Containers": 1, "ContainersRunning": 1, "Images": 2, "ServerVersion": "27.5.1",
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "null"], "Log": None},
            "Swarm": {"LocalNodeState": "inactive"}, "OSType": "linux",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "NCPU": 2, "MemTotal": 25_275_000_000, "Name": "vm", "Debug": False,
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
            "Warnings": ["WARNING: no swap limit support"]}
    fake.answers[("GET", "/info")] = info
    rc, so, se = run(["info"], fake)
    assert rc == 0
    assert so.startswith("Client:\n Version:    ")
    assert "\nServer:\n Containers: 1\n  Running: 1\n  Paused: 0\n  Stopped: 0\n Images: 2\n" in so
    assert "  Backing Filesystem: extfs\n" in so and "  Network: bridge null\n  Log: \n" in so
    assert " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n" in so
    assert " Total Memory: 23.54GiB\n" in so
    assert " Insecure Registries:\n  127.0.0.0/8\n Live Restore Enabled: false\n\n" in so
    assert se == "WARNING: no swap limit support\n"
    rc, so, _ = run(["system", "info", "-f", "{{.ServerVersion}} {{.Driver}}"], fake)
    assert so == "27.5.1 overlay2\n"


def test_events_default_and_format():
    ev = {"status": "tag", "id": ID1, "Type": "image", "Action": "tag",
          "Actor": {"ID": ID1, "Attributes": {"name": "busybox:latest", "a": "b"}},
          "scope": "local", "time": 1704207845, "timeNano": 1704207845000000000}
    fake = FakeClient({("GET", "/events"): [ev, {"Type": "image", "Action": "prune",
                                                 "Actor": {"ID": "", "Attributes": {"reclaimed": "0"}},
                                                 "time": 1704207846, "timeNano": 1704207846000000001}]})
    rc, so, _ = run(["events", "--since", "1704207800", "--until", "1704207900",
                     "-f", "type=image"], fake)
    assert so == (f"2024-01-02T15:04:05.000000000Z image tag {ID1} (a=b, name=busybox:latest)\n"
                  "2024-01-02T15:04:06.000000001Z image prune  (reclaimed=0)\n")
    assert fake.calls[0][2] == {"since": "1704207800", "until": "1704207900",
                                "filters": {"type": ["image"]}}
    rc, so, _ = run(["system", "events", "--format", "{{.Type}} {{.Status}} {{.Actor.ID}}"], fake)
    assert so.splitlines()[0] == f"image tag {ID1}"


def test_get_timestamp():
    from hoist.cli.system import get_timestamp, parse_go_duration

    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("-5m") == -300
    assert parse_go_duration("abc") is None
    assert get_timestamp("10m", now=1000.0) == "400"
    assert get_timestamp("1704207845") == "1704207845"
    assert get_timestamp("1704207845.5") == "1704207845.5"
    assert get_timestamp("2024-01-02T15:04:05Z") == "1704207845.000000000"
    assert get_timestamp("2024-01-02T15:04:05.25Z") == "1704207845.250000000"
    assert get_timestamp("2024-01-02") == "1704153600.000000000"  # TZ=UTC in these tests


# ---------------------------------------------------------------------- the HTTP client


def test_client_constants_match_config():
    from hoist import client, config
    from hoist.client import autostart

    assert client.DEFAULT_SOCKET == config.DEFAULT_SOCKET
    assert client.API_VERSION == config.API_VERSION
    assert autostart.DEFAULT_DATA_ROOT == config.DEFAULT_DATA_ROOT


def test_host_resolution(monkeypatch):
    from hoist.client import parse_host, resolve_host

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("HOIST_SOCKET", raising=False)
    assert resolve_host(None) == "unix:///run/hoist/hoist.sock"
    monkeypatch.setenv("HOIST_SOCKET", "/tmp/x.sock")
    assert resolve_host(None) == "unix:///tmp/x.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert resolve_host(None) == "unix:///var/run/docker.sock"
    assert resolve_host("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1"
    assert parse_host("unix:///a/b.sock") == ("unix", "/a/b.sock", 0)
    assert parse_host("/a/b.sock") == ("unix", "/a/b.sock", 0)
    assert parse_host("tcp://127.0.0.1:2376") == ("tcp", "127.0.0.1", 2376)
    assert parse_host("http://localhost") == ("tcp", "localhost", 2375)
    assert parse_host("tcp://[::1]:5000") == ("tcp", "::1", 5000)
    with pytest.raises(InvalidArgument):
        parse_host("ssh://user@host")
    with pytest.raises(InvalidArgument):
        parse_host("bogus")


def test_quote_name():
    from hoist.client import quote_name

    assert quote_name("localhost:5000/a/b:c") == "localhost:5000/a/b:c"
    assert quote_name("a b?#") == "a%20b%3F%23"


def test_iter_json_split_and_concatenated():
    from hoist.client.http import iter_json

    data = '{"a": 1}\r\n{"b": "é"}{"c":[1,2]}\n  12 '.encode()
    chunks = [data[i:i + 3] for i in range(0, len(data), 3)]
    assert list(iter_json(chunks)) == [{"a": 1}, {"b": "é"}, {"c": [1, 2]}, 12]
    with pytest.raises(HoistError):
        list(iter_json([b'{"a": 1}{bad']))


class _FakeDaemon:
    """A minimal HTTP/1.1 server on a unix socket: records requests, answers by path."""

    def __init__(self, path, api_version="1.41"):
        import http.server
        import socketserver

        owner = self
        self.requests = []
        self.api_version = api_version

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def _body(self):
                if self.headers.get("Transfer-Encoding") == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data, "chunked"
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n), f"length={n}"

            def _reply(self, status, body, ctype="application/json", extra=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Api-Version", owner.api_version)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                owner.requests.append(("GET", self.path, None, None))
                path = self.path.split("?")[0]
                if path == "/_ping":
                    return self._reply(200, b"OK", "text/plain")
                if path.endswith("/images/json"):
                    return self._reply(200, b'[{"Id":"x"}]')
                if path.endswith("/events"):
                    return self._reply(200, b'{"a":1}\n{"b":2}\n')
                if path.endswith("/get"):
                    return self._reply(200, b"TAR" * 1000, "application/x-tar")
                if path.endswith("/text"):
                    return self._reply(500, b"plain failure\n", "text/plain")
                return self._reply(404, b'{"message":"No such image: nope:latest"}')

            def do_POST(self):
                body, how = self._body()
                owner.requests.append(("POST", self.path, body, how))
                if self.path.endswith("/conflict"):
                    return self._reply(409, b'{"message":"conflict!"}')
                return self._reply(200, json.dumps({"len": len(body)}).encode())

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_daemon(tmp_path):
    path = str(tmp_path / "d.sock")
    d = _FakeDaemon(path)
    d.path = path
    yield d
    d.close()


def test_client_negotiates_and_maps_errors(fake_daemon, monkeypatch):
    from hoist.client.http import Client

    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    c = Client("unix://" + fake_daemon.path, autostart=False)
    assert c.get_json("/images/json", {"all": "1", "filters": {"dangling": ["true"]}}) == [{"Id": "x"}]
    assert fake_daemon.requests[0][1] == "/_ping"
    assert fake_daemon.requests[1][1] == \
        "/v1.41/images/json?all=1&filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D"
    with pytest.raises(NotFound) as ei:
        c.get_json("/images/nope/json")
    assert str(ei.value) == "Error response from daemon: No such image: nope:latest"
    assert ei.value.status == 404
    with pytest.raises(Conflict, match="^Error response from daemon: conflict!$"):
        c.post_json("/conflict")
    with pytest.raises(HoistError, match="^Error response from daemon: plain failure$"):
        c.get_json("/text")
    assert list(c.stream_json("GET", "/events")) == [{"a": 1}, {"b": 2}]
    buf = io.BytesIO()
    assert c.download("/images/x/get", None, buf) == 3000 and buf.getvalue() == b"TAR" * 1000
    c.close()
    # a pinned version skips the ping; newer servers are capped at ours
    monkeypatch.setenv("DOCKER_API_VERSION", "1.44")
    fake_daemon.requests.clear()
    Client("unix://" + fake_daemon.path, autostart=False).get_json("/images/json")
    assert [r[1] for r in fake_daemon.requests] == ["/v1.44/images/json"]
    monkeypatch.delenv("DOCKER_API_VERSION")
    fake_daemon.api_version = "1.50"
    assert Client("unix://" + fake_daemon.path, autostart=False).api_version == "1.47"


def test_client_streams_bodies(fake_daemon, tmp_path):
    from hoist.client.http import Client

    c = Client("unix://" + fake_daemon.path, autostart=False, version="1.47")
    f = tmp_path / "big.tar"
    f.write_bytes(os.urandom(3 << 20))
    with open(f, "rb") as fh:
        resp = c.raw("POST", "/images/load", {"quiet": "1"}, fh, {"Content-Type": "application/x-tar"})
        assert json.loads(resp.read()) == {"len": 3 << 20}
        resp.close()
    assert fake_daemon.requests[-1][3] == f"length={3 << 20}"
    assert fake_daemon.requests[-1][2] == f.read_bytes()
    r, w = os.pipe()
    payload = os.urandom(200_000)

    def feed():
        with os.fdopen(w, "wb") as wf:
            wf.write(payload)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb") as rf:
        resp = c.raw("POST", "/images/create", {"fromSrc": "-"}, rf)
        assert json.loads(resp.read()) == {"len": len(payload)}
        resp.close()
    t.join()
    assert fake_daemon.requests[-1][3] == "chunked" and fake_daemon.requests[-1][2] == payload
    resp = c.raw("POST", "/x", None, iter([b"ab", b"", b"cd"]))
    assert json.loads(resp.read()) == {"len": 4}
    resp.close()
    assert fake_daemon.requests[-1][2:] == (b"abcd", "chunked")


def test_client_unavailable_text(tmp_path):
    from hoist.client.http import Client

    path = str(tmp_path / "none.sock")
    with pytest.raises(Unavailable) as ei:
        Client("unix://" + path, autostart=False).get_json("/images/json")
    assert str(ei.value) == f"Cannot connect to the hoist daemon at unix://{path}. Is the daemon running?"
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # a socket file nobody listens on: connection refused
    try:
        with pytest.raises(Unavailable, match="Is the daemon running"):
            Client("unix://" + path, autostart=False).get_json("/images/json")
    finally:
        s.close()
    # the CLI prints it and exits 1, as docker does
    rc = main(["-H", "unix://" + path, "images"], stdout=io.StringIO(), stderr=(se := io.StringIO()))
    assert rc == 1
    assert se.getvalue() == f"Cannot connect to the hoist daemon at unix://{path}. Is the daemon running?\n"


def test_autostart_eligibility(monkeypatch, tmp_path):
    from hoist.client.http import Client

    monkeypatch.delenv("HOIST_DATA_ROOT", raising=False)
    monkeypatch.setenv("HOIST_SOCKET", str(tmp_path / "h.sock"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert Client()._may_autostart()
    assert Client("unix://" + str(tmp_path / "h.sock"))._may_autostart()
    assert not Client("unix://" + str(tmp_path / "other.sock"))._may_autostart()
    assert Client("unix://" + str(tmp_path / "other.sock"), data_root="/x")._may_autostart()
    assert not Client("tcp://127.0.0.1:1", data_root="/x")._may_autostart()
    assert not Client(autostart=False)._may_autostart()
    monkeypatch.setenv("HOIST_DATA_ROOT", "/y")
    assert Client("unix://" + str(tmp_path / "other.sock"))._may_autostart()


_FAKE_HOISTD = r'''
import os, socket, sys, time
path = sys.argv[sys.argv.index("--host") + 1][len("unix://"):]
root = sys.argv[sys.argv.index("--data-root") + 1]
with open(os.path.join(root, "spawned"), "a") as f:
    f.write(f"{os.getpid()}\n")
time.sleep(0.3)  # a slow start: concurrent CLIs must wait, not spawn again
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(16)
s.settimeout(20)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
    c.close()
'''


def test_autostart_spawns_one_daemon(tmp_path, monkeypatch):
    """Several CLIs racing on a dead socket start exactly one daemon and all get through."""
    from hoist.client import autostart

    script = tmp_path / "fake_hoistd.py"
    script.write_text(_FAKE_HOISTD)
    monkeypatch.setattr(autostart, "daemon_command",
                        lambda sock, root: [sys.executable, str(script), "--host", "unix://" + sock,
                                            "--data-root", root])
    sock = str(tmp_path / "run" / "h.sock")
    root = tmp_path / "root"
    errors = []

    def cli():
        try:
            autostart.ensure_daemon(sock, str(root))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=cli) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    pids = [int(p) for p in (root / "spawned").read_text().split()]
    try:
        assert errors == []
        assert len(pids) == 1
        assert autostart.probe(sock)
        assert os.path.exists(sock + ".lock")
        assert (root / "hoistd.log").exists()
    finally:
        import signal

        for pid in pids:  # stop only the fake daemon this test started
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_autostart_reports_a_daemon_that_dies(tmp_path, monkeypatch):
    from hoist.client import autostart

    monkeypatch.setattr(autostart, "daemon_command",
                        lambda sock, root: [sys.executable, "-c",
                                            "import sys; print('boom: cannot start'); sys.exit(3)"])
    with pytest.raises(Unavailable) as ei:
        autostart.ensure_daemon(str(tmp_path / "h.sock"), str(tmp_path / "root"))
    msg = str(ei.value)
    assert "exited with status 3" in msg and "boom: cannot start" in msg
