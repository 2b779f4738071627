"""Registry access control: none, htpasswd Basic, or Bearer tokens from a built-in endpoint.

Tokens are JWT-shaped (``header.claims.signature``, base64url) signed with HMAC-SHA256
under a per-server secret; the claims carry an expiry and Docker's ``access`` list of
``{type, name, actions}``. Verifying a bcrypt password costs tens of milliseconds, so
successful checks are cached by the exact header value for a short while.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from ..errors import InvalidArgument, Unavailable
from . import errors as E


@dataclass(frozen=True, slots=True)
class Scope:
    type: str      # "repository" | "registry"
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(text: str) -> Scope | None:
    # Repository names never contain ':' but may be followed by a port-less name; split
    # from both ends so "repository:a/b:pull,push" parses.
    typ, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None
    return Scope(typ, name, tuple(a for a in actions.split(",") if a))


# A valid bcrypt hash of a random password, checked for unknown users.
_DUMMY_HASH = b"$2b$10$" + b"N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"


class Htpasswd:
    """An Apache htpasswd file with bcrypt entries (``htpasswd -B``), as Docker's registry reads."""

    def __init__(self, path: str) -> None:
        try:
            import bcrypt  # noqa: F401
        except ImportError:
            raise Unavailable("htpasswd authentication needs the bcrypt package "
                              "(pip install 'hoist[registry]')") from None
        self.path = path
        self.users: dict[str, bytes] = {}
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"cannot read htpasswd file {path}: {e}") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            # Only bcrypt, as Docker's registry: MD5/SHA1/crypt entries are ignored.
            if sep and hashed.startswith(("$2y$", "$2a$", "$2b$")):
                self.users[user] = hashed.encode()

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            # Spend the same time as a real check so a probe cannot tell users apart.
            bcrypt.checkpw(password.encode(), _DUMMY_HASH)
            return False
        try:
            return bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes, issuer: str, ttl: int) -> None:
        self.secret = secret
        self.issuer = issuer
        self.ttl = ttl

    def issue(self, subject: str, service: str, access: list[dict]) -> tuple[str, int, float]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": service, "iat": now, "nbf": now - 1,
                  "exp": now + self.ttl, "jti": secrets.token_hex(8), "access": access}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}", self.ttl, now

    def verify(self, token: str, service: str) -> dict | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        want = hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(want, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, TypeError):
            return None
        now = time.time()
        if not isinstance(claims, dict) or claims.get("aud") != service or claims.get("iss") != self.issuer:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now or claims.get("nbf", 0) > now + 5:
            return None
        return claims


@dataclass(frozen=True, slots=True)
class Identity:
    user: str                       # "" when anonymous
    access: tuple[Scope, ...] | None  # None: everything allowed


class Authorizer(Protocol):
    def authorize(self, headers: dict[str, str], host: str, scopes: list[Scope]) -> Identity: ...
    def allowed(self, ident: Identity, scope: Scope) -> bool: ...


def _basic_credentials(header: str) -> tuple[str, str] | None:
    kind, _, value = header.partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class NoAuth:
    def authorize(self, headers: dict[str, str], host: str, scopes: list[Scope]) -> Identity:
        return Identity("", None)

    def allowed(self, ident: Identity, scope: Scope) -> bool:
        return True


