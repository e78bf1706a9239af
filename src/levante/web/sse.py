"""Server-sent events: `ServerSentEvent` and `EventSourceResponse`.

The wire format is the WHATWG HTML Standard's (§9.2 "Server-sent events",
``text/event-stream``): each event is ``field: value`` lines ended by a blank
line; a line starting with ``:`` is a comment, which browsers ignore and which we
send as a keep-alive while the event source is idle, so proxies and load balancers
that drop silent connections (nginx's ``proxy_read_timeout`` is 60 s) keep the
stream open.

A browser that loses the stream reconnects by itself after the ``retry`` delay
and sends the last ``id`` it saw as the ``Last-Event-ID`` request header; read it
with `last_event_id(request)` to resume where the client left off.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, TypeVar

from levante.web.concurrency import run_in_threadpool
from levante.web.responses import StreamingResponse, json_encoder

if TYPE_CHECKING:
    from levante.asgi import Message, Send
    from levante.web.background import BackgroundTask
    from levante.web.requests import HTTPConnection

__all__ = ["EventSourceResponse", "ServerSentEvent", "last_event_id"]

_T = TypeVar("_T")

#: Seconds between keep-alive comments on an idle stream: sse-starlette's default,
#: well under the 60 s idle timeouts of nginx (`proxy_read_timeout`) and AWS ALBs.
DEFAULT_PING_INTERVAL = 15.0

#: The line endings the event-stream grammar accepts (HTML §9.2.5 `end-of-line`).
LINE_SEPARATORS = ("\n", "\r", "\r\n")

# CRLF, LF or CR, and nothing else: str.splitlines() would also split on U+2028,
# form feeds and others, which the event-stream parser keeps inside a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ServerSentEvent:
    """One event of a ``text/event-stream``.

    `data` is sent as text: a `str` as it is (split into one ``data:`` line per
    line, which the browser joins back with ``\\n``), `bytes` decoded as UTF-8,
    anything else (dicts, lists, dataclasses, msgspec Structs...) as JSON.
    `event` names the event type (the browser's ``addEventListener(event, ...)``;
    ``message`` when absent), `id` becomes the client's ``lastEventId`` and its
    ``Last-Event-ID`` on reconnection, `retry` sets the reconnection delay in
    milliseconds, and `comment` adds ``:`` lines the client ignores.

    Values that would break the framing raise `ValueError`: an `event` or `id`
    with a line break, an `id` with NUL (HTML §9.2.6: the browser ignores such an
    id), a negative `retry`.
    """

    __slots__ = ("comment", "data", "event", "id", "retry")

    def __init__(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        self.data = data
        self.event = _single_line("event", event)
        self.id = _check_id(id)
        self.retry = _check_retry(retry)
        self.comment = comment

    def encode(self, sep: str = "\n") -> bytes:
        """The event on the wire, in UTF-8, ending with a blank line; `sep` is the
        line ending (``\\n``, ``\\r`` or ``\\r\\n``)."""
        return self.text(sep).encode("utf-8")

    def text(self, sep: str = "\n") -> str:
        """The event on the wire, as a string (see `encode`)."""
        _check_sep(sep)
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(f": {line}" if line else ":" for line in _LINE_BREAK.split(self.comment))
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        if self.data is not None:
            lines.extend(f"data: {line}" for line in _LINE_BREAK.split(_data_text(self.data)))
        lines.append(sep)
        return sep.join(lines)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("data", "event", "id", "retry", "comment")
            if getattr(self, name) is not None
        )
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


def _single_line(name: str, value: str | None) -> str | None:
    if value is not None and _LINE_BREAK.search(value):
        raise ValueError(f"An event's {name} cannot contain a line break: {value!r}")
    return value


def _check_id(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value)
    if "\0" in text:
        raise ValueError(f"An event id cannot contain NUL (browsers ignore such ids): {text!r}")
    return _single_line("id", text)


def _check_retry(value: int | None) -> int | None:
    # HTML §9.2.6: a retry value of anything but ASCII digits is ignored.
    if value is not None and (type(value) is not int or value < 0):
        raise ValueError(f"retry must be a non-negative int of milliseconds, got {value!r}")
    return value


def _check_sep(sep: str) -> None:
    if sep not in LINE_SEPARATORS:
        raise ValueError(f"sep must be one of {LINE_SEPARATORS!r}, got {sep!r}")


def _data_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data).decode("utf-8")
    # JSON never holds a raw line break, so it stays one data line.
    return json_encoder.encode(data).decode("utf-8")


def _ping_bytes(message: str | ServerSentEvent, sep: str) -> bytes:
    if isinstance(message, ServerSentEvent):
        return message.encode(sep)
    if not message.startswith(":") or _LINE_BREAK.search(message):
        raise ValueError(
            f"ping_message must be one comment line starting with ':', got {message!r}; "
            "pass a ServerSentEvent to send an event instead"
        )
    # A comment line alone: no blank line, so it never dispatches or splits an event.
    return (message + sep).encode("utf-8")


def last_event_id(request: HTTPConnection) -> str | None:
    """The ``Last-Event-ID`` header a reconnecting `EventSource` sends: the id of
    the last event it received, or None on a first connection."""
    value: str | None = request.headers.get("last-event-id")
    return value


EventSource = AsyncIterable[Any] | Iterable[Any]


class EventSourceResponse(StreamingResponse):
    """A ``text/event-stream`` response fed by an iterator of events.

    `content` is an async iterator, or a plain one (stepped in the thread pool), of
    `ServerSentEvent`s, dicts (``ServerSentEvent(**item)``), strings (event data)
    or bytes (sent as they are, already framed). While it is idle, a keep-alive
    `ping_message` goes out every `ping_interval` seconds (None: never). When the
    client disconnects, the iterator is closed (its ``finally`` runs) and the
    response ends quietly. A send that waits longer than `send_timeout` seconds
    for a stuck client ends the response the same way.

    The response sets ``Cache-Control: no-store`` and ``X-Accel-Buffering: no``
    (so nginx passes events through unbuffered); pass `headers` to override them.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: EventSource,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_message: str | ServerSentEvent = ": ping",
        sep: str = "\n",
        background: BackgroundTask | None = None,
        send_timeout: float | None = None,
    ) -> None:
        _check_sep(sep)
        _check_positive("ping_interval", ping_interval)
        _check_positive("send_timeout", send_timeout)
        self.sep = sep
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.ping = _ping_bytes(ping_message, sep)
        events = content if isinstance(content, AsyncIterable) else _iterate_in_thread(content)
        self._chunks = self._encoded(events)
        merged = {"cache-control": "no-store", "x-accel-buffering": "no"}
        merged.update({name.lower(): value for name, value in (headers or {}).items()})
        super().__init__(self._chunks, status_code, merged, background=background)

    def encode_item(self, item: Any) -> bytes:
        """One item of `content` on the wire."""
        if isinstance(item, ServerSentEvent):
            return item.encode(self.sep)
        if isinstance(item, Mapping):
            return ServerSentEvent(**item).encode(self.sep)
        if isinstance(item, str):
            return ServerSentEvent(data=item).encode(self.sep)
        if isinstance(item, bytes | bytearray | memoryview):
            return bytes(item)
        raise TypeError(
            f"An event source yielded a {type(item).__name__}; yield a ServerSentEvent, "
            "a dict of its fields, a str or bytes (ServerSentEvent(data=obj) sends JSON)"
        )

    async def _encoded(self, events: AsyncIterable[Any]) -> AsyncGenerator[bytes, None]:
        try:
            async for item in events:
                yield self.encode_item(item)
        finally:
            # Leaving `async for` early does not close the source; do it here so
            # its `finally` runs now, not whenever the garbage collector gets to it.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # An empty body message makes servers that hold the head for the first
        # chunk send it now, so the client's `open` event does not wait for one.
        await self._send_body(send, b"")
        chunks = self._chunks
        try:
            while (chunk := await self._next_chunk(chunks, send)) is not None:
                await self._send_body(send, chunk)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await chunks.aclose()

    async def _next_chunk(self, chunks: AsyncIterator[bytes], send: Send) -> bytes | None:
        """The next encoded item (None at the end), sending pings while it is awaited.

        Pings are sent from here, between items, so two sends never overlap.
        """
        if self.ping_interval is None:
            return await _next_or_none(chunks)
        step = asyncio.ensure_future(_next_or_none(chunks))
        try:
            while not (await asyncio.wait((step,), timeout=self.ping_interval))[0]:
                await self._send_body(send, self.ping)
            return step.result()
        finally:
            if not step.done():
                # Cancelled (the client went away) or a ping failed: stop the source
                # where it waits, so its `finally` runs.
                step.cancel()
                await asyncio.wait((step,))

    async def _send_body(self, send: Send, chunk: bytes) -> None:
        message: Message = {"type": "http.response.body", "body": chunk, "more_body": True}
        if self.send_timeout is None:
            await send(message)
            return
        try:
            await asyncio.wait_for(send(message), self.send_timeout)
        except TimeoutError:
            # An OSError is how `_until_disconnect` recognises a vanished client
            # (ASGI 2.4 servers raise one from `send`): a stuck one ends the same way.
            raise ConnectionAbortedError(
                f"the client took no data for {self.send_timeout}s (send_timeout)"
            ) from None


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")


async def _next_or_none(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


class _Exhausted(Exception):
    pass


class _ThreadedIterator(Iterator[_T]):
    """A blocking iterator stepped in the thread pool that can be closed while a
    step is running: the close waits, in its own thread, for that step to end."""

    def __init__(self, iterable: Iterable[_T]) -> None:
        self._iterator = iter(iterable)
        self._lock = threading.Lock()

    def __next__(self) -> _T:
        with self._lock:
            try:
                return next(self._iterator)
            except StopIteration:
                raise _Exhausted from None

    def close(self) -> None:
        with self._lock:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()


# Closes still running in the thread pool, kept referenced until they finish.
_closing: set[asyncio.Future[None]] = set()


async def _iterate_in_thread(iterable: Iterable[_T]) -> AsyncIterator[_T]:
    iterator = _ThreadedIterator(iterable)
    try:
        while True:
            try:
                yield await run_in_threadpool(iterator.__next__)
            except _Exhausted:
                return
    finally:
        # Not awaited: a step may still be blocked in its thread (waiting on a
        # queue, say), and the response must not wait for it to close the source.
        closing = asyncio.ensure_future(run_in_threadpool(iterator.close))
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
