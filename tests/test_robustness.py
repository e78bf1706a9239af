"""Regression tests for robustness bugs found in review, one focused test per bug.

Concurrent receive() waiters, invalid response trailers, tiny request chunks,
endless trailer lines, Upgrade requests (pipelined, and with a body), pipelining
under write backpressure, keep-alive at shutdown, 1xx final statuses, framing
headers set by the app, errors behind pipelined requests, and URL fragments.
Everything goes through a real loopback socket; waits are bounded by socket
timeouts, events or `wait_for` deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from levante.server import InvalidMessage
from tests.conftest import Running, connect, read_response, wait_for

Serve = Callable[..., Running]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB


# -- helpers -------------------------------------------------------------------


def http_only(app: App) -> App:
    """Wrap an app so it declines the lifespan scope."""

    async def wrapped(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await app(scope, receive, send)

    return wrapped


async def respond(
    send: Send, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-length", b"%d" % len(body)), *(headers or [])]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if message["type"] != "http.request" or not message.get("more_body", False):
            return body


def read_to_close(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything until the server closes or aborts; a timeout fails the test."""
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def release(server: Running, event: asyncio.Event) -> None:
    """Set an asyncio event the app waits on, from the test thread."""
    server.loop.call_soon_threadsafe(event.set)


def settle(server: Running, rounds: int = 5) -> None:
    """Let the server loop run a few iterations (each call is one round trip)."""
    for _ in range(rounds):
        server.call(lambda: None)


def connections(server: Running, fn: Callable[[Any], Any]) -> list[Any]:
    """`fn(connection)` for each open connection, evaluated in the server loop."""
    state = server.server.state
    assert state is not None
    return server.call(lambda: [fn(c) for c in state.connections])


class Reader:
    """Reads responses sent back to back on one connection (pipelining)."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed mid-response: {self.buf!r}")
        self.buf += data

    def response(self) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        """(status line, headers, body) of one Content-Length-framed response."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(dict(headers).get(b"content-length", b"0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def rest(self) -> bytes:
        """What is left until the server closes."""
        return self.buf + read_to_close(self.sock)


def split_response(raw: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = [
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in lines)
    ]
    return status, headers, body


# -- 1. concurrent receive() ----------------------------------------------------


def test_two_tasks_awaiting_receive_both_get_disconnect_when_the_client_closes(
    serve: Serve,
) -> None:
    results: list[tuple[str, str]] = []
    returned = threading.Event()

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()  # the empty body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})

        async def watcher(name: str) -> None:
            message = await receive()
            results.append((name, message["type"]))

        await asyncio.gather(watcher("A"), watcher("B"))
        returned.set()

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    assert returned.wait(10), f"a receive() waiter was never woken: {results}"
    assert sorted(results) == [("A", "http.disconnect"), ("B", "http.disconnect")]
    wait_for(lambda: server.call(lambda: len(server.server.state.tasks)) == 0)


# -- 2. invalid response trailers -----------------------------------------------


@pytest.mark.parametrize(
    "trailers",
    [
        pytest.param([("x-checksum", "abc")], id="str-pairs"),
        pytest.param([(b"x-checksum", b"abc\r\nx-injected: 1")], id="crlf-in-value"),
    ],
)
def test_invalid_trailers_abort_the_connection_and_shutdown_is_not_held_up(
    serve: Serve, trailers: list[tuple[Any, Any]]
) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True, "headers": []})
        await send({"type": "http.response.body", "body": b"hello", "more_body": False})
        try:
            await send({"type": "http.response.trailers", "headers": trailers})
        except Exception as exc:
            errors.append(exc)
            raise

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_to_close(sock)  # EOF or reset: a timeout here means it hung
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"5\r\nhello\r\n" in data
    assert not data.endswith(b"0\r\n\r\n"), "an invalid response must not look complete"
    assert b"x-injected" not in data
    [error] = errors
    assert isinstance(error, InvalidMessage)
    server.stop()


# -- 3. many tiny request chunks -----------------------------------------------------


def test_many_tiny_chunks_do_not_starve_other_connections_and_arrive_intact(
    serve: Serve,
) -> None:
    count = 20000
    pinged = asyncio.Event()
    bodies: list[bytes] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["path"] == "/upload":
            await pinged.wait()  # the body piles up in the server's buffer meanwhile
            body = await read_body(receive)
            bodies.append(body)
            await respond(send, b"%d" % len(body))
        else:
            await respond(send, b"pong")
            pinged.set()

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port, timeout=30) as upload, connect(server.port, timeout=30) as ping:
        upload.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sender = threading.Thread(
            target=upload.sendall, args=(b"1\r\na\r\n" * count + b"0\r\n\r\n",)
        )
        sender.start()
        sender.join(30)
        assert not sender.is_alive(), "the server stopped reading the upload"

        ping.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(ping, timeout=30)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"pong")

        status, _, body = read_response(upload, timeout=30)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"%d" % count)
    assert bodies == [b"a" * count]


