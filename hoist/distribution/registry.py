"""An HTTP/1.1 client for one registry: keep-alive pool, TLS, auth, redirects, retries.

Plain HTTP only for loopback registries and those the daemon was told are insecure
(``--insecure-registry``), as Docker. Authorization is attached only to requests for
the registry's own host; a redirect elsewhere (a blob on a CDN) is followed bare.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import NotFound, RegistryError, Unauthorized
from .auth import Authenticator, error_message
from .credentials import AuthConfig

DOCKER_HUB_API = "registry-1.docker.io"
RETRIES = 4
BACKOFF = 0.25
TIMEOUT = 60.0
_INSECURE: list[str] = []
_SCHEMES: dict[str, str] = {}
_SCHEMES_LOCK = threading.Lock()


def configure_insecure(registries: list[str]) -> None:
    """The daemon's ``--insecure-registry`` values: host[:port] names or CIDRs."""
    _INSECURE[:] = [r.strip() for r in registries if r.strip()]


def insecure_registries() -> list[str]:
    return list(_INSECURE)


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain in ("docker.io", "index.docker.io") else domain


def _split_host(netloc: str) -> str:
    return (urllib.parse.urlsplit("//" + netloc).hostname or "").lower()


def is_insecure(netloc: str) -> bool:
    host = _split_host(netloc)
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is not None and addr.is_loopback:
        return True
    for entry in _INSECURE:
        if entry == netloc or entry == host:
            return True
        if "/" in entry and addr is not None:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
    return False


class Response:
    """A response whose body is read by the caller; the connection goes back to the
    pool only when the body was read to its end."""

    def __init__(self, raw: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 pool: "_Pool", key: tuple[str, str], url: str) -> None:
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.url = url
        self._conn = conn
        self._pool = pool
        self._key = key
        self._done = False

    def header(self, name: str, default: str = "") -> str:
        return self.raw.getheader(name, default) or default

    def read(self, n: int = -1) -> bytes:
        return self.raw.read() if n is None or n < 0 else self.raw.read(n)

    def readinto(self, b: Any) -> int:
        return self.raw.readinto(b)

    def read_limited(self, limit: int) -> bytes:
        data = self.raw.read(limit + 1)
        if len(data) > limit:
            self.close(reuse=False)
            raise RegistryError(f"response from {self.url} is larger than {limit} bytes")
        self.close()
        return data

    def close(self, reuse: bool = True) -> None:
        if self._done:
            return
        self._done = True
        if reuse and not self.raw.isclosed() and self.raw.length == 0:
            self.raw.read()  # a HEAD or empty answer: consumed, so the connection is reusable
        if reuse and self.raw.isclosed() and not self.raw.will_close:
            self._pool.put(self._key, self._conn)
        else:
            self._conn.close()


class _Pool:
    def __init__(self) -> None:
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        scheme, netloc = key
        if scheme == "https":
            ctx = ssl.create_default_context()
            if is_insecure(netloc):
                # Docker's insecure registries: TLS if offered, certificate not checked.
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=ctx, blocksize=1 << 20)
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT, blocksize=1 << 20)

    def put(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            lst = self._idle.setdefault(key, [])
            if len(lst) < 8:
                lst.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for lst in self._idle.values() for c in lst]
            self._idle.clear()
        for c in conns:
            c.close()


_TRANSIENT = (ConnectionError, socket.timeout, http.client.HTTPException, ssl.SSLError, OSError)


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    netloc: str
    path: str  # path + query


def _target(url: str) -> _Target:
    p = urllib.parse.urlsplit(url)
    return _Target(p.scheme, p.netloc, (p.path or "/") + (f"?{p.query}" if p.query else ""))


