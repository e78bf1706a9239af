"""A request ID for each request: taken from the client (or proxy) or made up,
available to the app and its logs, and echoed on the response."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.middleware._asgi import request_header, response_headers

#: The longest incoming ID accepted; Heroku's router applies the same 200-character
#: limit to X-Request-ID before trusting it.
MAX_ID_LENGTH = 200

#: The request's ID in the current context (None outside a request), for log records.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: Where the ID is kept in the scope.
SCOPE_KEY = "request_id"

#: Messages whose headers get the ID: HTTP responses, WebSocket accepts and denials.
_RESPONSE_STARTS = ("http.response.start", "websocket.accept", "websocket.http.response.start")


def _uuid4_hex() -> str:
    return uuid.uuid4().hex


def is_valid_id(value: str) -> bool:
    """True for 1 to `MAX_ID_LENGTH` visible ASCII characters (no spaces or controls),
    so an ID is safe to log and to echo in a header."""
    return 0 < len(value) <= MAX_ID_LENGTH and all("!" <= c <= "~" for c in value)


class RequestIDMiddleware:
    """Give each HTTP and WebSocket connection an ID.

    With `trust_incoming`, a valid `header_name` header from the client (or a
    proxy in front) is used as the ID; otherwise, or when invalid, `generator`
    makes one (default: a UUID4 as 32 hex digits). The ID is put in
    ``scope["request_id"]`` and the `request_id` context variable, and set on
    the response's `header_name` header unless the app set that itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        header_name: str = "x-request-id",
        trust_incoming: bool = True,
        generator: Callable[[], str] = _uuid4_hex,
    ) -> None:
        self.app = app
        self.header_name = header_name.lower()
        self.trust_incoming = trust_incoming
        self.generator = generator

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = scope[SCOPE_KEY] = self.id_for(scope)
        reset = request_id.set(rid)
        try:
            await self.app(scope, receive, self._send_with_id(send, rid))
        finally:
            request_id.reset(reset)

    def id_for(self, scope: AnyScope) -> str:
        """The incoming ID when trusted and valid, else a new one."""
        if self.trust_incoming:
            incoming = request_header(scope, self.header_name)
            if incoming is not None and is_valid_id(incoming):
                return incoming
        return self.generator()

    def _send_with_id(self, send: Send, rid: str) -> Send:
        async def send_with_id(message: Message) -> None:
            if message["type"] in _RESPONSE_STARTS:
                response_headers(message).setdefault(self.header_name, rid)
            await send(message)

        return send_with_id


class RequestIDLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``"-"`` outside a request), for a
    format such as ``"%(request_id)s %(message)s"``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True
