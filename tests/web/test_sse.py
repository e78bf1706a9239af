"""Server-sent events: the event-stream framing (WHATWG HTML §9.2) and
`EventSourceResponse` driven as an ASGI app: headers, pings while idle, the end of
the stream, and a client that disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import msgspec
import pytest

from levante.asgi import Message
from levante.web.requests import Request
from levante.web.sse import EventSourceResponse, ServerSentEvent, last_event_id

_T = TypeVar("_T")

#: Upper bound on any single wait for the app: a deadline against hangs, not a
#: timing assertion.
DEADLINE = 10.0


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


# -- framing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent("hello"), b"data: hello\n\n"),
        (ServerSentEvent(""), b"data: \n\n"),
        (ServerSentEvent("a\nb"), b"data: a\ndata: b\n\n"),
        (ServerSentEvent("a\r\nb\rc"), b"data: a\ndata: b\ndata: c\n\n"),
        (ServerSentEvent("ends\n"), b"data: ends\ndata: \n\n"),
        (ServerSentEvent("\n"), b"data: \ndata: \n\n"),
        (ServerSentEvent(" lead"), b"data:  lead\n\n"),
        (ServerSentEvent("x\u2028y\x0cz"), "data: x\u2028y\x0cz\n\n".encode()),
        (ServerSentEvent("ñ"), "data: ñ\n\n".encode()),
        (ServerSentEvent(b"raw bytes"), b"data: raw bytes\n\n"),
        (ServerSentEvent("d", event="update"), b"event: update\ndata: d\n\n"),
        (ServerSentEvent("d", id="7"), b"id: 7\ndata: d\n\n"),
        (ServerSentEvent("d", id=7), b"id: 7\ndata: d\n\n"),
        (ServerSentEvent(id=""), b"id: \n\n"),
        (ServerSentEvent(retry=100), b"retry: 100\n\n"),
        (ServerSentEvent(retry=0), b"retry: 0\n\n"),
        (ServerSentEvent(comment="keep"), b": keep\n\n"),
        (ServerSentEvent(comment=""), b":\n\n"),
        (ServerSentEvent(comment="a\nb"), b": a\n: b\n\n"),
        (ServerSentEvent(), b"\n"),
        (
            ServerSentEvent("d", event="e", id="1", retry=5, comment="c"),
            b": c\nevent: e\nid: 1\nretry: 5\ndata: d\n\n",
        ),
    ],
)
def test_event_encoding(event: ServerSentEvent, wire: bytes) -> None:
    assert event.encode() == wire


@pytest.mark.parametrize(
    ("sep", "wire"),
    [
        ("\n", b"event: e\ndata: a\ndata: b\n\n"),
        ("\r\n", b"event: e\r\ndata: a\r\ndata: b\r\n\r\n"),
        ("\r", b"event: e\rdata: a\rdata: b\r\r"),
    ],
)
def test_event_encoding_with_each_line_separator(sep: str, wire: bytes) -> None:
    assert ServerSentEvent("a\nb", event="e").encode(sep) == wire


def test_unknown_line_separator_is_rejected() -> None:
    with pytest.raises(ValueError, match="sep"):
        ServerSentEvent("a").encode("\n\n")


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Reading(msgspec.Struct):
    sensor: str
    value: float


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        ({"a": 1, "b": "x\ny"}, b'data: {"a":1,"b":"x\\ny"}\n\n'),
        ([1, 2], b"data: [1,2]\n\n"),
        (Point(1, 2), b'data: {"x":1,"y":2}\n\n'),
        (Reading("t1", 20.5), b'data: {"sensor":"t1","value":20.5}\n\n'),
        (42, b"data: 42\n\n"),
    ],
)
def test_non_string_data_is_json_on_one_line(data: Any, wire: bytes) -> None:
    assert ServerSentEvent(data).encode() == wire


@pytest.mark.parametrize("bad_id", ["a\nb", "a\rb", "a\r\nb", "a\0b"])
def test_id_with_line_break_or_nul_is_rejected(bad_id: str) -> None:
    with pytest.raises(ValueError, match="id"):
        ServerSentEvent("d", id=bad_id)


@pytest.mark.parametrize("bad_event", ["a\nb", "a\rb"])
def test_event_name_with_line_break_is_rejected(bad_event: str) -> None:
    with pytest.raises(ValueError, match="event"):
        ServerSentEvent("d", event=bad_event)


@pytest.mark.parametrize("bad_retry", [-1, 1.5, "100", True])
def test_retry_must_be_a_non_negative_int(bad_retry: Any) -> None:
    with pytest.raises(ValueError, match="retry"):
        ServerSentEvent(retry=bad_retry)


def test_events_compare_by_value() -> None:
    assert ServerSentEvent("a", id="1") == ServerSentEvent("a", id="1")
    assert ServerSentEvent("a", id="1") != ServerSentEvent("a", id="2")
    assert "id='1'" in repr(ServerSentEvent("a", id="1"))


# -- an ASGI driver ---------------------------------------------------------------------


class Exchange:
    """Runs an ASGI app for one GET and reads what it sends, message by message.

    `receive` gives the (empty) request body, then blocks until `disconnect()`.
    """

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/events",
            "raw_path": b"/events",
            "query_string": b"",
            "root_path": "",
            "headers": headers or [],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        self.task = asyncio.ensure_future(app(scope, self.inbox.get, self.outbox.put))
        self.body = b""
        self.ended = False

    async def start(self) -> Message:
        message = await self.next()
        assert message["type"] == "http.response.start"
        return message

    async def next(self) -> Message:
        async with asyncio.timeout(DEADLINE):
            return await self.outbox.get()

    async def read_until(self, marker: bytes) -> bytes:
        """Body messages until the body holds `marker`; returns the body so far."""
        while marker not in self.body:
            await self.read_one()
        return self.body

    async def read_one(self) -> None:
        message = await self.next()
        assert message["type"] == "http.response.body", message
        self.body += message["body"]
        if not message.get("more_body", False):
            self.ended = True

    async def read_to_end(self) -> bytes:
        while not self.ended:
            await self.read_one()
        await self.finish()
        return self.body

    async def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})
        await self.finish()

    async def finish(self) -> None:
        async with asyncio.timeout(DEADLINE):
            await self.task


def sse_app(make_content: Any, **options: Any) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        await EventSourceResponse(make_content(request), **options)(scope, receive, send)

    return app


async def three_events(request: Request) -> AsyncIterator[Any]:
    yield ServerSentEvent("one", id="1")
    yield {"data": "two", "event": "custom", "id": "2"}
    yield "three"
    yield b"data: four\n\n"


# -- the response -----------------------------------------------------------------------


def test_stream_of_mixed_items_and_its_headers() -> None:
    async def scenario() -> tuple[Message, bytes]:
        exchange = Exchange(sse_app(three_events))
        start = await exchange.start()
        return start, await exchange.read_to_end()

    start, body = run(scenario())
    headers = dict(start["headers"])
    assert start["status"] == 200
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-accel-buffering"] == b"no"
    assert b"connection" not in headers
    assert b"content-length" not in headers
    assert body == (
        b"id: 1\ndata: one\n\nevent: custom\nid: 2\ndata: two\n\ndata: three\n\ndata: four\n\n"
    )


def test_headers_can_be_overridden_case_insensitively() -> None:
    async def scenario() -> Message:
        app = sse_app(three_events, headers={"Cache-Control": "no-cache", "X-Extra": "1"})
        exchange = Exchange(app)
        start = await exchange.start()
        await exchange.read_to_end()
        return start

    headers = run(scenario())["headers"]
    assert [v for k, v in headers if k == b"cache-control"] == [b"no-cache"]
    assert (b"x-extra", b"1") in headers


def test_status_code_and_crlf_separator() -> None:
    async def scenario() -> tuple[Message, bytes]:
        exchange = Exchange(sse_app(three_events, status_code=201, sep="\r\n"))
        start = await exchange.start()
        return start, await exchange.read_to_end()

    start, body = run(scenario())
    assert start["status"] == 201
    assert body.startswith(b"id: 1\r\ndata: one\r\n\r\n")


def test_headers_are_flushed_before_the_first_event() -> None:
    never = asyncio.Event()

    async def idle(request: Request) -> AsyncIterator[str]:
        await never.wait()
        yield "never"

    async def scenario() -> Message:
        exchange = Exchange(sse_app(idle, ping_interval=None))
        await exchange.start()
        first = await exchange.next()
        await exchange.disconnect()
        return first

    first = run(scenario())
    assert first == {"type": "http.response.body", "body": b"", "more_body": True}


def test_pings_are_sent_while_the_source_is_idle() -> None:
    release = asyncio.Event()

    async def slow(request: Request) -> AsyncIterator[str]:
        yield "first"
        await release.wait()
        yield "second"

    async def scenario() -> bytes:
        exchange = Exchange(sse_app(slow, ping_interval=0.01))
        await exchange.start()
        await exchange.read_until(b": ping\n")
        await exchange.read_until(b": ping\n: ping\n")  # and again, while still idle
        release.set()
        return await exchange.read_to_end()

    body = run(scenario())
    assert body.startswith(b"data: first\n\n: ping\n: ping\n")
    assert body.endswith(b"data: second\n\n")
    # Pings are whole comment lines, never inside an event.
    assert body.replace(b": ping\n", b"") == b"data: first\n\ndata: second\n\n"


def test_custom_ping_message_and_event() -> None:
    async def slow(request: Request) -> AsyncIterator[str]:
        await asyncio.Event().wait()
        yield "never"

    async def scenario(ping: Any) -> bytes:
        exchange = Exchange(sse_app(slow, ping_interval=0.01, ping_message=ping))
        await exchange.start()
        body = await exchange.read_until(b"\n")
        await exchange.disconnect()
        return body

    assert run(scenario(": keepalive")).startswith(b": keepalive\n")
    assert run(scenario(ServerSentEvent(event="ping", data=""))).startswith(
        b"event: ping\ndata: \n\n"
    )


@pytest.mark.parametrize("bad", ["ping", ": a\nb"])
def test_ping_message_must_be_one_comment_line(bad: str) -> None:
    with pytest.raises(ValueError, match="ping_message"):
        EventSourceResponse(iter(()), ping_message=bad)


@pytest.mark.parametrize("option", ["ping_interval", "send_timeout"])
def test_intervals_must_be_positive(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        options: dict[str, Any] = {option: 0}
        EventSourceResponse(iter(()), **options)


def test_unsupported_item_type_raises() -> None:
    async def bad(request: Request) -> AsyncIterator[Any]:
        yield 42

    async def scenario() -> None:
        exchange = Exchange(sse_app(bad))
        await exchange.start()
        await exchange.finish()

    with pytest.raises(TypeError, match="ServerSentEvent"):
        run(scenario())


def test_disconnect_runs_the_generators_finally() -> None:
    cleaned = asyncio.Event()

    async def endless(request: Request) -> AsyncIterator[ServerSentEvent]:
        n = 0
        try:
            while True:
                n += 1
                yield ServerSentEvent(str(n), id=str(n))
                await asyncio.sleep(0)
        finally:
            cleaned.set()

    async def scenario() -> bytes:
        exchange = Exchange(sse_app(endless))
        await exchange.start()
        body = await exchange.read_until(b"id: 3\n")
        await exchange.disconnect()  # the app returns: no exception escapes
        return body

    body = run(scenario())
    assert cleaned.is_set()
    assert body.startswith(b"id: 1\ndata: 1\n\n")


def test_disconnect_while_the_generator_waits_runs_its_finally() -> None:
    cleaned: list[str] = []

    async def waiting(request: Request) -> AsyncIterator[str]:
        try:
            yield "hello"
            await asyncio.Event().wait()  # idle forever
            yield "never"
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise
        finally:
            cleaned.append("finally")

    async def scenario() -> None:
        exchange = Exchange(sse_app(waiting, ping_interval=0.01))
        await exchange.start()
        await exchange.read_until(b": ping\n")
        await exchange.disconnect()

    run(scenario())
    assert cleaned == ["cancelled", "finally"]


def test_send_failing_with_oserror_ends_quietly_and_closes_the_source() -> None:
    cleaned = asyncio.Event()

    async def endless(request: Request) -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
        finally:
            cleaned.set()

    async def scenario() -> None:
        sent: list[Message] = []

        async def receive() -> Message:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)
            if len(sent) > 3:
                raise OSError("the client went away")  # as ASGI 2.4 servers do

        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        await EventSourceResponse(endless(None))(scope, receive, send)  # type: ignore[arg-type]

    run(scenario())
    assert cleaned.is_set()


def test_send_timeout_ends_the_stream_like_a_disconnect() -> None:
    cleaned = asyncio.Event()
    background_ran: list[bool] = []

    async def endless(request: Request) -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
        finally:
            cleaned.set()

    async def scenario() -> None:
        async def receive() -> Message:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            if message.get("body"):
                await asyncio.Event().wait()  # a client that never reads

        async def background() -> None:
            background_ran.append(True)

        from levante.web.background import BackgroundTask

        response = EventSourceResponse(
            endless(None),  # type: ignore[arg-type]
            send_timeout=0.01,
            background=BackgroundTask(background),
        )
        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        async with asyncio.timeout(DEADLINE):
            await response(scope, receive, send)

    run(scenario())
    assert cleaned.is_set()
    assert background_ran == []


def test_background_task_runs_after_a_complete_stream() -> None:
    ran: list[bool] = []

    async def scenario() -> None:
        from levante.web.background import BackgroundTask

        async def after() -> None:
            ran.append(True)

        app = sse_app(three_events, background=BackgroundTask(after))
        exchange = Exchange(app)
        await exchange.start()
        await exchange.read_to_end()

    run(scenario())
    assert ran == [True]


# -- sync generators ----------------------------------------------------------------------


def test_sync_generator_is_streamed() -> None:
    def numbers(request: Request) -> Iterator[ServerSentEvent]:
        for n in range(3):
            yield ServerSentEvent(n, id=str(n))

    async def scenario() -> bytes:
        exchange = Exchange(sse_app(numbers))
        await exchange.start()
        return await exchange.read_to_end()

    assert run(scenario()) == b"id: 0\ndata: 0\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\n"


def test_sync_generator_runs_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    def source(request: Request) -> Iterator[str]:
        threads.append(threading.get_ident())
        yield "x"

    async def scenario() -> None:
        exchange = Exchange(sse_app(source))
        await exchange.start()
        await exchange.read_to_end()

    run(scenario())
    assert threads and threads[0] != threading.get_ident()


def test_sync_generator_finally_runs_after_disconnect() -> None:
    cleaned = threading.Event()
    stop = threading.Event()

    def ticking(request: Request) -> Iterator[str]:
        try:
            while not stop.is_set():
                yield "tick"
                # Blocking between items, as sync sources do (a queue, a socket...).
                stop.wait(0.005)
        finally:
            cleaned.set()

    async def scenario() -> None:
        exchange = Exchange(sse_app(ticking, ping_interval=None))
        await exchange.start()
        await exchange.read_until(b"data: tick\n\ndata: tick\n\n")
        await exchange.disconnect()

    run(scenario())
    # The close waits in a thread for the step in flight, so wait for it here.
    assert cleaned.wait(DEADLINE)
    stop.set()


# -- Last-Event-ID ----------------------------------------------------------------------------


def test_last_event_id_reads_the_header() -> None:
    seen: list[str | None] = []

    async def resuming(request: Request) -> AsyncIterator[ServerSentEvent]:
        last = last_event_id(request)
        seen.append(last)
        start = int(last) + 1 if last else 1
        for n in range(start, start + 2):
            yield ServerSentEvent(f"event {n}", id=str(n))

    async def scenario(headers: list[tuple[bytes, bytes]]) -> bytes:
        exchange = Exchange(sse_app(resuming), headers)
        await exchange.start()
        return await exchange.read_to_end()

    first = run(scenario([]))
    resumed = run(scenario([(b"last-event-id", b"2")]))
    assert seen == [None, "2"]
    assert b"id: 1\n" in first
    assert resumed.startswith(b"id: 3\ndata: event 3\n\n")


def test_no_pings_sent_when_disabled() -> None:
    async def quick(request: Request) -> AsyncIterator[str]:
        for _ in range(3):
            await asyncio.sleep(0)
            yield "x"

    async def scenario() -> bytes:
        exchange = Exchange(sse_app(quick, ping_interval=None))
        await exchange.start()
        return await exchange.read_to_end()

    assert b": ping" not in run(scenario())


# -- through the App and the TestClient -------------------------------------------------------


@pytest.fixture
def test_client_cls() -> Any:
    testing = pytest.importorskip("levante.testing")
    return testing.TestClient


def test_app_route_streams_events_and_pings_to_the_test_client(test_client_cls: Any) -> None:
    from levante.web import App

    cleaned = threading.Event()
    app: App[None] = App()

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        async def source() -> AsyncIterator[ServerSentEvent]:
            try:
                yield ServerSentEvent({"n": 1}, event="count", id="1")
                await asyncio.Event().wait()  # idle until the client leaves
            finally:
                cleaned.set()

        return EventSourceResponse(source(), ping_interval=0.01)

    with test_client_cls(app) as client, client.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        body = ""
        for text in response.iter_text():
            body += text
            if ": ping\n" in body:
                break
    assert body.startswith('event: count\nid: 1\ndata: {"n":1}\n\n: ping\n')
    assert cleaned.wait(DEADLINE)
