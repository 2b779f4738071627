"""Registry authentication: Basic and the Bearer token flow, with a per-scope token cache.

Where credentials may go (Docker's rules, tightened):
- to the registry host they were given for, as Basic or as the token request's Basic;
- to the token realm named by that registry's challenge when the realm is on the same
  host, or is HTTPS. Docker sends them to any realm; a plain-HTTP realm on *another* host
  could be anyone on the path, so hoist asks it for an anonymous token instead;
- never to a redirect target or a blob URL on another host (see registry.py).
"""
from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from ..errors import RegistryError, Unauthorized
from .credentials import AuthConfig


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str:
        return dict(self.params).get(key, "")


def parse_challenges(header: str) -> list[Challenge]:
    """``WWW-Authenticate: Bearer realm="…",service="…",scope="…"`` → challenges.
    Quoted values may contain commas (scopes of several actions do)."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    scheme = ""
    params: list[tuple[str, str]] = []
    while i < n:
        while i < n and header[i] in " ,":
            i += 1
        j = i
        while j < n and header[j] not in " =,":
            j += 1
        token = header[i:j]
        k = j
        while k < n and header[k] == " ":
            k += 1
        if k < n and header[k] == "=" and scheme:
            k += 1
            while k < n and header[k] == " ":
                k += 1
            if k < n and header[k] == '"':
                k += 1
                val = []
                while k < n and header[k] != '"':
                    if header[k] == "\\" and k + 1 < n:
                        k += 1
                    val.append(header[k])
                    k += 1
                k += 1
                value = "".join(val)
            else:
                m = k
                while m < n and header[m] != ",":
                    m += 1
                value = header[k:m].strip()
                k = m
            params.append((token.lower(), value))
            i = k
        elif token:
            if scheme:
                out.append(Challenge(scheme, tuple(params)))
            scheme, params = token.lower(), []
            i = j
        else:
            i = j + 1
    if scheme:
        out.append(Challenge(scheme, tuple(params)))
    return out


def error_message(body: bytes, fallback: str) -> str:
    """A registry's OCI error body as Docker prints it: ``unauthorized: authentication required``."""
    try:
        doc = json.loads(body)
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if errs:
            parts = []
            for e in errs:
                code = str(e.get("code", "")).lower().replace("_", " ")
                msg = str(e.get("message", ""))
                parts.append(f"{code}: {msg}" if code and msg else code or msg)
            return ", ".join(parts)
        if isinstance(doc, dict) and doc.get("details"):
            return str(doc["details"])
    except (ValueError, AttributeError, TypeError):
        pass
    text = body[:200].decode(errors="replace").strip()
    return text or fallback


class Fetch(Protocol):
    def __call__(self, method: str, url: str, headers: dict[str, str],
                 body: bytes | None) -> tuple[int, dict[str, str], bytes]: ...


