"""The Engine API client: HTTP/1.1 over a unix socket or TCP, stdlib only.

One :class:`Client` talks to one daemon. The first request negotiates the API version
the way the docker CLI does (``GET /_ping``, read ``API-Version``, use the lower of the
server's and ours, or ``DOCKER_API_VERSION`` when set) and every later path is prefixed
with ``/v1.xx``. Non-2xx answers become :mod:`hoist.errors` exceptions carrying the
text docker prints (``Error response from daemon: <message>``).
"""
from __future__ import annotations

import codecs
import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every CLI start
    from typing import Any, BinaryIO, Iterable, Iterator

from ..errors import Conflict, HoistError, InvalidArgument, NotFound, Unavailable
from . import API_VERSION, default_socket, parse_host, percent_encode, resolve_host
from .. import fastjson
from .wire import Connection
from .wire import Response as WireResponse

_CHUNK = 1 << 20
_STATUS_ERRORS: dict[int, type[HoistError]] = {400: InvalidArgument, 404: NotFound, 409: Conflict}
_RETRYABLE = (BrokenPipeError, ConnectionResetError)


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.strip().lstrip("v").split("."):
        try:
            out.append(int(part))
        except ValueError:
            out.append(0)
    return tuple(out)


def lower_version(a: str, b: str) -> str:
    return a if _version_tuple(a) < _version_tuple(b) else b


def error_from_response(status: int, reason: str, content_type: str, body: bytes,
                        url: str = "") -> HoistError:
    """The exception for a non-2xx answer, worded as the docker CLI words it."""
    text = body.decode("utf-8", "replace").strip()
    message = ""
    if not text:
        message = (f"request returned {reason or status} for API route and version {url}, "
                   "check if the server supports the requested API version")
        full = message
    else:
        if content_type.split(";")[0].strip() == "application/json" or text.startswith("{"):
            try:
                doc = fastjson.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("message"), str) and doc["message"]:
                message = doc["message"].strip()
            elif doc is not None:
                message = reason or str(status)
            else:
                message = text
        else:
            message = text
        full = "Error response from daemon: " + message
    err = _STATUS_ERRORS.get(status, HoistError)(full)
    err.status = status
    err.daemon_message = message  # type: ignore[attr-defined]
    return err


