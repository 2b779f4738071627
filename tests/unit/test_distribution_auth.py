"""Challenges, credentials file, X-Registry-Auth, platforms: plain data, no network."""
from __future__ import annotations

import base64
import json
import os

import pytest

from hoist.distribution.auth import error_message, parse_challenges
from hoist.distribution.credentials import INDEX_SERVER, AuthConfig, CredentialStore, server_key
from hoist.distribution.progress import bar
from hoist.distribution.pull import parse_platform, select_manifest
from hoist.distribution.registry import configure_insecure, is_insecure
from hoist.errors import InvalidArgument, NotFound
from hoist.image import types as T


def test_parse_challenges_with_commas_in_quotes():
    chs = parse_challenges('Bearer realm="https://auth.example/token",service="reg",'
                           'scope="repository:a/b:pull,push"')
    assert len(chs) == 1 and chs[0].scheme == "bearer"
    assert chs[0].get("scope") == "repository:a/b:pull,push"
    assert chs[0].get("realm") == "https://auth.example/token"
    two = parse_challenges('Basic realm="x", Bearer realm="y"')
    assert [c.scheme for c in two] == ["basic", "bearer"]


def test_error_message_like_docker():
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}'
    assert error_message(body, "x") == "unauthorized: authentication required"
    assert error_message(b"", "fallback") == "fallback"


def test_credentials_file_roundtrip_keeps_other_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"psFormat": "x", "auths": {}}))
    store = CredentialStore(str(tmp_path))
    store.store(AuthConfig("u", "p:w", "127.0.0.1:5000"))
    store.store(AuthConfig("hub", "pw", "docker.io"))
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["psFormat"] == "x"
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"u:p:w"
    assert INDEX_SERVER in doc["auths"]
    assert os.stat(tmp_path / "config.json").st_mode & 0o777 == 0o600
    got = store.get("http://127.0.0.1:5000/")
    assert (got.username, got.password) == ("u", "p:w")
    assert store.get("index.docker.io").username == "hub"
    assert store.erase("127.0.0.1:5000") and not store.erase("127.0.0.1:5000")
    assert store.get("127.0.0.1:5000").empty


def test_x_registry_auth_roundtrip_and_garbage():
    a = AuthConfig("u", "p", "reg:5000")
    assert AuthConfig.from_header(a.to_header()) == a
    assert AuthConfig.from_header(a.to_header().rstrip("=")) == a
    assert AuthConfig.from_header("not base64 !!").empty
    assert server_key("https://index.docker.io/v1/") == INDEX_SERVER


def test_insecure_rules():
    configure_insecure([])
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost:1") and is_insecure("[::1]:5000")
    assert not is_insecure("registry.example:5000")
    configure_insecure(["registry.example:5000", "10.0.0.0/8"])
    try:
        assert is_insecure("registry.example:5000") and is_insecure("10.1.2.3:443")
        assert not is_insecure("registry.example:5001")
    finally:
        configure_insecure([])


def test_platforms():
    assert str(parse_platform("linux/arm64/8")) == "linux/arm64/v8"
    assert str(parse_platform("amd64")) == "linux/amd64"
    with pytest.raises(InvalidArgument):
        parse_platform("a/b/c/d")
    from hoist.digest import Digest
    mk = lambda arch, var="": T.Descriptor(T.OCI_MANIFEST, Digest("sha256", arch[0] * 64 if arch[0] in "abcdef" else "1" * 64), 1,
                                           platform=T.Platform(arch, "linux", var))
    idx = T.Index(T.OCI_INDEX, (mk("arm", "v6"), mk("arm", "v7"), mk("amd64")))
    assert select_manifest(idx, parse_platform("linux/arm/v7"), True).platform.variant == "v7"
    assert select_manifest(idx, parse_platform("linux/amd64"), False).platform.architecture == "amd64"
    with pytest.raises(NotFound):
        select_manifest(idx, parse_platform("linux/ppc64le"), True)


def test_progress_bar_like_docker():
    assert bar(50, 100, 0).startswith("[=========================>                         ]      50B/100B")
    assert bar(100, 100, 0) == "[==================================================>]     100B/100B"


def test_terminal_progress_rewrites_lines_in_place():
    from hoist.cli.distribution import TerminalProgress
    out = []
    t = TerminalProgress(out.append)
    t.show({"status": "Pulling from x", "id": "latest"})
    t.show({"status": "Pulling fs layer", "id": "aaa"})
    t.show({"status": "Pulling fs layer", "id": "bbb"})
    t.show({"status": "Downloading", "progress": "[=>   ] 1B/2B", "id": "aaa"})
    assert out[:3] == ["latest: Pulling from x\n", "aaa: Pulling fs layer\n", "bbb: Pulling fs layer\n"]
    assert out[3] == "\x1b[2A\x1b[2K\raaa: Downloading [=>   ] 1B/2B\n\x1b[1B"


def test_daemon_insecure_registry_flag():
    from hoist.daemon import parse_args
    args = parse_args(["--insecure-registry", "reg.example:5000", "--insecure-registry", "10.0.0.0/8"])
    assert args.insecure_registry == ["reg.example:5000", "10.0.0.0/8"]
    assert parse_args([]).insecure_registry == []


def test_token_cache_is_per_identity():
    from hoist.distribution.auth import Authenticator
    calls = []

    def fetch(method, url, headers, body):
        calls.append(headers.get("Authorization"))
        return 200, {}, json.dumps({"token": f"t{len(calls)}"}).encode()

    ch = 'Bearer realm="https://auth.example/token",service="s"'
    a = Authenticator("reg.example", AuthConfig("u", "p", "reg.example"), fetch)
    assert a.challenged(ch, "repository:x:pull", None)
    assert a.header("repository:x:pull") == "Bearer t1"
    again = Authenticator("reg.example", AuthConfig("u", "p", "reg.example"), fetch)
    assert again.header("repository:x:pull") == "Bearer t1"  # reused across clients
    other = Authenticator("reg.example", AuthConfig("v", "q", "reg.example"), fetch)
    assert other.header("repository:x:pull") is None  # never another user's token
    assert other.challenged(ch, "repository:x:pull", None) and other.header("repository:x:pull") == "Bearer t2"


def test_x_registry_auth_for_another_registry_is_not_used():
    from hoist.engine.distribution import _for
    mine = AuthConfig("u", "p", "reg.example:5000")
    assert _for(mine, "reg.example:5000") == mine
    assert _for(mine, "other.example").empty  # never B's password to A
    hub = AuthConfig("u", "p", "https://index.docker.io/v1/")
    assert _for(hub, "docker.io") == hub
    assert _for(None, "x.example").empty


def test_info_lists_insecure_registries():
    from hoist.api.routes import _registry_config
    configure_insecure(["reg.example:5000", "10.0.0.0/8"])
    try:
        rc = _registry_config()
        assert rc["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.0.0.0/8"]
        assert rc["IndexConfigs"]["reg.example:5000"]["Secure"] is False
        assert rc["IndexConfigs"]["docker.io"]["Official"] is True
    finally:
        configure_insecure([])