# -- 4. endless trailer line ----------------------------------------------------------


def test_endless_request_trailer_line_gets_431_and_close(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, b"ok")

    server = serve(app, limit_request_head=8192, timeout_graceful_shutdown=5)
    with connect(server.port, timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\nX-Trailer: "
        )
        piece = b"a" * (16 * KiB)
        sent = 0
        # Up to 1 MiB of one trailer line with no CRLF, until the server answers.
        while sent < MiB:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:
                break  # the server closed: its answer is waiting to be read
            sent += len(piece)
        data = read_to_close(sock)
    status, headers, _ = split_response(data)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert (b"connection", b"close") in headers


# -- 5. Upgrade request pipelined behind a response -------------------------------------


def test_pipelined_upgrade_request_ends_the_connection_and_smuggles_nothing(
    serve: Serve,
) -> None:
    seen: list[str] = []
    finish_slow = asyncio.Event()

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        await read_body(receive)
        if scope["path"] == "/slow":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"4")],
                }
            )
            await send({"type": "http.response.body", "body": b"sl", "more_body": True})
            await finish_slow.wait()
            await send({"type": "http.response.body", "body": b"ow"})
            return
        await respond(send, scope["path"].encode())

    server = serve(app, timeout_graceful_shutdown=5)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: seen == ["GET /slow"])
        # While /slow is in flight: an Upgrade request, then a POST whose body
        # is a request of its own, arriving in a later read.
        sock.sendall(
            b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
        )
        settle(server)
        sock.sendall(smuggled)
        settle(server)
        release(server, finish_slow)

        reader = Reader(sock)
        status, _, body = reader.response()
        assert (status, body) == (b"HTTP/1.1 200 OK", b"slow")
        status, headers, body = reader.response()
        assert (status, body) == (b"HTTP/1.1 200 OK", b"/up")
        assert (b"connection", b"close") in headers
        assert reader.rest() == b""  # closed after the upgrade request's answer
    assert seen == ["GET /slow", "GET /up"]


