"""ASGI scopes built from an `httpx.Request`, the way `levante.server` builds them from bytes."""

from __future__ import annotations

from typing import Any

import httpx

from levante.asgi import HTTP_SPEC_VERSION, ASGIVersions
from levante.testing.options import AppOptions

#: Starlette's TestClient extension: the app may send ``{"type": "http.response.debug",
#: "info": {...}}`` before the response starts (its templates send what they rendered).
DEBUG_EXTENSION = "http.response.debug"

_ASGI: ASGIVersions = {"version": "3.0", "spec_version": HTTP_SPEC_VERSION}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _connection(request: httpx.Request, options: AppOptions) -> dict[str, Any]:
    """What the ``http`` and ``websocket`` scopes share."""
    path, raw_path = _paths(request.url, options.root_path)
    return {
        "asgi": _ASGI,
        "http_version": "1.1",
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": request.url.query,
        "root_path": options.root_path,
        "headers": _headers(request),
        "client": options.client,
        "server": _server(request.url),
        "state": options.state.copy(),
    }


def http_scope(request: httpx.Request, options: AppOptions) -> dict[str, Any]:
    """The ``http`` scope for `request`: what a server would pass after parsing it."""
    return {
        "type": "http",
        "method": request.method,
        **_connection(request, options),
        "extensions": _http_extensions(options),
    }


def _http_extensions(options: AppOptions) -> dict[str, dict[object, object]]:
    extensions: dict[str, dict[object, object]] = {
        "http.response.trailers": {},
        "http.response.pathsend": {},
    }
    if options.response_debug:
        extensions[DEBUG_EXTENSION] = {}
    return extensions


def websocket_scope(request: httpx.Request, options: AppOptions) -> dict[str, Any]:
    """The ``websocket`` scope for the handshake `request` (its URL scheme is ws or wss)."""
    return {
        "type": "websocket",
        **_connection(request, options),
        "subprotocols": _subprotocols(request.headers),
        "extensions": {"websocket.http.response": {}},
    }


def _paths(url: httpx.URL, root_path: str) -> tuple[str, bytes]:
    # httpx's `path` is already percent-decoded; `raw_path` carries the query.
    # Like `levante --root-path` (and uvicorn), the client plays the proxy that
    # stripped the prefix, so the prefix goes back in front of the path.
    raw_path = url.raw_path.partition(b"?")[0]
    return root_path + url.path, root_path.encode() + raw_path


def _headers(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    headers = [(name.lower(), value) for name, value in request.headers.raw]
    if not any(name == b"host" for name, _ in headers):
        headers.insert(0, (b"host", request.url.netloc))
    return headers


def _server(url: httpx.URL) -> tuple[str, int | None]:
    return url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _subprotocols(headers: httpx.Headers) -> list[str]:
    # RFC 6455 section 4.1: the header may repeat, and each value is a comma list.
    offered = ",".join(headers.get_list("sec-websocket-protocol"))
    return [name.strip() for name in offered.split(",") if name.strip()]