def _host_of(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")


class _TokenCache:
    """Tokens shared by every client of the process (one pull after another reuses
    them), keyed by registry, *who asked* and scope: a token fetched with one user's
    credentials is never handed to a request made with another's (or anonymously)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str]) -> tuple[str, float] | None:
        with self._lock:
            v = self._items.get(key)
            if v is not None and v[1] <= time.time():
                del self._items[key]
                return None
            return v

    def put(self, key: tuple[str, str, str], value: tuple[str, float]) -> None:
        with self._lock:
            if len(self._items) > 1024:  # bounded: drop the expired, then everything
                now = time.time()
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
                if len(self._items) > 1024:
                    self._items.clear()
            self._items[key] = value


TOKENS = _TokenCache()
_CHALLENGES: dict[str, Challenge] = {}


class _ScopedTokens:
    """The view of :data:`TOKENS` for one registry and one identity, as a mapping."""

    def __init__(self, registry: str, identity: str) -> None:
        self._registry = registry
        self._identity = identity

    def get(self, scope: str) -> tuple[str, float] | None:
        return TOKENS.get((self._registry, self._identity, scope))

    def __setitem__(self, scope: str, value: tuple[str, float]) -> None:
        TOKENS.put((self._registry, self._identity, scope), value)


def _identity(auth: AuthConfig) -> str:
    import hashlib
    secret = f"{auth.username}\0{auth.password}\0{auth.identity_token}".encode()
    return hashlib.sha256(secret).hexdigest()


class Authenticator:
    """Per registry: the credentials, the challenge we saw, and tokens cached per scope."""

    def __init__(self, registry_host: str, auth: AuthConfig, fetch: Fetch) -> None:
        self.registry_host = registry_host.lower()
        self.auth = auth
        self._fetch = fetch
        self._lock = threading.Lock()
        self._tokens = _ScopedTokens(self.registry_host, _identity(auth))
        # What this registry asked for last time: a new client need not be refused first.
        self._challenge: Challenge | None = _CHALLENGES.get(self.registry_host)

    # The header for a request needing ``scope``; None means "send nothing, see what happens".
    def header(self, scope: str) -> str | None:
        if self.auth.registry_token:
            return f"Bearer {self.auth.registry_token}"
        tok = self._tokens.get(scope)
        if tok:
            return f"Bearer {tok[0]}"
        with self._lock:
            ch = self._challenge
        if ch is not None and ch.scheme == "basic":
            return self._basic()
        return None

    def _basic(self) -> str | None:
        if not self.auth.username and not self.auth.password:
            return None
        raw = f"{self.auth.username}:{self.auth.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def challenged(self, www_authenticate: str, scope: str, sent: str | None) -> bool:
        """React to a 401 for a request that carried ``sent`` (or no Authorization).
        Returns True when a retry can succeed (a new token, or basic credentials not yet
        offered); False when we have nothing better to send."""
        chs = parse_challenges(www_authenticate)
        bearer = next((c for c in chs if c.scheme == "bearer"), None)
        basic = next((c for c in chs if c.scheme == "basic"), None)
        if bearer is not None:
            _CHALLENGES[self.registry_host] = bearer
            with self._lock:
                self._challenge = bearer
            cached = self._tokens.get(scope)
            if cached and f"Bearer {cached[0]}" != sent:
                return True  # another thread already fetched a newer token
            # The caller bounds the retries, so a token that is refused every time
            # (a scope the server will not grant) ends in the registry's own error.
            self._tokens[scope] = self._token(bearer, scope)
            return True
        if basic is not None:
            _CHALLENGES[self.registry_host] = basic
            with self._lock:
                self._challenge = basic
            offer = self._basic()
            return offer is not None and offer != sent
        return False

    def _realm_may_get_credentials(self, realm: str) -> bool:
        parts = urllib.parse.urlsplit(realm)
        host = (parts.hostname or "").lower()
        if host == self.registry_host.split(":")[0].strip("[]") or host == self.registry_host:
            return True
        return parts.scheme == "https"

    def _token(self, ch: Challenge, scope: str) -> tuple[str, float]:
        realm = ch.get("realm")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"invalid token realm {realm!r} in the registry's challenge")
        if parts.scheme == "http" and not _is_loopback(parts.hostname.lower()) and \
                parts.hostname.lower() != self.registry_host.split(":")[0]:
            raise RegistryError(f"refusing plain-HTTP token realm {realm} on another host")
        scopes = [s for s in dict.fromkeys([*scope.split(" "), *ch.get("scope").split(" ")]) if s]
        query = [("service", ch.get("service"))] if ch.get("service") else []
        query += [("scope", s) for s in scopes]
        headers: dict[str, str] = {}
        creds_ok = self._realm_may_get_credentials(realm)
        if creds_ok and self.auth.identity_token:
            form = urllib.parse.urlencode([("grant_type", "refresh_token"),
                                           ("refresh_token", self.auth.identity_token),
                                           ("client_id", "hoist"), *query]).encode()
            status, _, body = self._fetch("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                          form)
        else:
            if creds_ok:
                basic = self._basic()
                if basic:
                    headers["Authorization"] = basic
            sep = "&" if parts.query else "?"
            url = realm + (sep + urllib.parse.urlencode(query) if query else "")
            status, _, body = self._fetch("GET", url, headers, None)
        if status == 401 or status == 403:
            raise Unauthorized(error_message(body, "unauthorized: incorrect username or password")
                               if body.strip().startswith(b"{\"errors\"") else
                               "unauthorized: incorrect username or password")
        if status != 200:
            raise RegistryError(f"token request to {parts.scheme}://{parts.netloc} failed with "
                                f"status {status}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            expires_in = int(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, expires_in = None, 0
        if not isinstance(token, str) or not token:
            raise RegistryError("the token server answered without a token")
        # Refresh a little early so a token never expires between check and use.
        return token, time.time() + max(expires_in, 60) - 10

