"""`WebSocket`: the ASGI WebSocket messages as method calls, with their order checked."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec

from levante.asgi import AnyScope, Message, Receive, Send
from levante.web.exceptions import ASGIUsageError, WebSocketDisconnect
from levante.web.requests import HTTPConnection
from levante.web.responses import Response, json_encoder

#: Close code when the peer went away without a close frame (RFC 6455 §7.4.1).
ABNORMAL_CLOSURE = 1006


class WebSocketState(enum.Enum):
    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


class WebSocket(HTTPConnection):
    """One WebSocket connection: `accept`, then `receive_*`/`send_*`, then `close`.

    Receiving after the peer closed raises `WebSocketDisconnect` with its close
    code, and so does sending once the server says the peer is gone.
    """

    def __init__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ASGIUsageError(f"WebSocket needs a websocket scope, got {scope['type']!r}")
        super().__init__(scope, receive)
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    async def receive(self) -> Message:
        """The next ASGI message from the client (connect, receive or disconnect)."""
        state = self.client_state
        if state is WebSocketState.DISCONNECTED:
            raise ASGIUsageError("receive() after the WebSocket disconnected; stop reading.")
        message = await self._receive()
        kind = message["type"]
        if state is WebSocketState.CONNECTING:
            if kind != "websocket.connect":
                raise ASGIUsageError(f"expected websocket.connect first, got {kind!r}")
            self.client_state = WebSocketState.CONNECTED
        elif kind == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        elif kind != "websocket.receive":
            raise ASGIUsageError(f"unexpected message {kind!r} from the server")
        return message

    async def send(self, message: Message) -> None:
        """Send an ASGI message, checking it fits the connection's state."""
        kind = message["type"]
        state = self.application_state
        if state is WebSocketState.CONNECTING:
            if kind == "websocket.accept":
                self.application_state = WebSocketState.CONNECTED
            elif kind == "websocket.close":
                self.application_state = WebSocketState.DISCONNECTED
            elif kind == "websocket.http.response.start":
                self.application_state = WebSocketState.RESPONSE
            else:
                raise ASGIUsageError(f"send {kind!r} before accept(): call accept() first")
        elif state is WebSocketState.CONNECTED:
            if kind == "websocket.close":
                self.application_state = WebSocketState.DISCONNECTED
            elif kind != "websocket.send":
                raise ASGIUsageError(f"cannot send {kind!r} on an accepted WebSocket")
        elif state is WebSocketState.RESPONSE:
            if kind != "websocket.http.response.body":
                raise ASGIUsageError(f"cannot send {kind!r} while sending a denial response")
            if not message.get("more_body", False):
                self.application_state = WebSocketState.DISCONNECTED
        else:
            raise ASGIUsageError(f"cannot send {kind!r}: the WebSocket is closed")
        try:
            await self._send(message)
        except OSError:
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(ABNORMAL_CLOSURE) from None

    async def accept(
        self, subprotocol: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Accept the connection, optionally choosing one of `self.scope["subprotocols"]`."""
        if self.client_state is WebSocketState.CONNECTING:
            await self.receive()
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = headers
        await self.send(message)

    def _checked(self, message: Message) -> Message:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        return message

    def _require_accepted(self) -> None:
        if self.application_state is not WebSocketState.CONNECTED:
            raise ASGIUsageError("the WebSocket is not accepted: call accept() first")

    async def receive_text(self) -> str:
        self._require_accepted()
        message = self._checked(await self.receive())
        text = message.get("text")
        if text is None:
            raise ASGIUsageError("expected a text message, got binary: use receive_bytes()")
        return str(text)

    async def receive_bytes(self) -> bytes:
        self._require_accepted()
        message = self._checked(await self.receive())
        data = message.get("bytes")
        if data is None:
            raise ASGIUsageError("expected a binary message, got text: use receive_text()")
        return bytes(data)

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        self._require_accepted()
        message = self._checked(await self.receive())
        data = message.get("text") if mode == "text" else message.get("bytes")
        if data is None:
            data = message.get("bytes") if mode == "text" else message.get("text")
        if data is None:
            raise ASGIUsageError("the message carries neither text nor bytes")
        return msgspec.json.decode(data)

    async def iter_text(self) -> AsyncIterator[str]:
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        encoded = json_encoder.encode(data)
        if mode == "text":
            await self.send({"type": "websocket.send", "text": encoded.decode()})
        else:
            await self.send({"type": "websocket.send", "bytes": encoded})

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with an HTTP response (the ``websocket.http.response``
        extension); where the server lacks it, close instead (the server answers 403)."""
        if self.application_state is not WebSocketState.CONNECTING:
            raise ASGIUsageError("a denial response must be sent before accept()")
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await response(self.scope, self._receive, self.send)
        else:
            await self.close(1008)
