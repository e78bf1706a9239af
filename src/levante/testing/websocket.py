"""WebSocket sessions: the engine (`WebSocketChannel`) and the sync `WebSocketTestSession`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx

from levante.asgi import Message
from levante.testing.errors import ASGIAppError, ClientDisconnected, UnexpectedMessage
from levante.testing.loop import LoopThread
from levante.testing.options import AppOptions
from levante.testing.running import AppTask
from levante.testing.scope import websocket_scope
from levante.web.exceptions import WebSocketDisconnect

T = TypeVar("T")

# What the app may send in each phase of a WebSocket (ASGI WebSocket spec, with
# the websocket.http.response extension), and how an error message names it.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "connecting": ("websocket.accept", "websocket.close", "websocket.http.response.start"),
    "open": ("websocket.send", "websocket.close"),
    "denying": ("websocket.http.response.body",),
    "closed": (),
}
_PHASE_WORDS = {
    "connecting": "before accepting the WebSocket",
    "open": "on the open WebSocket",
    "denying": "while sending its denial response",
    "closed": "after the WebSocket was closed",
}
# Close codes as `levante.server` uses them (RFC 6455 section 7.4.1).
_NORMAL_CLOSURE = 1000
_ABNORMAL_CLOSURE = 1006  # closed without a close frame: what a denied handshake looks like
_INTERNAL_ERROR = 1011


class WebSocketDenialResponse(httpx.Response, WebSocketDisconnect):  # type: ignore[misc]
    """The app refused the handshake with an HTTP response (``websocket.http.response``).

    Raised by `TestClient.websocket_connect`; it is both the `httpx.Response`
    (``status_code``, ``headers``, ``content``) and a `WebSocketDisconnect`, as in
    Starlette's TestClient.
    """

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        httpx.Response.__init__(self, status_code, headers=headers, content=body)
        WebSocketDisconnect.__init__(
            self, _ABNORMAL_CLOSURE, f"handshake denied with HTTP {status_code}"
        )

    def __str__(self) -> str:
        return f"WebSocket handshake denied with HTTP {self.status_code}"


def _is_disconnect(exc: Exception) -> bool:
    # After the connection closed, an app whose receive() raised its framework's
    # WebSocketDisconnect (ours, Starlette's) has simply seen the close: servers
    # do not report that as an error, and neither does the test client.
    return isinstance(exc, ClientDisconnected | WebSocketDisconnect) or any(
        cls.__name__ == "WebSocketDisconnect" for cls in type(exc).__mro__
    )


class WebSocketChannel:
    """Runs the app for one WebSocket connection in the current event loop."""

    def __init__(self, request: httpx.Request, options: AppOptions) -> None:
        self._scope = websocket_scope(request, options)
        self._options = options
        self._run = AppTask(options, f"WebSocket {request.url.path}")
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()  # None: the app returned
        self._phase = "connecting"
        self._app_close: tuple[int, str] | None = None  # code and reason the app closed with
        self._client_closed = False
        self._finished = False
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    # -- the client's side ------------------------------------------------------

    async def connect(self) -> None:
        """Start the app and send ``websocket.connect``; return once it accepted.

        Raises `WebSocketDisconnect` if the app closed instead, and
        `WebSocketDenialResponse` if it answered with an HTTP response.
        """
        self._run.start(self._options.app(self._scope, self._to_app.get, self._send), self._exited)
        self._to_app.put_nowait({"type": "websocket.connect"})
        message = await self._next("answer to 'websocket.connect'")
        if message is None:
            raise self._no_handshake()
        if message["type"] == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = list(message.get("headers") or [])
            return
        if message["type"] == "websocket.close":
            await self._finish_handshake()
            raise WebSocketDisconnect(message.get("code", _NORMAL_CLOSURE), message.get("reason"))
        denial = await self._denial(message)
        await self._finish_handshake()
        raise denial

    async def send(self, message: Message) -> None:
        """Pass `message` to the app's ``receive()``."""
        if message.get("type") == "websocket.disconnect":
            self._client_closed = True
        self._to_app.put_nowait(message)

    async def receive(self) -> Message:
        """The app's next message; raises once nothing more can come.

        After the app closed the connection (and its ``websocket.close`` was
        received) this raises `WebSocketDisconnect` with the app's code.
        """
        if self._from_app.empty() and (self._finished or self._app_close is not None):
            raise self._end()
        message = await self._next("WebSocket message")
        if message is None:
            raise self._end()
        return message

    async def close(self, code: int = _NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Send ``websocket.disconnect`` to the app, unless the connection is already closed."""
        if self._client_closed or self._phase == "closed":
            return
        await self.send({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def aclose(self, code: int = _NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection if open and wait for the app (bounded); re-raise its error."""
        closed_by_app = self._phase == "closed"
        await self.close(code, reason)
        if closed_by_app:
            overdue = "the app kept running after it closed the WebSocket"
            await self._run.finish(self._options.timeout, overdue)
        else:
            await self._run.finish(self._options.close_grace)
        self._run.raise_error(_is_disconnect)

    async def _next(self, owed: str) -> Message | None:
        if self._finished and self._from_app.empty():
            return None
        message = await self._run.bounded(self._from_app.get(), owed)
        self._finished = self._finished or message is None
        return message

    def _no_handshake(self) -> Exception:
        error = self._run.error()
        if self._options.raise_server_exceptions:
            return error or ASGIAppError(
                "the app returned without answering 'websocket.connect': send "
                "'websocket.accept', 'websocket.close' or 'websocket.http.response.start'"
            )
        # As `levante.server` answers: 500 for an app that raised, 403 otherwise.
        if error is not None:
            return WebSocketDenialResponse(500, [], b"Internal Server Error")
        return WebSocketDenialResponse(403, [], b"Forbidden")

    async def _denial(self, start: Message) -> WebSocketDenialResponse:
        body = bytearray()
        while (message := await self._next("rest of the denial response body")) is not None:
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        return WebSocketDenialResponse(
            start["status"], list(start.get("headers") or []), bytes(body)
        )

    async def _finish_handshake(self) -> None:
        # The app refused the connection; it may still be winding down.
        await self._run.finish(self._options.close_grace)
        self._run.raise_error(_is_disconnect)

    def _end(self) -> Exception:
        if self._app_close is not None:
            return WebSocketDisconnect(*self._app_close)
        error = self._run.error(_is_disconnect)
        if error is not None and self._options.raise_server_exceptions:
            return error
        # `levante.server` closes with 1011 for an app that raised, 1000 for one that returned.
        return WebSocketDisconnect(_INTERNAL_ERROR if error is not None else _NORMAL_CLOSURE)

    # -- the app's side ---------------------------------------------------------

    def _exited(self) -> None:
        self._from_app.put_nowait(None)

    def _tell_app_closed(self, code: int, reason: str | None = None) -> None:
        # The client answers the app's close (or a refused handshake) the way a
        # well-behaved peer does, so the app's next receive() says so.
        self._phase = "closed"
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        allowed = _ALLOWED[self._phase]
        if kind not in allowed:
            raise ASGIAppError(_misuse(kind, self._phase, allowed))
        if self._client_closed:
            raise ClientDisconnected("the test client closed the WebSocket")
        _check(message)
        self._advance(message)
        self._from_app.put_nowait(message)
        await asyncio.sleep(0)  # let the test run, even against an app that only sends

    def _advance(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self._phase = "open"
        elif kind == "websocket.close":
            self._app_close = (message.get("code", _NORMAL_CLOSURE), message.get("reason") or "")
            self._tell_app_closed(*self._app_close)
        elif kind == "websocket.http.response.start":
            self._phase = "denying"
        elif kind == "websocket.http.response.body" and not message.get("more_body", False):
            self._tell_app_closed(_ABNORMAL_CLOSURE)  # the denial response is complete


class WebSocketTestSession:
    """A WebSocket connection to the app, used as ``with client.websocket_connect(url) as ws:``.

    Entering sends ``websocket.connect`` and waits for the app to accept;
    leaving sends ``websocket.disconnect`` (code 1000) if the connection is still
    open and waits for the app to return, re-raising its exception as the
    client's ``raise_server_exceptions`` says.
    """

    def __init__(
        self, channel: WebSocketChannel, loop: Callable[[], LoopThread], guard: float
    ) -> None:
        self._channel = channel
        self._loop = loop
        self._guard = guard

    @property
    def accepted_subprotocol(self) -> str | None:
        """The subprotocol the app chose in ``websocket.accept``, if any."""
        return self._channel.accepted_subprotocol

    @property
    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers the app added in ``websocket.accept``."""
        return self._channel.extra_headers

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop().run(coro, self._guard)

    def __enter__(self) -> Self:
        self._call(self._channel.connect())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._channel.aclose())

    def send(self, message: Message) -> None:
        """Pass a raw ASGI message to the app's ``receive()``."""
        self._call(self._channel.send(message))

    def send_text(self, data: str) -> None:
        """Send a text message."""
        self.send({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self.send({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send `data` as compact JSON, in a text or a binary message."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            self.send_text(text)
        else:
            self.send_bytes(text.encode("utf-8"))

    def close(self, code: int = _NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection: the app's ``receive()`` returns ``websocket.disconnect``."""
        self._call(self._channel.close(code, reason))

    def receive(self) -> Message:
        """The app's next raw ASGI message (``websocket.send`` or ``websocket.close``)."""
        return self._call(self._channel.receive())

    def receive_text(self) -> str:
        """The next message's text; `WebSocketDisconnect` if the app closed."""
        return _payload(self.receive(), "text", str)

    def receive_bytes(self) -> bytes:
        """The next message's bytes; `WebSocketDisconnect` if the app closed."""
        return _payload(self.receive(), "bytes", bytes)

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next message decoded as JSON, read from a text or a binary message."""
        if mode == "text":
            return json.loads(self.receive_text())
        return json.loads(self.receive_bytes().decode("utf-8"))


def _payload(message: Message, key: str, kind: type[T]) -> T:
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", _NORMAL_CLOSURE), message.get("reason"))
    value = message.get(key)
    if not isinstance(value, kind):
        other = "bytes" if key == "text" else "text"
        raise UnexpectedMessage(
            f"expected a {key} message, but the app sent {other}: {message!r:.200}"
        )
    return value


def _check(message: Message) -> None:
    # The keys each message needs, checked where the app can still see the error.
    kind = message["type"]
    if kind == "websocket.send":
        text, data = message.get("text"), message.get("bytes")
        if (text is None) == (data is None) or not isinstance(text or data or b"", str | bytes):
            raise ASGIAppError(
                "'websocket.send' needs exactly one of 'text' (str) or 'bytes' (bytes)"
            )
    elif kind == "websocket.accept":
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise ASGIAppError("'websocket.accept' needs 'subprotocol' as str or None")
    elif kind == "websocket.http.response.start" and not isinstance(message.get("status"), int):
        raise ASGIAppError("'websocket.http.response.start' needs 'status', an int such as 403")


def _misuse(kind: object, phase: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(kind, str) or not kind.startswith("websocket."):
        return f"the app sent an unknown WebSocket message type {kind!r}"
    expected = " or ".join(repr(name) for name in allowed) or "nothing more"
    return f"the app sent {kind!r} {_PHASE_WORDS[phase]}: expected {expected}"
