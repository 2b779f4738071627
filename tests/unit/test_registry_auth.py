"""Registry authentication: htpasswd Basic, the built-in token endpoint and Bearer checks."""
from __future__ import annotations

import base64
import json
import time
import urllib.parse

import bcrypt
import pytest

from hoist.registry.auth import TokenSigner, parse_scope
from registry_util import Running, error_code


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory):
    p = tmp_path_factory.mktemp("auth") / "htpasswd"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    p.write_text(f"# users\nalice:{hashed}\nbob:{{SHA}}notbcrypt\ncarol:{hashed}\n")
    return str(p)


@pytest.fixture(scope="module")
def basic_reg(tmp_path_factory, htpasswd):
    r = Running(str(tmp_path_factory.mktemp("basic")), auth="basic", htpasswd=htpasswd,
                acl={"carol": ["pull"]})
    yield r
    r.close()


@pytest.fixture(scope="module")
def token_reg(tmp_path_factory, htpasswd):
    r = Running(str(tmp_path_factory.mktemp("token")), auth="token", htpasswd=htpasswd,
                token_secret="ab" * 32, token_ttl=60, acl={"carol": ["pull"]})
    yield r
    r.close()


def test_basic_challenge_and_login(basic_reg):
    st, h, body = basic_reg.req("GET", "/v2/")
    assert st == 401 and h["www-authenticate"] == 'Basic realm="hoist-registry"'
    assert error_code(body) == "UNAUTHORIZED"
    st, h, body = basic_reg.req("GET", "/v2/", headers=basic("alice", "wrong"))
    assert st == 401 and "www-authenticate" in h
    assert basic_reg.req("GET", "/v2/", headers=basic("bob", "anything"))[0] == 401
    assert basic_reg.req("GET", "/v2/", headers=basic("alice", "s3cret"))[0] == 200
    basic_reg.push_image("auth/app", "v1", [b"layer"], headers=basic("alice", "s3cret"))
    assert basic_reg.req("GET", "/v2/auth/app/manifests/v1")[0] == 401
    assert basic_reg.req("GET", "/v2/auth/app/manifests/v1", headers=basic("alice", "s3cret"))[0] == 200
    assert basic_reg.req("GET", "/healthz")[0] == 200


def _token(reg: Running, scope: str, creds: dict[str, str] | None = None) -> tuple[int, dict]:
    q = urllib.parse.urlencode({"service": "hoist-registry", "scope": scope})
    st, _, body = reg.req("GET", f"/token?{q}", headers=creds or {})
    return st, (json.loads(body) if st == 200 else {"body": body})


def test_token_flow(token_reg):
    st, h, body = token_reg.req("GET", "/v2/tok/app/manifests/latest")
    assert st == 401 and error_code(body) == "UNAUTHORIZED"
    ch = h["www-authenticate"]
    assert ch.startswith(f'Bearer realm="http://127.0.0.1:{token_reg.port}/token",service="hoist-registry"')
    assert 'scope="repository:tok/app:pull"' in ch
    st, doc = _token(token_reg, "repository:tok/app:pull,push", basic("alice", "s3cret"))
    assert st == 200 and doc["expires_in"] == 60 and doc["token"] == doc["access_token"]
    bearer = {"Authorization": f"Bearer {doc['token']}"}
    token_reg.push_image("tok/app", "latest", [b"tok-layer"], headers=bearer)
    assert token_reg.req("GET", "/v2/tok/app/manifests/latest", headers=bearer)[0] == 200
    assert token_reg.req("GET", "/v2/", headers=bearer)[0] == 200
    # the token does not cover another repository
    st, h, _ = token_reg.req("GET", "/v2/tok/other/manifests/latest", headers=bearer)
    assert st == 401 and 'error="insufficient_scope"' in h["www-authenticate"]
    # nor deletion
    assert token_reg.req("DELETE", "/v2/tok/app/manifests/latest", headers=bearer)[0] == 401


def test_token_bad_credentials_and_anonymous(token_reg):
    st, doc = _token(token_reg, "repository:tok/app:pull", basic("alice", "nope"))
    assert st == 401
    st, doc = _token(token_reg, "repository:tok/app:pull")
    assert st == 200
    bearer = {"Authorization": f"Bearer {doc['token']}"}
    assert token_reg.req("GET", "/v2/tok/app/manifests/latest", headers=bearer)[0] == 401


