"""What the middleware share: reading the request scope, editing a response's
headers without touching the app's objects, and answering early."""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping
from typing import Any

from levante.asgi import AnyScope, Message, Receive, Send
from levante.web.datastructures import Headers, MutableHeaders
from levante.web.requests import parse_cookies
from levante.web.responses import Response

#: The ASGI extension that lets an app answer a WebSocket handshake with an HTTP
#: response instead of a bare close (https://asgi.readthedocs.io/en/latest/extensions.html).
WEBSOCKET_DENIAL = "websocket.http.response"

#: WebSocket close code 1008, "policy violation" (RFC 6455 §7.4.1): the code for a
#: refused handshake when the server cannot send an HTTP denial response.
WS_POLICY_VIOLATION = 1008


def request_header(scope: Mapping[str, Any], name: str) -> str | None:
    """The first value of request header `name` (lowercase), or None."""
    value: str | None = Headers(raw=scope["headers"]).get(name)
    return value


def request_cookie(scope: Mapping[str, Any], name: str) -> str | None:
    """The value of cookie `name` in the request's Cookie header, or None."""
    header = request_header(scope, "cookie")
    if not header:
        return None
    return parse_cookies(header).get(name)


def response_headers(message: MutableMapping[str, Any]) -> MutableHeaders:
    """Editable headers of a ``http.response.start`` message.

    The header list is copied into the message first: the app may send the same
    list on every request (a module-level `Response` does), and an edit in place
    would then pile up on it.
    """
    raw = list(message.get("headers", ()))
    message["headers"] = raw
    return MutableHeaders(raw=raw)


def path_matches(path: str, patterns: Collection[str]) -> bool:
    """True when `path` is one of `patterns`, or lies under one ending in ``/``."""
    if path in patterns:
        return True
    return any(p.endswith("/") and path.startswith(p) for p in patterns)


async def deny(
    scope: AnyScope,
    receive: Receive,
    send: Send,
    response: Response,
    close_code: int = WS_POLICY_VIOLATION,
) -> None:
    """Answer the connection with `response` instead of calling the app.

    A WebSocket handshake gets the response as a denial when the server offers the
    extension, else a close with `close_code` (which servers turn into a 403).
    """
    if scope["type"] == "websocket" and WEBSOCKET_DENIAL not in scope.get("extensions", {}):
        close: Message = {"type": "websocket.close", "code": close_code, "reason": ""}
        await send(close)
        return
    await respond(response, scope, receive, send)


async def respond(response: Response, scope: AnyScope, receive: Receive, send: Send) -> None:
    """Send `response` on this connection."""
    await response(scope, receive, send)