# -- 6. Upgrade request with a body ---------------------------------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "body-in-a-later-write"])
def test_upgrade_h2c_post_with_content_length_delivers_the_whole_body(
    serve: Serve, split: bool
) -> None:
    bodies: list[bytes] = []
    started = threading.Event()

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started.set()
        body = await read_body(receive)
        bodies.append(body)
        await respond(send, body)

    server = serve(app, timeout_graceful_shutdown=5)
    body = b'{"amount": 100}'
    head = (
        b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with connect(server.port, timeout=10) as sock:
        if split:
            sock.sendall(head + body[:5])
            assert started.wait(10)
            sock.sendall(body[5:])
        else:
            sock.sendall(head + body)
        reader = Reader(sock)
        status, _, echoed = reader.response()
        assert reader.rest() == b""
    assert status == b"HTTP/1.1 200 OK"
    assert echoed == body
    assert bodies == [body]


# -- 7. pipelining from a client that never reads ------------------------------------------


def test_pipelining_client_that_never_reads_keeps_tasks_and_write_buffer_bounded(
    serve: Serve,
) -> None:
    payload = b"x" * (32 * KiB)
    answered = [0]

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        answered[0] += 1
        await respond(send, bytes(bytearray(payload)))

    server = serve(app, timeout_graceful_shutdown=5)
    batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    sent = [0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(2.0)
    sock.connect(("127.0.0.1", server.port))

    def pipeline() -> None:
        with contextlib.suppress(TimeoutError):  # the server stopped reading: good
            for _ in range(40):
                sock.sendall(batch)
                sent[0] += 1000

    with sock:
        sender = threading.Thread(target=pipeline)
        sender.start()
        sender.join(30)
        assert not sender.is_alive()
        settle(server, rounds=20)
        assert sent[0] >= 1000
        assert server.call(lambda: len(server.server.state.tasks)) <= 2
        [buffered] = connections(server, lambda c: c.transport.get_write_buffer_size())
        assert buffered <= 4 * MiB
        assert server.call(lambda: answered[0]) < sent[0]


# -- 8. shutdown with a keep-alive response in flight ------------------------------------------


def test_shutdown_finishes_the_streaming_response_then_closes_without_keep_alive_wait(
    serve: Serve,
) -> None:
    finish = asyncio.Event()

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
        await finish.wait()
        await send({"type": "http.response.body", "body": b"part2", "more_body": False})

    server = serve(app, timeout_keep_alive=30, timeout_graceful_shutdown=30)
    state = server.server.state
    with connect(server.port, timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        head = b""
        while b"part1" not in head:
            data = sock.recv(65536)
            assert data, f"closed early: {head!r}"
            head += data
        assert b"transfer-encoding: chunked" in head
        assert b"connection: close" not in head  # the head went out as keep-alive

        stopper = threading.Thread(target=server.stop, kwargs={"timeout": 25})
        stopper.start()
        wait_for(lambda: server.call(lambda: state.shutting_down))
        release(server, finish)
        rest = read_to_close(sock, timeout=20)
        assert rest.endswith(b"5\r\npart2\r\n0\r\n\r\n"), rest  # complete, then closed
        stopper.join(20)
        assert not stopper.is_alive(), "stop() waited for the keep-alive timeout"


# -- 9. 1xx as the final status ------------------------------------------------------------------


def test_1xx_as_the_final_status_raises_invalid_message_and_answers_500(serve: Serve) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 103,
                    "headers": [(b"link", b"</s.css>; rel=preload")],
                }
            )
            await send({"type": "http.response.body", "body": b"body of a"})
        except Exception as exc:
            errors.append(exc)
            raise

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(sock, timeout=10)
    assert status == b"HTTP/1.1 500 Internal Server Error"
    [error] = errors
    assert isinstance(error, InvalidMessage)


# -- 10. framing headers set by the app -----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"transfer-encoding", b"gzip")], id="transfer-encoding-gzip"),
        pytest.param(
            [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
            id="content-length-and-transfer-encoding",
        ),
    ],
)
def test_app_framing_headers_the_server_cannot_honour_raise_and_answer_500(
    serve: Serve, headers: list[tuple[bytes, bytes]]
) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"hello"})
        except Exception as exc:
            errors.append(exc)
            raise

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        status, response_headers, body = reader.response()
        assert status == b"HTTP/1.1 500 Internal Server Error"
        assert body == b"Internal Server Error"
        assert b"transfer-encoding" not in dict(response_headers)
        assert (b"connection", b"close") in response_headers
        assert reader.rest() == b""  # nothing of the app's body or framing follows
    [error] = errors
    assert isinstance(error, InvalidMessage)


def test_app_chunked_header_to_an_http_1_0_client_gets_a_close_delimited_body(
    serve: Serve,
) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"transfer-encoding", b"chunked")],
            }
        )
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b" world"})

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = split_response(read_to_close(sock))
    assert status == b"HTTP/1.1 200 OK"
    assert b"transfer-encoding" not in dict(headers)
    assert b"content-length" not in dict(headers)
    assert [v for n, v in headers if n == b"connection"] == [b"close"]
    assert body == b"hello world"


def test_app_keep_alive_header_is_not_sent_when_the_server_closes(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await respond(send, b"hello", [(b"connection", b"keep-alive")])

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        raw = read_to_close(sock)
    status, headers, body = split_response(raw)
    assert status == b"HTTP/1.1 200 OK"
    assert [v for n, v in headers if n == b"connection"] == [b"close"]
    assert b"keep-alive" not in raw.lower()
    assert body == b"hello"


# -- 11. a bad request behind pipelined good ones ------------------------------------------------


def test_pipelined_requests_before_a_bad_one_are_answered_in_order_then_400(
    serve: Serve,
) -> None:
    seen: list[str] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await respond(send, scope["path"].encode())

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.response()[::2] == (b"HTTP/1.1 200 OK", b"/1")
        assert reader.response()[::2] == (b"HTTP/1.1 200 OK", b"/2")
        status, headers, _ = reader.response()
        assert status == b"HTTP/1.1 400 Bad Request"
        assert (b"connection", b"close") in headers
        assert reader.rest() == b""
    assert seen == ["/1", "/2"]


# -- 12. URL fragments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/a#frag", "/a", b""),
        (b"/a?b#c", "/a", b"b"),
    ],
)
def test_fragment_is_not_part_of_the_scope_path_or_query(
    serve: Serve, target: bytes, path: str, query: bytes
) -> None:
    scopes: list[dict[str, Any]] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send, b"ok")

    server = serve(app, timeout_graceful_shutdown=5)
    with connect(server.port) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        assert read_response(sock, timeout=10)[0] == b"HTTP/1.1 200 OK"
    [scope] = scopes
    assert scope["path"] == path
    assert scope["raw_path"] == path.encode()
    assert scope["query_string"] == query
