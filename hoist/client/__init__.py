"""Docker Engine API client used by the ``hoist`` CLI.

Importing this package is cheap on purpose: the HTTP machinery (``http.client`` pulls in
the email parser) lives in :mod:`hoist.client.http` and is only imported when a
:class:`Client` is first asked for. Host resolution needs nothing but ``os``.
"""
from __future__ import annotations

import os

# Kept equal to hoist.config.DEFAULT_SOCKET / API_VERSION (a unit test checks it).
# hoist.config is not imported here because it pulls in dataclasses (and inspect),
# which costs several milliseconds on every CLI start.
DEFAULT_SOCKET = "/run/hoist/hoist.sock"
API_VERSION = "1.47"

__all__ = ["Client", "DEFAULT_SOCKET", "API_VERSION", "default_socket", "resolve_host",
           "parse_host", "quote_name"]


def default_socket() -> str:
    """hoist's own socket path: ``HOIST_SOCKET`` if set, else /run/hoist/hoist.sock."""
    return os.environ.get("HOIST_SOCKET") or DEFAULT_SOCKET


def resolve_host(host: str | None = None) -> str:
    """The daemon address the CLI talks to: ``-H``, else ``DOCKER_HOST``, else hoist's socket."""
    return host or os.environ.get("DOCKER_HOST") or ("unix://" + default_socket())


def parse_host(host: str) -> tuple[str, str, int]:
    """Split a daemon address into ``(scheme, address, port)``.

    ``("unix", "/path/to.sock", 0)`` for unix sockets (``unix:///p`` or a bare absolute
    path), ``("tcp", "127.0.0.1", 2375)`` for ``tcp://`` and ``http://`` addresses.
    """
    from ..errors import InvalidArgument

    h = host.strip()
    if h.startswith("/"):
        return "unix", h, 0
    scheme, sep, rest = h.partition("://")
    if not sep:
        raise InvalidArgument(f"unable to parse docker host `{host}`")
    scheme = scheme.lower()
    if scheme == "unix":
        if not rest:
            raise InvalidArgument(f"invalid bind address ({host}): empty string")
        return "unix", rest, 0
    if scheme in ("tcp", "http"):
        rest = rest.split("/", 1)[0]
        if not rest:
            raise InvalidArgument(f"invalid bind address ({host}): empty string")
        if rest.startswith("["):  # [ipv6]:port
            addr, _, tail = rest[1:].partition("]")
            port_s = tail[1:] if tail.startswith(":") else ""
        else:
            addr, _, port_s = rest.rpartition(":") if ":" in rest else (rest, "", "")
        if not port_s:
            port = 2375
        elif port_s.isdigit():
            port = int(port_s)
        else:
            raise InvalidArgument(f"invalid bind address ({host}): invalid port")
        return "tcp", addr or "127.0.0.1", port
    if scheme in ("https", "ssh", "npipe", "fd"):
        raise InvalidArgument(f"unsupported protocol for hoist: {scheme}:// ({host})")
    raise InvalidArgument(f"invalid bind address ({host}): unsupported protocol")


def quote_name(name: str) -> str:
    """Escape an object name (``busybox:latest``, ``t/imp:1``) for a URL path segment the
    way Go's ``url.URL`` does: ``/`` and ``:`` stay, spaces, ``?`` and ``#`` are escaped."""
    return percent_encode(name, "/:@$&+,;=")


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def percent_encode(text: str, safe: str = "") -> str:
    """RFC 3986 percent-encoding; urllib.parse would cost its import (and ipaddress's)
    on every CLI start."""
    keep = _UNRESERVED | frozenset(safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode())


def __getattr__(name: str):  # lazy: keep ``import hoist.client`` cheap
    if name == "Client":
        from .http import Client

        return Client
    raise AttributeError(name)