class RegistryClient:
    """One registry (``domain`` as in a reference: docker.io, localhost:5000, ...)."""

    def __init__(self, domain: str, auth: AuthConfig | None = None, *,
                 retries: int = RETRIES, backoff: float = BACKOFF) -> None:
        self.domain = domain
        self.netloc = api_host(domain)
        self.pool = _Pool()
        self.retries = retries
        self.backoff = backoff
        self.auth = Authenticator(self.netloc, auth or AuthConfig(server=domain), self._plain_fetch)
        self._scheme: str | None = None

    def close(self) -> None:
        self.pool.close()

    # ----------------------------------------------------------------- endpoint

    @property
    def base(self) -> str:
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.netloc}"

    def _probe_scheme(self) -> str:
        """HTTPS always; for insecure registries HTTP when HTTPS does not answer."""
        with _SCHEMES_LOCK:
            known = _SCHEMES.get(self.netloc)
        if known:
            return known
        scheme = "https"
        if is_insecure(self.netloc):
            try:
                conn = self.pool.get(("https", self.netloc))
                conn.timeout = 5
                conn.request("GET", "/v2/")
                r = conn.getresponse()
                r.read()
                conn.close()
            except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
                scheme = "http"
        with _SCHEMES_LOCK:
            _SCHEMES[self.netloc] = scheme
        return scheme

    # ----------------------------------------------------------------- requests

    def _plain_fetch(self, method: str, url: str, headers: dict[str, str],
                     body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        """The token endpoint: no registry Authorization, no redirects with credentials."""
        resp = self._send(method, url, headers, body)
        data = resp.read_limited(1 << 20)
        return resp.status, dict(resp.headers.items()), data

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any) -> Response:
        """One request with retries on connection errors and 5xx (body rewound)."""
        t = _target(url)
        if t.scheme == "http" and not is_insecure(t.netloc):
            raise RegistryError(f"refusing plain HTTP to {t.netloc}: not an insecure registry")
        start = body.tell() if hasattr(body, "seek") else None
        attempt = 0
        while True:
            conn = self.pool.get((t.scheme, t.netloc))
            try:
                if start is not None and attempt:
                    body.seek(start)
                conn.request(method, t.path, body=body, headers=headers)
                raw = conn.getresponse()
            except _TRANSIENT as e:
                conn.close()
                if attempt >= self.retries or (start is None and body is not None
                                               and not isinstance(body, (bytes, bytearray))):
                    raise RegistryError(f"{method} {url}: {e or type(e).__name__}") from None
                attempt += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            resp = Response(raw, conn, self.pool, (t.scheme, t.netloc), url)
            if raw.status >= 500 and attempt < self.retries and method in ("GET", "HEAD", "PUT") \
                    and (body is None or isinstance(body, (bytes, bytearray)) or start is not None):
                _drain(resp, method)
                attempt += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            return resp

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: Any = None, redirects: bool = True) -> Response:
        """A request to the registry API with auth. ``path`` may be an absolute URL from a
        Location header; credentials are attached only when it is this registry's host."""
        url = self.url(path)
        hdrs = dict(headers or {})
        pos = body.tell() if hasattr(body, "seek") else None
        last = b""
        for _ in range(3):
            if pos is not None:
                body.seek(pos)
            own = _target(url).netloc == self.netloc
            send = dict(hdrs)
            if own:
                h = self.auth.header(scope)
                if h:
                    send["Authorization"] = h
            resp = self._send(method, url, send, body)
            if resp.status == 401 and own:
                challenge = resp.header("WWW-Authenticate")
                if method == "HEAD":
                    resp.close()
                    data = b""
                else:
                    data = resp.read_limited(1 << 20)
                last = data
                if challenge and self.auth.challenged(challenge, scope, send.get("Authorization")):
                    continue
                raise Unauthorized(error_message(data, "unauthorized: authentication required"))
            if redirects and resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                loc = resp.header("Location")
                _drain(resp, method)
                return self._follow(method, urllib.parse.urljoin(url, loc), hdrs, scope)
            return resp
        raise Unauthorized(error_message(last, "unauthorized: authentication required"))

    def _follow(self, method: str, url: str, headers: dict[str, str], scope: str) -> Response:
        for _ in range(5):
            t = _target(url)
            send = dict(headers)
            send.pop("Authorization", None)
            if t.netloc == self.netloc:
                h = self.auth.header(scope)
                if h:
                    send["Authorization"] = h
            resp = self._send(method, url, send, None)
            if resp.status in (301, 302, 303, 307, 308):
                loc = resp.header("Location")
                _drain(resp, method)
                url = urllib.parse.urljoin(url, loc)
                continue
            return resp
        raise RegistryError(f"too many redirects for {url}")

    def check(self, resp: Response, what: str, ok: tuple[int, ...] = (200,)) -> Response:
        """Raise Docker-shaped errors for a non-OK answer (and release the connection)."""
        if resp.status in ok:
            return resp
        data = b"" if resp.raw._method == "HEAD" else resp.read_limited(1 << 20)  # type: ignore[attr-defined]
        resp.close()
        msg = error_message(data, f"{resp.status} {resp.raw.reason}")
        if resp.status == 404:
            raise NotFound(f"{what}: {msg}" if "unknown" not in msg else msg)
        if resp.status in (401, 403):
            raise Unauthorized(msg)
        raise RegistryError(f"{what}: {msg}")

    # ----------------------------------------------------------------- helpers

    def ping(self) -> None:
        """GET /v2/ with credentials: the login check."""
        resp = self.request("GET", "/v2/", scope="")
        self.check(resp, f"login attempt to {self.base}/v2/")
        resp.read_limited(1 << 20)


def _drain(resp: Response, method: str) -> None:
    if method == "HEAD":
        resp.close()
    else:
        resp.read_limited(1 << 20)


def scope_for(path: str, actions: str) -> str:
    return f"repository:{path}:{actions}"


def close_quietly(f: BinaryIO | None) -> None:
    if f is not None:
        try:
            f.close()
        except OSError:
            pass
