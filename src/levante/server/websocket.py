"""The ASGI WebSocket bridge (RFC 6455, RFC 7692) over the sans-IO core of `websockets`.

`WebSocketSession` owns the ASGI ``websocket`` contract: connect, accept (with a
subprotocol and headers), receive and send, close, disconnect, and the
``websocket.http.response`` extension. Framing, masking, UTF-8 checks, size
limits, ping/pong and the closing handshake are `websockets.ServerProtocol`'s.
The session writes through `WebSocketTransport`, so the same bridge can run on
an HTTP/1.1 connection after ``Upgrade`` or, later, on an HTTP/2 stream
(RFC 8441). Before the handshake completes it answers HTTP through an
`HTTPStream`, so a denial uses the server's one HTTP response path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol

from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

from levante.asgi import ASGIApp, Message
from levante.server import limits
from levante.server.errors import ClientDisconnected, InvalidMessage, UnexpectedMessage
from levante.server.flow import wake
from levante.server.state import start_task
from levante.server.stream import message_type

if TYPE_CHECKING:
    from levante.server.config import Config
    from levante.server.state import ServerState
    from levante.server.stream import HTTPStream

logger = logging.getLogger("levante.error")

# Session states.
CONNECTING: Final = 0  # the app has not accepted or denied yet
OPEN: Final = 1
CLOSED: Final = 2  # closed or denied: receive() reports websocket.disconnect

#: Close code when the app raises after accepting (RFC 6455 section 7.4.1).
INTERNAL_ERROR: Final = 1011
#: Close code when the connection ended without a close frame.
ABNORMAL_CLOSURE: Final = 1006

#: Bytes handed to the frame parser at a time. The parser yields every frame in
#: what it is given, so feeding slices and stopping while the app's queue is
#: full bounds the queue at `ws_max_queue` plus what one slice holds.
FEED_SLICE: Final = 4096
#: An incomplete simple frame up to this size waits for its rest to be read here;
#: a larger one streams through the protocol.
_WAIT_FOR_FRAME: Final = 64 * 1024
#: First byte of a whole (FIN) text or binary frame with no RSV bit.
_TEXT: Final = 0x81
_BINARY: Final = 0x82


class _ServerProtocol(ServerProtocol):
    """websockets' server protocol, closing cleanly on a close frame mid-message.

    RFC 6455 section 5.4 lets control frames arrive between the fragments of a
    message. The library answers a Close there with 1002 ("incomplete
    fragmented message"); the peer is ending the connection, so the unfinished
    message is dropped and the close is answered normally (Autobahn case 7.1.5).
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None
        super().recv_frame(frame)


class WebSocketTransport(Protocol):
    """What a connection offers a session once the handshake is done."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    async def wait_writable(self) -> None: ...


class Handover(Protocol):
    """What the HTTP connection offers a session during the handshake."""

    def accept_websocket(
        self, session: WebSocketSession, response: Response, data: bytes
    ) -> WebSocketTransport:
        """Answer the handshake (`data` is `response` as HTTP/1.1 bytes) and carry the session."""


class WebSocketSession:
    """One WebSocket connection, seen from the app as ASGI ``receive``/``send``."""

    def __init__(
        self, http: HTTPStream, handover: Handover, request: Request, config: Config
    ) -> None:
        self.http = http
        self.handover = handover
        self.request = request
        self.config = config
        self.scope = http.scope
        self.transport: WebSocketTransport | None = None
        self.state = CONNECTING
        self.connect_sent = False
        self.messages: deque[Message] = deque()
        self.waiters: list[asyncio.Future[None]] = []
        self.fragments: list[bytes] = []
        self.fragment_opcode: Opcode | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_sent = False
        self.unparsed = b""
        #: No extension was negotiated: simple frames are read and written here.
        self.plain = False
        #: Bytes of a frame the protocol is in the middle of (see _feed).
        self.passthrough = 0
        extensions = [ServerPerMessageDeflateFactory()] if config.ws_per_message_deflate else []
        self.protocol = _ServerProtocol(
            extensions=extensions, max_size=config.ws_max_size, logger=logger
        )

    # -- events from the connection ----------------------------------------

    def feed_data(self, data: bytes) -> None:
        self.unparsed = self.unparsed + data if self.unparsed else data
        self._feed()

    def _feed(self) -> None:
        data = self.unparsed
        size = len(data)
        offset = 0
        limit = self.config.ws_max_queue
        protocol = self.protocol
        # Only the protocol changes its state, so it is read again after each feed.
        tracking = self.plain and protocol.state is State.OPEN
        while offset < size and len(self.messages) < limit:
            if tracking:
                # Frame boundaries are tracked: whole simple frames are read here,
                # anything else goes to the protocol one frame at a time.
                if not self.passthrough:
                    used = self._read_frame(data, offset, size)
                    if used > 0:
                        offset += used
                        continue
                    if used == 0:
                        break  # a frame's start is not all here yet: wait for more
                    self.passthrough = -used
                count = min(self.passthrough, FEED_SLICE, size - offset)
                self.passthrough -= count
            else:
                count = min(FEED_SLICE, size - offset)
            protocol.receive_data(data if count == size else data[offset : offset + count])
            offset += count
            self._process()
            tracking = self.plain and protocol.state is State.OPEN
        self.unparsed = data[offset:] if offset < size else b""
        if (
            len(self.messages) >= limit
            and self.unparsed
            and not self.reading_paused
            and self.transport is not None
        ):
            # The app is not keeping up: stop reading, the peer's sends back up.
            self.reading_paused = True
            self.transport.pause_reading()

    def _read_frame(self, data: bytes, offset: int, size: int) -> int:
        """Read one frame at `offset`: its length if handled here, else minus its length.

        Handled here: a whole, masked, unfragmented text or binary frame within the
        size limit, between messages, with no extension negotiated (what almost every
        message is). The protocol gets everything else, checks included; 0: the frame
        is incomplete and small enough to wait for.
        """
        if size - offset < 2:
            return 0
        first = data[offset]
        second = data[offset + 1]
        length = second & 0x7F
        start = offset + 2
        if length == 126:
            if size - offset < 4:
                return 0
            length = int.from_bytes(data[start : start + 2])
            start += 2
        elif length == 127:
            if size - offset < 10:
                return 0
            length = int.from_bytes(data[start : start + 8])
            start += 8
        masked = second & 0x80
        end = start + (4 if masked else 0) + length
        limit = self.protocol.max_message_size
        if (
            (first != _TEXT and first != _BINARY)  # noqa: PLR1714 (ints: two compares are fastest)
            or not masked
            or self.fragment_opcode is not None
            or (limit is not None and length > limit)
        ):
            return offset - end
        if end > size:
            return 0 if end - offset <= _WAIT_FOR_FRAME else offset - end
        payload = apply_mask(data[start + 4 : end], data[start : start + 4])
        if first == _TEXT:
            try:
                message: Message = {"type": "websocket.receive", "text": payload.decode()}
            except UnicodeDecodeError:
                return offset - end  # the protocol closes with 1007
        else:
            message = {"type": "websocket.receive", "bytes": payload}
        self._queue(message)
        return end - offset

    def feed_eof(self) -> None:
        self.protocol.receive_eof()
        self._process()

    def feed_disconnect(self) -> None:
        if self.state != CLOSED:
            self.state = CLOSED
            self._record_close()
        self.http.feed_disconnect()
        self._wake()

    def _process(self) -> None:
        for frame in self.protocol.events_received():
            if not isinstance(frame, Frame):
                continue  # a server protocol only yields frames once open
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._deliver(opcode, bytes(frame.data))
                else:
                    self.fragment_opcode = opcode
                    self.fragments = [bytes(frame.data)]
            elif opcode is Opcode.CONT and self.fragment_opcode is not None:
                self.fragments.append(bytes(frame.data))
                if frame.fin:
                    self._deliver(self.fragment_opcode, b"".join(self.fragments))
                    self.fragments = []
                    self.fragment_opcode = None
        self._flush()
        if self.protocol.state is State.CLOSED:
            self._record_close()

    def _deliver(self, opcode: Opcode, data: bytes) -> None:
        if opcode is Opcode.TEXT:
            try:
                text = data.decode()
            except UnicodeDecodeError:  # the protocol checks UTF-8; this is a guard
                self.protocol.fail(1007, "invalid UTF-8")
                return
            self._queue({"type": "websocket.receive", "text": text})
        else:
            self._queue({"type": "websocket.receive", "bytes": data})

    def _queue(self, message: Message) -> None:
        self.messages.append(message)
        if (
            len(self.messages) >= self.config.ws_max_queue
            and not self.reading_paused
            and self.transport is not None
        ):
            self.reading_paused = True
            self.transport.pause_reading()
        if self.waiters:
            self._wake()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            else:  # closing handshake done (or failed): the server closes TCP first
                self._record_close()
                transport.close()

    def _record_close(self) -> None:
        # The code and reason for websocket.disconnect: the peer's close frame,
        # else the one we sent, else 1006 (closed without a close frame).
        if self.close_code is not None:
            return
        frame = self.protocol.close_rcvd or self.protocol.close_sent
        if frame is not None:
            self.close_code, self.close_reason = int(frame.code), frame.reason
        else:
            self.close_code, self.close_reason = ABNORMAL_CLOSURE, ""

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        wake(waiters)

    def ping(self) -> None:
        """Send a ping (keep-alive); the protocol answers the peer's pongs."""
        if self.state == OPEN and self.protocol.state is State.OPEN:
            self.protocol.send_ping(b"")
            self._flush()

    def going_away(self) -> None:
        """The server is shutting down: close with 1001."""
        if self.state == OPEN and self.protocol.state is State.OPEN:
            self.protocol.send_close(1001, "server shutting down")
            self._flush()

    # -- ASGI receive -----------------------------------------------------

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            if self.messages:
                message = self.messages.popleft()
                if self.reading_paused and len(self.messages) <= self.config.ws_max_queue // 2:
                    self._resume()
                return message
            if self.state == CLOSED or self.http.disconnected:
                return {
                    "type": "websocket.disconnect",
                    "code": self.close_code or ABNORMAL_CLOSURE,
                    "reason": self.close_reason,
                }
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter

    def _resume(self) -> None:
        if self.unparsed:
            self._feed()
        if len(self.messages) < self.config.ws_max_queue:
            self.reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    # -- ASGI send ----------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message_type(message)
        if kind == "websocket.send":
            await self._send_data(message)
        elif kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            await self._close(message)
        elif kind in ("websocket.http.response.start", "websocket.http.response.body"):
            await self._deny(kind, message)
        else:
            raise UnexpectedMessage(
                f"unknown message type {kind!r} for a WebSocket; expected 'websocket.accept', "
                "'websocket.send', 'websocket.close' or 'websocket.http.response.start'"
            )

    def _accept(self, message: Message) -> None:
        if self.state != CONNECTING or self.http.state != 0:
            raise UnexpectedMessage(
                "'websocket.accept' sent after the handshake was answered; send it once, first"
            )
        if self.http.disconnected:
            raise ClientDisconnected("the client left before the WebSocket was accepted")
        response = self.protocol.accept(self.request)
        headers = response.headers
        if "Server" in headers:
            del headers["Server"]
        if self.config.server_header:
            headers["Server"] = "levante"
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            headers["Sec-WebSocket-Protocol"] = str(subprotocol)
        for name, value in message.get("headers") or ():
            headers[name.decode("latin-1")] = value.decode("latin-1")
        protocol = self.protocol
        protocol.send_response(response)
        if response.status_code == 101:
            # ServerProtocol expects to parse the handshake request from bytes;
            # httptools already did, so restart its parser in the OPEN state,
            # where it reads frames.
            protocol.parser = protocol.parse()
            next(protocol.parser)
        data = b"".join(protocol.data_to_send())
        self.plain = not protocol.extensions
        self.state = OPEN
        self.http.state = 4  # the HTTP exchange is over: it became this session
        self.transport = self.handover.accept_websocket(self, response, data)

    async def _send_data(self, message: Message) -> None:
        if self.state != OPEN:
            if self.state == CLOSED:
                raise ClientDisconnected("the WebSocket is closed; 'websocket.send' was not sent")
            raise UnexpectedMessage("'websocket.send' before 'websocket.accept': accept first")
        if self.close_sent:
            raise UnexpectedMessage("'websocket.send' after 'websocket.close'")
        if self.protocol.state is not State.OPEN:
            raise ClientDisconnected("the WebSocket is closing; 'websocket.send' was not sent")
        text = message.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise InvalidMessage(
                    f"'websocket.send' 'text' must be str, got {type(text).__name__}"
                )
            first, payload = _TEXT, text.encode()
        else:
            data = message.get("bytes")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise InvalidMessage("'websocket.send' needs 'text' (str) or 'bytes' (bytes)")
            first, payload = _BINARY, bytes(data)
        if self.plain and self.transport is not None:
            _write_frame(self.transport, first, payload)
        else:
            send = self.protocol.send_text if first == _TEXT else self.protocol.send_binary
            send(payload)
            self._flush()
        if self.writing_paused and self.transport is not None:
            await self.transport.wait_writable()

    async def _close(self, message: Message) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if self.state == CONNECTING:
            # Closing before accepting denies the handshake (ASGI: 403).
            self.state = CLOSED
            await self.http.send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await self.http.send({"type": "http.response.body", "body": b"Forbidden"})
            return
        if self.close_sent:
            raise UnexpectedMessage(
                "'websocket.close' sent twice: nothing may follow the first 'websocket.close'"
            )
        if self.state == CLOSED or self.protocol.state is not State.OPEN:
            raise ClientDisconnected("the WebSocket is already closed by the client")
        self.close_sent = True
        self.protocol.send_close(int(code), str(reason))
        self._flush()

    async def _deny(self, kind: str, message: Message) -> None:
        if self.state == OPEN:
            raise UnexpectedMessage(f"{kind!r} after 'websocket.accept': the handshake is done")
        self.state = CLOSED
        http_message = dict(message)
        http_message["type"] = kind.replace("websocket.", "", 1)
        await self.http.send(http_message)

    # -- running the app: the failure policy ------------------------------

    async def run(self, app: ASGIApp, tasks: set[asyncio.Task[None]]) -> None:
        """Run the app's session; its task leaves `tasks` as it ends (see `start_task`)."""
        try:
            await app(self.scope, self.receive, self.send)
        except Exception as exc:
            self._app_raised(exc)
        else:
            if self.state == CONNECTING:
                logger.error("ASGI callable returned without accepting or denying the WebSocket")
                await self._close({"type": "websocket.close"})
            elif self.state == OPEN and self.protocol.state is State.OPEN:
                self.protocol.send_close(1000, "")
                self._flush()
        finally:
            if self.http.state != 4:
                self.http.writer.app_finished(self.http)
            if self.http.task is not None:  # (see HTTPStream.run)
                tasks.discard(self.http.task)

    def _app_raised(self, exc: Exception) -> None:
        if self.state == CLOSED or self.http.disconnected:
            logger.debug("ASGI callable raised after the WebSocket closed: %r", exc)
            return
        logger.error("Exception in ASGI application", exc_info=exc)
        if self.state == CONNECTING:
            self.http.fail()
        elif self.protocol.state is State.OPEN:
            self.protocol.send_close(INTERNAL_ERROR, "")
            self._flush()


def _write_frame(transport: WebSocketTransport, first: int, payload: bytes) -> None:
    """Write one unfragmented, unmasked frame (a server's, RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((first, size))
    elif size < 65536:
        head = bytes((first, 126)) + size.to_bytes(2)
    else:
        head = bytes((first, 127)) + size.to_bytes(8)
    if size > limits.WRITE_JOIN_LIMIT:
        transport.write(head)
        transport.write(payload)
    else:
        transport.write(head + payload)


#: Stands in for Sec-WebSocket-Key on HTTP/2, where extended CONNECT has none
#: (RFC 8441 section 5); the answer derived from it is not sent.
_H2_KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="


def start_websocket(
    stream: HTTPStream, handover: Handover, app: ASGIApp, state: ServerState
) -> None:
    """Run a WebSocket handshake request as a task: the app's session, or a refusal."""
    error = handshake_error(stream.scope)
    if error is not None:
        start_task(state, stream, stream.run(refuse_handshake(*error), state.tasks))
        return
    session = WebSocketSession(stream, handover, handshake_request(stream.scope), state.config)
    start_task(state, stream, session.run(app, state.tasks))


def refuse_handshake(status: int, detail: str) -> ASGIApp:
    """An app that answers a handshake the server refuses (RFC 6455 section 4.2.2)."""

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        if status == 426:
            headers.append((b"sec-websocket-version", b"13"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": detail.encode()})

    return refuse


def handshake_request(scope: dict[str, Any]) -> Request:
    """The `websockets` view of the handshake request the server already parsed.

    An HTTP/2 extended CONNECT (RFC 8441) is presented as the HTTP/1.1 Upgrade it
    stands for, so that `websockets` negotiates extensions the same way for both.
    """
    headers = Headers()
    for name, value in scope["headers"]:
        headers[name.decode("latin-1")] = value.decode("latin-1")
    if scope["http_version"] == "2":
        headers["Connection"] = "Upgrade"
        headers["Upgrade"] = "websocket"
        headers["Sec-WebSocket-Key"] = _H2_KEY
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    return Request(target, headers)


def handshake_error(scope: dict[str, Any]) -> tuple[int, str] | None:
    """What is wrong with a WebSocket handshake request, or None (RFC 6455 section 4.2.1)."""
    version = _header(scope, b"sec-websocket-version")
    if version != b"13":
        return 426, "Unsupported WebSocket version: this server speaks version 13"
    if scope["http_version"] == "2":
        return None  # RFC 8441: no key over HTTP/2
    key = _header(scope, b"sec-websocket-key")
    if key is None or len(key.strip()) != 24:
        return 400, "Missing or invalid Sec-WebSocket-Key header"
    return None


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def websocket_scope(http_scope: dict[str, Any]) -> dict[str, Any]:
    """The ASGI websocket scope for an Upgrade: websocket request."""
    scope = dict(http_scope)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if http_scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = subprotocols(http_scope["headers"])
    extensions: dict[str, Any] = {"websocket.http.response": {}}
    tls = http_scope["extensions"].get("tls")
    if tls is not None:
        extensions["tls"] = tls
    scope["extensions"] = extensions
    return scope


def subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols the client offered, in order."""
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    return offered