class Response:
    """A streaming response. Iterate, ``read``/``read1``/``readinto``, then ``close``."""

    def __init__(self, resp: WireResponse, conn: Connection) -> None:
        self._resp = resp
        self._conn = conn
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._resp.getheader(name, default)

    @property
    def content_type(self) -> str:
        return (self._resp.getheader("Content-Type") or "").split(";")[0].strip()

    def read(self, n: int | None = None) -> bytes:
        return self._resp.read() if n is None or n < 0 else self._resp.read(n)

    def read1(self, n: int = _CHUNK) -> bytes:
        return self._resp.read1(n)

    def readinto(self, b: Any) -> int:
        return self._resp.readinto(b)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._resp)

    def copy_to(self, out_file: Any) -> int:
        """Write the rest of the body to ``out_file``; returns the bytes copied."""
        total = 0
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = self._resp.readinto(buf)
            if not n:
                return total
            out_file.write(view[:n])
            total += n

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A Docker Engine API client for one daemon address.

    ``host``: ``unix:///path``, ``tcp://host:port`` or ``http://host:port``; ``None``
    means ``DOCKER_HOST`` or hoist's own socket. ``data_root`` is the CLI's
    ``--data-root`` (it makes a missing daemon on a non-default socket eligible for
    autostart); ``autostart=False`` never starts a daemon.
    """

    def __init__(self, host: str | None = None, *, data_root: str | None = None,
                 autostart: bool = True, timeout: float | None = None,
                 version: str | None = None, debug: bool = False) -> None:
        self.debug = debug
        self.host = resolve_host(host)
        self.scheme, self.address, self.port = parse_host(self.host)
        self.data_root = data_root
        self.autostart = autostart
        self.timeout = timeout
        self._version = version or (os.environ.get("DOCKER_API_VERSION") or "").lstrip("v") or None
        self._version_pinned = self._version is not None
        self._conn: Connection | None = None
        self._autostarted = False
        self.ping_headers: dict[str, str] = {}

    # ------------------------------------------------------------------ plumbing

    @property
    def display_host(self) -> str:
        if self.scheme == "unix":
            return "unix://" + self.address
        return f"tcp://{self.address}:{self.port}"

    def _new_conn(self) -> Connection:
        if self.scheme == "unix":
            return Connection.open_unix(self.address, self.timeout)
        return Connection.open_tcp(self.address, self.port, self.timeout)

    def _unavailable(self, exc: OSError) -> HoistError:
        if isinstance(exc, PermissionError):
            return Unavailable(
                f"permission denied while trying to connect to the hoist daemon socket at "
                f"{self.display_host}: connect: permission denied")
        return Unavailable(f"Cannot connect to the hoist daemon at {self.display_host}. "
                           "Is the daemon running?")

    def _may_autostart(self) -> bool:
        if not self.autostart or self._autostarted or self.scheme != "unix":
            return False
        if self.data_root or os.environ.get("HOIST_DATA_ROOT"):
            return True
        return os.path.abspath(self.address) == os.path.abspath(default_socket())

    def _connect(self) -> Connection:
        try:
            return self._new_conn()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if not self._may_autostart():
                raise self._unavailable(exc) from None
            from .autostart import ensure_daemon

            self._autostarted = True
            ensure_daemon(self.address, self.data_root, display_host=self.display_host,
                          debug=self.debug)
            try:
                return self._new_conn()
            except OSError as exc2:
                raise self._unavailable(exc2) from None
        except TimeoutError:
            raise Unavailable(f"Cannot connect to the hoist daemon at {self.display_host}. "
                              "Is the daemon running? (connection timed out)") from None
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _url(self, path: str, params: Any = None, versioned: bool = True) -> str:
        if versioned:
            self.negotiate()
            path = f"/v{self._version}{path}"
        query = _encode_params(params)
        return path + ("?" + query if query else "")

    def _send(self, conn: Connection, method: str, url: str, body: Any,
              headers: dict[str, str] | None) -> WireResponse:
        hdrs = {"User-Agent": _user_agent()}
        if headers:
            hdrs.update(headers)
        try:
            conn.send_request(method, url, hdrs, body)
        except (BrokenPipeError, ConnectionResetError):
            if body is None or isinstance(body, (bytes, bytearray, memoryview)):
                raise
            # The daemon answered (and hung up) before taking the whole body: its
            # answer is more useful than the broken pipe.
            try:
                return conn.read_response(method)
            except OSError:
                raise Unavailable(f"the hoist daemon at {self.display_host} closed the "
                                  "connection while the request body was being sent") from None
        return conn.read_response(method)

    def _request(self, method: str, url: str, body: Any = None,
                 headers: dict[str, str] | None = None, *, stream: bool = False) -> Any:
        """Send one request. ``stream=False``: returns ``(response, body_bytes)`` and keeps
        the connection for reuse. ``stream=True``: returns ``(response, conn)`` on a
        connection owned by the caller."""
        reusable_body = body is None or isinstance(body, (bytes, bytearray, memoryview))
        for attempt in (0, 1):
            reused = not stream and self._conn is not None
            conn = self._conn if reused else self._connect()
            try:
                resp = self._send(conn, method, url, body, headers)
                if stream:
                    return resp, conn
                data = resp.read()
            except _RETRYABLE:
                conn.close()
                if not stream:
                    self._conn = None
                if reused and reusable_body and attempt == 0:
                    continue  # the kept-alive connection had gone stale
                raise Unavailable(f"the hoist daemon at {self.display_host} closed the "
                                  "connection unexpectedly") from None
            except OSError as exc:
                conn.close()
                if not stream:
                    self._conn = None
                raise Unavailable(f"error during connect to {self.display_host}: {exc}") from None
            if not conn.reusable:
                conn.close()
                self._conn = None
            else:
                self._conn = conn
            return resp, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ version

    def ping(self) -> dict[str, str]:
        """``GET /_ping``; returns the response headers (lower-cased names)."""
        resp, data = self._request("GET", "/_ping")
        if resp.status >= 400:
            raise error_from_response(resp.status, resp.reason, resp.getheader("Content-Type") or "",
                                      data, "/_ping")
        self.ping_headers = dict(resp.headers)
        return self.ping_headers

    def negotiate(self) -> str:
        if self._version is None:
            try:
                headers = self.ping()
                server = headers.get("api-version") or "1.24"
            except HoistError as e:
                if isinstance(e, Unavailable):
                    raise
                server = "1.24"
            self._version = lower_version(server, API_VERSION)
        return self._version

    @property
    def api_version(self) -> str:
        return self.negotiate()

    # ------------------------------------------------------------------ requests

    def request(self, method: str, path: str, params: Any = None, body: Any = None,
                headers: dict[str, str] | None = None, *, versioned: bool = True) -> bytes:
        """One request with the whole answer read; raises on a non-2xx status."""
        url = self._url(path, params, versioned)
        resp, data = self._request(method, url, body, headers)
        if resp.status >= 400:
            raise error_from_response(resp.status, resp.reason,
                                      resp.getheader("Content-Type") or "", data, url)
        return data

    def _json(self, method: str, path: str, params: Any, body: Any) -> Any:
        headers = None
        if body is not None and not isinstance(body, (bytes, bytearray)):
            from .. import fastjson as json

            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
        data = self.request(method, path, params, body, headers)
        if not data.strip():
            return None
        try:
            return fastjson.loads(data)
        except ValueError:
            raise HoistError(f"Error reading JSON: invalid response from daemon for {path}") from None

    def get_json(self, path: str, params: Any = None) -> Any:
        return self._json("GET", path, params, None)

    def post_json(self, path: str, params: Any = None, body: Any = None) -> Any:
        return self._json("POST", path, params, body)

    def delete_json(self, path: str, params: Any = None) -> Any:
        return self._json("DELETE", path, params, None)

    def raw(self, method: str, path: str, params: Any = None,
            body: bytes | BinaryIO | Iterable[bytes] | None = None,
            headers: dict[str, str] | None = None, *, versioned: bool = True) -> Response:
        """Send a request (body may be bytes, a file or an iterator of bytes, streamed)
        and return the streaming :class:`Response`; raises on a non-2xx status."""
        url = self._url(path, params, versioned)
        resp, conn = self._request(method, url, body, headers, stream=True)
        if resp.status >= 400:
            try:
                data = resp.read(1 << 20)
            except OSError:
                data = b""
            conn.close()
            raise error_from_response(resp.status, resp.reason,
                                      resp.getheader("Content-Type") or "", data, url)
        return Response(resp, conn)

    def stream_json(self, method: str, path: str, params: Any = None, body: Any = None,
                    headers: dict[str, str] | None = None) -> Iterator[Any]:
        """Yield the JSON values of a newline-delimited or concatenated JSON stream."""
        resp = self.raw(method, path, params, body, headers)
        try:
            yield from iter_json(resp)
        finally:
            resp.close()

    def download(self, path: str, params: Any = None, out_file: Any = None) -> int:
        """Copy a response body to ``out_file``; returns the number of bytes copied."""
        resp = self.raw("GET", path, params)
        try:
            return resp.copy_to(out_file)
        finally:
            resp.close()


def iter_json(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Decode a stream of JSON values (newline-separated or simply concatenated)."""
    import json

    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    buf = ""
    for chunk in chunks:
        buf += utf8.decode(chunk)
        pos = 0
        n = len(buf)
        while True:
            while pos < n and buf[pos] in " \t\r\n":
                pos += 1
            if pos >= n:
                break
            try:
                obj, end = decoder.raw_decode(buf, pos)
            except ValueError:
                break  # incomplete value: wait for more data
            if end >= n and buf[pos] not in "{[\"":
                # A bare number/literal at the very end may still be growing.
                break
            yield obj
            pos = end
        buf = buf[pos:]
    buf += utf8.decode(b"", final=True)
    rest = buf.strip()
    while rest:
        try:
            obj, end = decoder.raw_decode(rest)
        except ValueError:
            raise HoistError(f"invalid JSON in the daemon's message stream: {rest[:80]!r}") from None
        yield obj
        rest = rest[end:].strip()


def _encode_params(params: Any) -> str:
    if not params:
        return ""
    items: list[tuple[str, str]] = []
    pairs = params.items() if isinstance(params, dict) else params
    for k, v in pairs:
        if v is None:
            continue
        if isinstance(v, bool):
            items.append((k, "1" if v else "0"))
        elif isinstance(v, (list, tuple)):
            items.extend((k, str(x)) for x in v)
        elif isinstance(v, dict):
            import json

            items.append((k, json.dumps(v, separators=(",", ":"))))
        else:
            items.append((k, str(v)))
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in items)


def _user_agent() -> str:
    try:
        from .. import __version__
    except ImportError:  # pragma: no cover
        __version__ = "dev"
    return f"hoist-cli/{__version__}"
