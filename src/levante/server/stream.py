"""The ASGI HTTP bridge: one request, whatever HTTP version carried it.

A protocol (HTTP/1.1 now, HTTP/2 and HTTP/3 later) parses bytes and calls
`feed_body`, `feed_end` and `feed_disconnect`; the app calls `receive` and
`send`. `HTTPStream` owns the ASGI contract between the two: message order, the
request body buffer and its flow control, the response state machine, and the
failure policy (what to answer when the app raises or misbehaves). It writes
through the small `Writer` interface, so the wire format stays in the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any, Final, Protocol, TypeAlias

from levante.asgi import ASGIApp, Message
from levante.native import chained, mypyc_attr
from levante.server.errors import ClientDisconnected, InvalidMessage, UnexpectedMessage
from levante.server.flow import wake

logger = logging.getLogger("levante.error")

# Response states. Plain ints: the checks sit on the hot path.
NEW: Final = 0  # no response message yet
STARTED: Final = 1  # http.response.start received, held until the first body message
BODY: Final = 2  # head written, body streaming
TRAILERS: Final = 3  # body complete, trailers announced and not yet sent
DONE: Final = 4  # response complete

_STATE_NAMES: Final = (
    "not started",
    "started",
    "streaming its body",
    "awaiting trailers",
    "complete",
)

#: Bytes read from a file per write for `http.response.pathsend`.
PATHSEND_CHUNK: Final = 256 * 1024

#: Response header fields as the app sent them: (name, value) pairs of bytes, checked by
#: the protocol that writes them. Typed loosely on purpose: the compiled build enforces
#: annotations at each call, and a list pair (which apps send) must reach that check.
Fields: TypeAlias = Iterable[Any]

_DISCONNECT: Final[Message] = {"type": "http.disconnect"}
_EMPTY_BODY: Final = b""


class Writer(Protocol):
    """What a protocol offers a stream to put its response on the wire."""

    def write_head(
        self,
        stream: HTTPStream,
        status: int,
        headers: Fields,
        body: bytes,
        more: bool,
    ) -> int:
        """Write the response head and the first body bytes; return the declared length or -1."""

    def write_body(self, stream: HTTPStream, data: bytes, more: bool) -> None:
        """Write more body bytes; ``more=False`` ends the body."""

    def write_trailers(self, stream: HTTPStream, headers: Fields) -> None:
        """Write the trailer fields, completing the response."""

    def send_continue(self, stream: HTTPStream) -> None:
        """Answer ``Expect: 100-continue``: the app is about to read the body."""

    def body_consumed(self, stream: HTTPStream) -> None:
        """The app took the buffered body: reading may resume."""

    async def wait_writable(self, stream: HTTPStream) -> None:
        """Return when `stream` may write again (the peer is reading, its window opened)."""

    def abort(self, stream: HTTPStream) -> None:
        """Cut the response short: the peer must see it as incomplete."""

    def app_finished(self, stream: HTTPStream) -> None:
        """The app call for this stream has returned or raised."""


# The HTTP/2 module subclasses it and stays Python: compiled, it ran slower (see setup.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class HTTPStream:
    """One HTTP request/response exchange, seen from the app as ASGI ``receive``/``send``."""

    __slots__ = (
        "body",
        "body_complete",
        "buffered",
        "declared_length",
        "disconnected",
        "expect_continue",
        "head_only",
        "held_headers",
        "no_body",
        "paused",
        "request_delivered",
        "scope",
        "sent_length",
        "shutdown_signalled",
        "start_time",
        "state",
        "status",
        "task",
        "trailers",
        "waiters",
        "writer",
        "writing_paused",
    )

    def __init__(self, writer: Writer, scope: dict[str, Any], head_only: bool) -> None:
        self.writer = writer
        self.scope = scope
        self.head_only = head_only
        self.body: list[bytes] = []
        self.body_complete = False
        self.request_delivered = False
        self.expect_continue = False
        self.disconnected = False
        self.shutdown_signalled = False
        # One future per task blocked in receive(): apps may receive from two
        # tasks at once (a reader and a disconnect watcher), and each must wake.
        self.waiters: list[asyncio.Future[None]] | None = None
        self.buffered = 0
        self.state = NEW
        self.status = 0
        self.held_headers: Fields = ()
        self.trailers = False
        self.no_body = False
        self.declared_length = -1
        self.sent_length = 0
        self.start_time = 0.0
        self.paused = False
        self.writing_paused = False
        #: The task running the app call, once it started (see `state.start_task`).
        self.task: asyncio.Task[None] | None = None

    # -- events from the protocol ------------------------------------------

    def feed_body(self, data: bytes) -> int:
        """Buffer request body bytes for the app; return how many are buffered."""
        self.expect_continue = False
        if self.state == DONE or self.disconnected:
            return 0  # nobody will read it: drop instead of growing the buffer
        self.body.append(data)
        self.buffered += len(data)
        if self.waiters is not None:
            self._wake()
        return self.buffered

    def feed_end(self) -> None:
        self.body_complete = True
        self._wake()

    def feed_disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def signal_shutdown(self) -> None:
        """The server is stopping: an app waiting for the client to leave is told it has."""
        self.shutdown_signalled = True
        self._wake()

    def _wake(self) -> None:
        waiters = self.waiters
        if waiters is not None:
            self.waiters = None
            wake(waiters)

    # -- ASGI receive -----------------------------------------------------

    async def receive(self) -> Message:
        while True:
            if self.body:
                body = self.body
                data = body[0] if len(body) == 1 else b"".join(body)
                self.body = []
                self.buffered = 0
                self.writer.body_consumed(self)
                more = not self.body_complete
                self.request_delivered = not more
                return {"type": "http.request", "body": data, "more_body": more}
            if self.disconnected or self.state == DONE:
                return _DISCONNECT
            if self.body_complete:
                if not self.request_delivered:
                    self.request_delivered = True
                    return {"type": "http.request", "body": _EMPTY_BODY, "more_body": False}
                if self.shutdown_signalled:
                    return _DISCONNECT
            elif self.expect_continue:
                self.expect_continue = False
                if self.state == NEW:
                    self.writer.send_continue(self)
            waiter = asyncio.get_running_loop().create_future()
            if self.waiters is None:
                self.waiters = [waiter]
            else:
                self.waiters.append(waiter)
            await waiter

    # -- ASGI send ----------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message_type(message)
        if self.disconnected:
            raise ClientDisconnected(
                f"the client disconnected; {kind!r} was not sent. Stop producing the response."
            )
        if kind == "http.response.body":
            self._send_body(message)
            if self.writing_paused:
                await self.writer.wait_writable(self)
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.trailers":
            self._send_trailers(message)
        elif kind == "http.response.pathsend":
            await self._pathsend(message)
        else:
            raise UnexpectedMessage(
                f"unknown message type {kind!r} for an HTTP request; expected "
                "'http.response.start', 'http.response.body', 'http.response.trailers' "
                "or 'http.response.pathsend'"
            )

    def _start(self, message: Message) -> None:
        if self.state != NEW:
            raise UnexpectedMessage(
                "'http.response.start' sent twice: the response is already "
                f"{_STATE_NAMES[self.state]}. Send it once, then 'http.response.body'."
            )
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise InvalidMessage(
                f"'http.response.start' needs an int 'status' from 200 to 999, got {status!r}"
                + (
                    ": a 1xx status cannot be the final response"
                    if type(status) is int and 100 <= status < 200
                    else ""
                )
            )
        headers = message.get("headers", ())
        if headers is None:
            headers = ()
        self.status = status
        self.held_headers = headers
        self.trailers = bool(message.get("trailers", False))
        self.no_body = self.head_only or status in (204, 304)
        self.state = STARTED

    def _send_body(self, message: Message) -> None:
        body = message.get("body", _EMPTY_BODY)
        if type(body) is not bytes:
            body = _check_bytes(body)
        more = bool(message.get("more_body", False))
        state = self.state
        if state == STARTED:
            # The writer checks the first body against the Content-Length it finds
            # while serialising the head, before anything is written. (Counted first:
            # a complete response is logged from inside write_head.)
            self.sent_length = len(body)
            self.declared_length = self.writer.write_head(
                self, self.status, self.held_headers, body, more
            )
        elif state == BODY:
            if self.declared_length >= 0 and not self.no_body:
                self._count(len(body), more)
            self.writer.write_body(self, body, more)
        else:
            raise UnexpectedMessage(_body_misuse(state))
        self.state = BODY if more else (TRAILERS if self.trailers else DONE)

    def _count(self, size: int, more: bool) -> None:
        declared = self.declared_length
        sent = self.sent_length + size
        if sent > declared or (not more and sent < declared):
            raise InvalidMessage(content_length_mismatch(declared, sent, more))
        self.sent_length = sent

    def _send_trailers(self, message: Message) -> None:
        if self.state != TRAILERS:
            if self.state in (STARTED, BODY) and self.trailers:
                raise UnexpectedMessage(
                    "'http.response.trailers' sent before the body ended: "
                    "send 'http.response.body' with more_body=False first"
                )
            raise UnexpectedMessage(
                "'http.response.trailers' needs 'trailers': True in 'http.response.start' "
                f"and a finished body; the response is {_STATE_NAMES[self.state]}"
            )
        if message.get("more_trailers", False):
            raise UnexpectedMessage(
                "'more_trailers': True is not supported; send all trailers in one message"
            )
        # DONE only once the writer accepted them: invalid trailers leave the
        # response in TRAILERS, and the failure policy aborts it.
        self.writer.write_trailers(self, message.get("headers", ()))
        self.state = DONE

    async def _pathsend(self, message: Message) -> None:
        if self.state != STARTED:
            raise UnexpectedMessage(
                "'http.response.pathsend' must follow 'http.response.start' directly; "
                f"the response is {_STATE_NAMES[self.state]}"
            )
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise InvalidMessage(
                f"'http.response.pathsend' needs an absolute 'path' str, got {path!r}"
            )
        loop = asyncio.get_running_loop()
        file = await loop.run_in_executor(None, open, path, "rb")
        with file:
            size = os.fstat(file.fileno()).st_size
            if not _has_header(self.held_headers, b"content-length"):
                length = str(size).encode("latin-1")
                self.held_headers = [*self.held_headers, (b"content-length", length)]
            if self.no_body:
                self._send_body({"body": b"", "more_body": False})
                return
            chunk = await loop.run_in_executor(None, file.read, PATHSEND_CHUNK)
            remaining = size - len(chunk)
            while True:
                self._send_body({"body": chunk, "more_body": remaining > 0})
                if remaining <= 0:
                    return
                if self.writing_paused:
                    await self.writer.wait_writable(self)
                if self.disconnected:
                    raise ClientDisconnected("the client disconnected during pathsend")
                chunk = await loop.run_in_executor(None, file.read, PATHSEND_CHUNK)
                if not chunk:
                    raise InvalidMessage(f"{path} shrank while it was being sent")
                remaining -= len(chunk)

    # -- running the app: the failure policy ------------------------------

    async def run(self, app: ASGIApp, tasks: set[asyncio.Task[None]]) -> None:
        """Call the app, then apply the failure policy to whatever it left undone.
        The task running this call leaves `tasks` as it ends (see `start_task`)."""
        try:
            result: object = await app(self.scope, self.receive, self.send)  # type: ignore[func-returns-value]
        except Exception as exc:
            self._app_raised(exc)
        else:
            if result is not None:
                logger.warning("ASGI callable returned a value (%r); it is ignored", result)
            if self.state != DONE:
                self._app_returned_early()
        finally:
            self.writer.app_finished(self)
            if self.task is not None:  # (None: an eager task factory's task, not tracked)
                tasks.discard(self.task)

    def _app_raised(self, exc: Exception) -> None:
        if self.disconnected:
            logger.debug("ASGI callable raised after the client left: %r", exc)
            return
        logger.error("Exception in ASGI application", exc_info=exc)
        self.fail()

    def _app_returned_early(self) -> None:
        if self.disconnected:
            return
        if self.state in (NEW, STARTED):
            logger.error("ASGI callable returned without sending a response")
        else:
            logger.error("ASGI callable returned without completing the response")
        self.fail()

    def fail(self) -> None:
        """Answer 500 if nothing reached the wire yet, else cut the response short."""
        if self.state in (NEW, STARTED):
            self.status = 500
            self.no_body = self.head_only
            self.trailers = False
            self.state = DONE
            self.writer.write_head(self, 500, _ERROR_HEADERS, b"Internal Server Error", False)
        elif self.state != DONE:
            self.state = DONE
            self.writer.abort(self)


_ERROR_HEADERS: Final = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"connection", b"close"),
)


def message_type(message: Message) -> str:
    """The ``type`` of a message the app sent, or `InvalidMessage`."""
    try:
        kind = message["type"]
    except (KeyError, TypeError):
        raise chained(
            InvalidMessage(f"send() takes a dict with a 'type' key, got {message!r}"), None
        )
    if not isinstance(kind, str):
        raise InvalidMessage(f"a message 'type' must be a str, got {kind!r}")
    return kind


def _check_bytes(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise InvalidMessage(
        f"'http.response.body' needs 'body' as bytes, got {type(body).__name__}"
        + (": encode it first, e.g. body.encode()" if isinstance(body, str) else "")
    )


def _body_misuse(state: int) -> str:
    if state == NEW:
        return (
            "'http.response.body' sent before 'http.response.start': "
            "send the status and headers first"
        )
    return (
        f"'http.response.body' sent after the response was {_STATE_NAMES[state]}: "
        "nothing may follow a body message with more_body=False"
    )


def announced_length(
    stream: HTTPStream, declared: int, body: bytes, more: bool, whole: bool
) -> int:
    """The Content-Length a protocol adds to a response head, or -1 (none, or the app's own).

    `declared` is the app's Content-Length (-1: none), checked here against the first body
    message before anything is written; `whole`: this message is the entire body and the
    protocol may frame it by its length.
    """
    if stream.no_body:
        # HEAD: the app produced the GET body; announce its length.
        return len(body) if declared < 0 and body and not more and stream.head_only else -1
    if declared >= 0:
        if len(body) > declared or (not more and len(body) < declared):
            raise InvalidMessage(content_length_mismatch(declared, len(body), more))
        return -1
    return len(body) if whole else -1


def response_content_length(value: bytes) -> int:
    """An app's Content-Length header value as a number, or `InvalidMessage`."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidMessage(f"invalid content-length {bytes(value)!r}")
    return int(digits)


def check_transfer_encoding(value: bytes) -> None:
    """An app may ask only for chunks: the server frames the body (and HTTP/2 its own way)."""
    if value.strip().lower() != b"chunked":
        raise InvalidMessage(
            f"response 'transfer-encoding: {value.decode('latin-1')}' is not "
            "supported: compress the body yourself and set content-encoding"
        )


def content_length_mismatch(declared: int, sent: int, more: bool) -> str:
    """The message for a body that does not match its Content-Length header."""
    if sent > declared:
        return f"the response body is longer than its Content-Length ({declared} bytes)"
    return (
        f"the response body ended after {sent} bytes, "
        f"short of its Content-Length ({declared} bytes)"
    )


def _has_header(headers: Fields, name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)