def test_forged_and_expired_tokens(token_reg):
    st, doc = _token(token_reg, "repository:tok/app:pull", basic("alice", "s3cret"))
    head, claims, sig = doc["token"].split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged_claims["access"][0]["name"] = "tok/secret"
    forged = head + "." + base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode() + "." + sig
    st, h, _ = token_reg.req("GET", "/v2/tok/secret/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert st == 401 and 'error="invalid_token"' in h["www-authenticate"]
    other = TokenSigner(b"another-secret", "hoist-registry", 60)
    tok, _, _ = other.issue("alice", "hoist-registry", [{"type": "repository", "name": "tok/app", "actions": ["pull"]}])
    assert token_reg.req("GET", "/v2/tok/app/tags/list", headers={"Authorization": f"Bearer {tok}"})[0] == 401
    same = TokenSigner(bytes.fromhex("ab" * 32), "hoist-registry", -10)
    tok, _, _ = same.issue("alice", "hoist-registry", [{"type": "repository", "name": "tok/app", "actions": ["pull"]}])
    assert token_reg.req("GET", "/v2/tok/app/tags/list", headers={"Authorization": f"Bearer {tok}"})[0] == 401
    fresh = TokenSigner(bytes.fromhex("ab" * 32), "hoist-registry", 60)
    tok, _, _ = fresh.issue("alice", "hoist-registry", [{"type": "repository", "name": "tok/app", "actions": ["pull"]}])
    assert token_reg.req("GET", "/v2/tok/app/tags/list", headers={"Authorization": f"Bearer {tok}"})[0] == 200


def test_catalog_scope(token_reg):
    st, h, _ = token_reg.req("GET", "/v2/_catalog")
    assert st == 401 and 'scope="registry:catalog:*"' in h["www-authenticate"]
    st, doc = _token(token_reg, "registry:catalog:*", basic("alice", "s3cret"))
    st, _, body = token_reg.req("GET", "/v2/_catalog", headers={"Authorization": f"Bearer {doc['token']}"})
    assert st == 200 and "tok/app" in json.loads(body)["repositories"]


def test_parse_scope():
    s = parse_scope("repository:a/b:pull,push")
    assert s is not None and s.name == "a/b" and s.actions == ("pull", "push")
    assert parse_scope("nonsense") is None


def test_basic_acl_denies_with_403(basic_reg):
    carol = basic("carol", "s3cret")
    basic_reg.push_image("acl/app", "v1", [b"acl-layer"], headers=basic("alice", "s3cret"))
    assert basic_reg.req("GET", "/v2/acl/app/manifests/v1", headers=carol)[0] == 200
    st, _, body = basic_reg.req("POST", "/v2/acl/app/blobs/uploads/", headers=carol)
    assert st == 403 and error_code(body) == "DENIED"
    assert basic_reg.req("DELETE", "/v2/acl/app/manifests/v1", headers=carol)[0] == 403


def test_token_acl_grants_only_allowed_actions(token_reg):
    st, doc = _token(token_reg, "repository:acl/app:pull,push", basic("carol", "s3cret"))
    claims = json.loads(base64.urlsafe_b64decode(doc["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "acl/app", "actions": ["pull"]}]
    assert claims["sub"] == "carol" and claims["exp"] - claims["iat"] == 60
    bearer = {"Authorization": f"Bearer {doc['token']}"}
    st, h, _ = token_reg.req("POST", "/v2/acl/app/blobs/uploads/", headers=bearer)
    assert st == 401 and 'error="insufficient_scope"' in h["www-authenticate"]


def _post_token(reg: Running, **form: str) -> tuple[int, dict[str, str], dict]:
    body = urllib.parse.urlencode(form).encode()
    st, h, out = reg.req("POST", "/token", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return st, h, json.loads(out)


def test_token_password_grant(token_reg):
    st, h, doc = _post_token(token_reg, grant_type="password", username="alice", password="s3cret",
                             service="hoist-registry", scope="repository:grant/app:pull,push",
                             client_id="containerd")
    assert st == 200 and h["cache-control"] == "no-store"
    assert set(doc) >= {"access_token", "token", "expires_in", "issued_at"}
    assert doc["token"] == doc["access_token"] and doc["expires_in"] == 60
    assert time.strptime(doc["issued_at"], "%Y-%m-%dT%H:%M:%SZ")
    bearer = {"Authorization": f"Bearer {doc['access_token']}"}
    token_reg.push_image("grant/app", "v1", [b"grant-layer"], headers=bearer)
    assert token_reg.req("GET", "/v2/grant/app/manifests/v1", headers=bearer)[0] == 200
    assert token_reg.req("GET", "/v2/grant/other/manifests/v1", headers=bearer)[0] == 401
    # the ACL applies to the form grant as to GET
    st, _, doc = _post_token(token_reg, grant_type="password", username="carol", password="s3cret",
                             service="hoist-registry", scope="repository:grant/app:pull,push")
    assert st == 200
    claims = json.loads(base64.urlsafe_b64decode(doc["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "grant/app", "actions": ["pull"]}]


def test_token_password_grant_errors(token_reg):
    for user, pw in (("alice", "wrong"), ("nobody", "s3cret"), ("bob", "anything"), ("", "")):
        st, _, doc = _post_token(token_reg, grant_type="password", username=user, password=pw,
                                 service="hoist-registry", scope="repository:grant/app:pull")
        assert st == 401 and doc["error"] == "invalid_grant" and "token" not in doc, user
    st, _, doc = _post_token(token_reg, grant_type="refresh_token", refresh_token="x", service="hoist-registry")
    assert st == 400 and doc["error"] == "unsupported_grant_type" and "refresh_token" in doc["error_description"]
    st, _, doc = _post_token(token_reg, username="alice", password="s3cret")
    assert st == 400 and doc["error"] == "unsupported_grant_type"
    st, _, doc = _post_token(token_reg, grant_type="password", username="alice", password="s3cret",
                             service="elsewhere")
    assert st == 400 and doc["error"] == "invalid_request"
    st, _, body = token_reg.req("DELETE", "/token")
    assert st == 405