class _CheckCache:
    """Remembers recently verified Basic headers so bcrypt runs once per client session."""

    def __init__(self, htpasswd: Htpasswd, ttl: float = 60.0) -> None:
        self.htpasswd = htpasswd
        self.ttl = ttl
        self._ok: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def user(self, header: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._ok.get(header)
        if hit is not None and hit[1] > now:
            return hit[0]
        creds = _basic_credentials(header)
        if creds is None or not self.htpasswd.check(*creds):
            return None
        with self._lock:
            if len(self._ok) > 1024:
                self._ok.clear()
            self._ok[header] = (creds[0], now + self.ttl)
        return creds[0]


class Acl:
    """Per-user repository actions (``{"bob": ["pull"]}``); users not listed may do anything."""

    def __init__(self, rules: dict[str, list[str]] | None = None) -> None:
        self.rules = {u: frozenset(a) for u, a in (rules or {}).items()}

    def actions(self, user: str, scope: Scope) -> tuple[str, ...]:
        """The subset of ``scope.actions`` that ``user`` may perform."""
        allowed = self.rules.get(user)
        if allowed is None or "*" in allowed:
            return scope.actions
        if scope.type == "registry":  # the catalog is a read
            return scope.actions if "pull" in allowed else ()
        return tuple(a for a in scope.actions if a in allowed)


class BasicAuth:
    def __init__(self, htpasswd: Htpasswd, realm: str = "hoist-registry", acl: Acl | None = None) -> None:
        self.cache = _CheckCache(htpasswd)
        self.realm = realm
        self.acl = acl or Acl()

    def authorize(self, headers: dict[str, str], host: str, scopes: list[Scope]) -> Identity:
        challenge = f'Basic realm="{self.realm}"'
        header = headers.get("authorization", "")
        if not header:
            raise E.unauthorized(challenge)
        user = self.cache.user(header)
        if user is None:
            raise E.unauthorized(challenge, "invalid username or password")
        ident = Identity(user, None)
        for s in scopes:
            if not self.allowed(ident, s):
                raise E.denied()
        return ident

    def allowed(self, ident: Identity, scope: Scope) -> bool:
        return self.acl.actions(ident.user, scope) == scope.actions


def _covers(granted: tuple[Scope, ...], want: Scope) -> bool:
    for g in granted:
        if g.type == want.type and g.name == want.name:
            if "*" in g.actions or all(a in g.actions for a in want.actions):
                return True
    return False


class TokenAuth:
    """Bearer tokens; the same server also runs the token endpoint (``/token``)."""

    GRANTABLE = ("pull", "push", "delete", "*")

    def __init__(self, htpasswd: Htpasswd, signer: TokenSigner, service: str, realm: str = "",
                 scheme: str = "http", acl: Acl | None = None) -> None:
        self.acl = acl or Acl()
        self.cache = _CheckCache(htpasswd)
        self.signer = signer
        self.service = service
        self.realm = realm
        self.scheme = scheme

    def _challenge(self, host: str, scopes: list[Scope], error: str = "") -> str:
        realm = self.realm or f"{self.scheme}://{host}/token"
        out = f'Bearer realm="{realm}",service="{self.service}"'
        if scopes:
            out += ',scope="' + " ".join(str(s) for s in scopes) + '"'
        if error:
            out += f',error="{error}"'
        return out

    def authorize(self, headers: dict[str, str], host: str, scopes: list[Scope]) -> Identity:
        header = headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            raise E.unauthorized(self._challenge(host, scopes))
        claims = self.signer.verify(token.strip(), self.service)
        if claims is None:
            raise E.unauthorized(self._challenge(host, scopes, "invalid_token"), "invalid or expired token")
        granted = []
        for a in claims.get("access") or []:
            if isinstance(a, dict):
                granted.append(Scope(str(a.get("type")), str(a.get("name")),
                                     tuple(str(x) for x in a.get("actions") or [])))
        ident = Identity(str(claims.get("sub", "")), tuple(granted))
        for s in scopes:
            if not _covers(ident.access or (), s):
                raise E.unauthorized(self._challenge(host, scopes, "insufficient_scope"),
                                     "authentication required",
                                     [{"Type": s.type, "Name": s.name, "Action": a} for a in s.actions])
        return ident

    def allowed(self, ident: Identity, scope: Scope) -> bool:
        return ident.access is None or _covers(ident.access, scope)

    def token_response(self, headers: dict[str, str], query: dict[str, list[str]]) -> dict:
        """The token endpoint. Anonymous callers get a token granting nothing (as the
        reference token servers do); bad credentials are refused outright."""
        service = (query.get("service") or [self.service])[0]
        if service != self.service:
            raise E.denied(f"unknown service {service!r}")
        user = ""
        header = headers.get("authorization", "")
        if header:
            found = self.cache.user(header)
            if found is None:
                raise E.unauthorized('Basic realm="hoist-registry-token"', "invalid username or password")
            user = found
        return self._issue(user, service, query.get("scope", []))

    def password_grant(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        """``POST /token`` (OAuth2, RFC 6749 4.3), which containerd and newer docker
        clients try before GET: (status, body), errors in OAuth2's own JSON shape."""
        def one(key: str) -> str:
            return (form.get(key) or [""])[0]

        grant = one("grant_type")
        if grant != "password":
            # refresh tokens are never issued, so a refresh_token grant cannot succeed
            return 400, {"error": "unsupported_grant_type",
                         "error_description": f"grant_type {grant!r} is not supported (want password)"}
        service = one("service") or self.service
        if service != self.service:
            return 400, {"error": "invalid_request", "error_description": f"unknown service {service!r}"}
        user, password = one("username"), one("password")
        if not user or not self.cache.htpasswd.check(user, password):
            return 401, {"error": "invalid_grant", "error_description": "invalid username or password"}
        return 200, self._issue(user, service, form.get("scope", []))

    def _issue(self, user: str, service: str, scopes: list[str]) -> dict:
        access = []
        if user:
            for text in (s for q in scopes for s in q.split(" ")):
                sc = parse_scope(text)
                if sc is None:
                    continue
                actions = [a for a in sc.actions if a in self.GRANTABLE]
                if sc.type == "registry" and sc.name == "catalog":
                    actions = ["*"] if "*" in sc.actions else []
                elif sc.type != "repository":
                    actions = []
                actions = list(self.acl.actions(user, Scope(sc.type, sc.name, tuple(actions))))
                if actions:
                    access.append({"type": sc.type, "name": sc.name, "actions": actions})
        token, ttl, issued = self.signer.issue(user, service, access)
        return {"token": token, "access_token": token, "expires_in": ttl,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued))}
