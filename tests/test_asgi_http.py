"""The ASGI HTTP contract, end to end over loopback sockets.

Scope contents, request body streaming and disconnects, the response state
machine (trailers, pathsend, misuse), the failure policy, flow control in both
directions, ``limit_concurrency`` and lifespan. Apps record what they saw in
lists that the tests read once the exchange is over (or via `wait_for`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from levante.server import ClientDisconnected, InvalidMessage, UnexpectedMessage
from tests.conftest import (
    Running,
    connect,
    exchange,
    read_response,
    read_until_close,
    wait_for,
)

Serve = Callable[..., Running]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB


# -- helpers -------------------------------------------------------------------


def start(serve: Serve, app: Any, **settings: Any) -> Running:
    """`serve` with a short graceful-shutdown bound, so a stuck app cannot stall teardown."""
    settings.setdefault("timeout_graceful_shutdown", 5.0)
    return serve(app, **settings)


async def respond(
    send: Send,
    body: bytes = b"ok",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def read_all(receive: Receive) -> list[dict[str, Any]]:
    """Every message up to and including the one with more_body False."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def on_loop(server: Running, fn: Callable[[Any], Any]) -> list[Any]:
    """`fn(connection)` for each open connection, evaluated in the server loop thread."""
    state = server.server.state
    assert state is not None
    return server.call(lambda: [fn(c) for c in state.connections])


def settle(server: Running, rounds: int = 5) -> None:
    """Let the server loop run several iterations (each call is one round trip)."""
    for _ in range(rounds):
        server.call(lambda: None)


def assert_aborted(url: str) -> None:
    """The response must reach the client incomplete."""
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(url, timeout=5.0)


def http_only(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Wrap an app so it declines the lifespan scope (auto mode then skips lifespan)."""

    async def wrapped(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await app(scope, receive, send)

    return wrapped


# -- 1. scope ------------------------------------------------------------------


def test_scope_describes_the_request_as_asgi_2_4(serve: Serve) -> None:
    scopes: list[dict[str, Any]] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    server = start(serve, app)
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /a%20b/%C3%A9/c?x=1&y=%20&z HTTP/1.1\r\n"
            b"Host: example.test\r\n"
            b"X-Dup: one\r\n"
            b"X-Other: Mixed-Case-Value\r\n"
            b"x-DUP: two\r\n"
            b"\r\n"
        )
        status, _, body = read_response(sock)
        client_address = sock.getsockname()
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"ok"

    [scope] = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] == "2.4"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/\u00e9/c"
    assert scope["raw_path"] == b"/a%20b/%C3%A9/c"
    assert scope["query_string"] == b"x=1&y=%20&z"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        (b"host", b"example.test"),
        (b"x-dup", b"one"),
        (b"x-other", b"Mixed-Case-Value"),
        (b"x-dup", b"two"),
    ]
    assert isinstance(scope["headers"], list)
    for header in scope["headers"]:
        assert type(header) is tuple
        assert all(type(part) is bytes for part in header)
    assert scope["client"] == (client_address[0], client_address[1])
    assert scope["server"] == ("127.0.0.1", server.port)


def test_scope_method_is_the_request_method(serve: Serve) -> None:
    methods: list[str] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        methods.append(scope["method"])
        await read_all(receive)
        await respond(send)

    server = start(serve, app)
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/", content=b"x").status_code == 200
        assert client.put("/", content=b"x").status_code == 200
        assert client.delete("/").status_code == 200
        assert client.patch("/", content=b"x").status_code == 200
    assert methods == ["POST", "PUT", "DELETE", "PATCH"]


def test_scope_http_version_is_1_0_for_an_http_1_0_request(serve: Serve) -> None:
    versions: list[str] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        versions.append(scope["http_version"])
        await respond(send)

    server = start(serve, app)
    raw = exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"\r\n\r\nok")
    assert versions == ["1.0"]


def test_root_path_is_in_scope_and_prefixes_path_and_raw_path(serve: Serve) -> None:
    scopes: list[dict[str, Any]] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    server = start(serve, app, root_path="/api")
    assert httpx.get(server.url + "/x").status_code == 200
    [scope] = scopes
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/x"
    assert scope["raw_path"] == b"/api/x"


def test_scope_extensions_announce_trailers_and_pathsend(serve: Serve) -> None:
    extensions: list[dict[str, Any]] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        extensions.append(scope.get("extensions", {}))
        await respond(send)

    server = start(serve, app)
    assert httpx.get(server.url).status_code == 200
    [ext] = extensions
    assert "http.response.trailers" in ext
    assert "http.response.pathsend" in ext


def test_lifespan_state_is_copied_into_each_request_and_changes_do_not_leak(
    serve: Serve,
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["x"] = "from-startup"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        seen.append(dict(scope["state"]))
        scope["state"]["x"] = "changed-by-request"
        scope["state"]["leak"] = True
        await respond(send)

    server = start(serve, app)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 200
    assert httpx.get(server.url).status_code == 200
    assert seen == [{"x": "from-startup"}] * 3


# -- 2. request body streaming ------------------------------------------------


def _body_recorder(
    record: list[list[dict[str, Any]]],
) -> Callable[..., Awaitable[None]]:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        messages = await read_all(receive)
        record.append(messages)
        body = b"".join(m["body"] for m in messages)
        await respond(send, body=hashlib.sha256(body).hexdigest().encode())

    return app


def _check_streamed(messages: list[dict[str, Any]], payload: bytes) -> None:
    assert len(messages) > 1, "a large body should arrive in several messages"
    assert all(m["type"] == "http.request" for m in messages)
    assert all(m["more_body"] is True for m in messages[:-1])
    assert messages[-1]["more_body"] is False
    assert all(type(m["body"]) is bytes for m in messages)
    assert sum(len(m["body"]) for m in messages) == len(payload)
    assert b"".join(m["body"] for m in messages) == payload


def test_large_body_arrives_in_several_messages_with_exact_total(serve: Serve) -> None:
    record: list[list[dict[str, Any]]] = []
    server = start(serve, _body_recorder(record))
    payload = os.urandom(4 * MiB)
    response = httpx.post(server.url, content=payload, timeout=30.0)
    assert response.status_code == 200
    assert response.content == hashlib.sha256(payload).hexdigest().encode()
    [messages] = record
    _check_streamed(messages, payload)


def test_chunked_upload_arrives_in_several_messages_with_exact_total(serve: Serve) -> None:
    record: list[list[dict[str, Any]]] = []
    server = start(serve, _body_recorder(record))
    pieces = [os.urandom(64 * KiB) for _ in range(64)]
    payload = b"".join(pieces)

    def generate() -> Any:
        yield from pieces

    response = httpx.post(server.url, content=generate(), timeout=30.0)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200
    assert response.content == hashlib.sha256(payload).hexdigest().encode()
    [messages] = record
    _check_streamed(messages, payload)


def test_get_yields_one_empty_request_message(serve: Serve) -> None:
    record: list[list[dict[str, Any]]] = []
    server = start(serve, _body_recorder(record))
    assert httpx.get(server.url).status_code == 200
    assert record == [[{"type": "http.request", "body": b"", "more_body": False}]]


def _disconnect_waiter(
    events: list[dict[str, Any]], errors: list[BaseException]
) -> Callable[..., Awaitable[None]]:
    """Reads the body, then waits on receive() and tries to answer afterwards."""

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            events.append(message)
            if message["type"] == "http.disconnect":
                break
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except BaseException as exc:
            errors.append(exc)
            raise

    return app


def test_receive_after_the_body_blocks_until_the_client_disconnects(serve: Serve) -> None:
    events: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    server = start(serve, _disconnect_waiter(events, errors))
    sock = connect(server.port)
    with sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        wait_for(lambda: len(events) == 1)
        assert events[0] == {"type": "http.request", "body": b"hello", "more_body": False}
        settle(server)
        assert len(events) == 1, "receive() returned before the client left"
        # The app is parked in receive(): nothing is on the wire for the client.
        sock.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
    wait_for(lambda: len(events) == 2)
    assert events[1] == {"type": "http.disconnect"}


def test_client_leaving_mid_body_gives_http_disconnect(serve: Serve) -> None:
    events: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    server = start(serve, _disconnect_waiter(events, errors))
    with connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        wait_for(lambda: sum(len(e.get("body", b"")) for e in events) == 10)
    wait_for(lambda: bool(events) and events[-1]["type"] == "http.disconnect")
    *requests, last = events
    assert last == {"type": "http.disconnect"}
    assert requests
    assert all(m["type"] == "http.request" and m["more_body"] is True for m in requests)
    assert b"".join(m["body"] for m in requests) == b"0123456789"


def test_send_after_the_client_disconnected_raises_client_disconnected(serve: Serve) -> None:
    events: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    server = start(serve, _disconnect_waiter(events, errors))
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: len(events) == 1)
    wait_for(lambda: len(errors) == 1)
    assert events[-1] == {"type": "http.disconnect"}
    [error] = errors
    assert isinstance(error, ClientDisconnected)
    assert isinstance(error, OSError)


# -- 5. trailers ---------------------------------------------------------------


def test_trailers_follow_the_last_chunk_of_a_chunked_response(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})

    server = start(serve, app)
    raw = exchange(
        server.port, b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n"
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    assert body == b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc123\r\n\r\n"


def test_trailers_reach_httpx_body_intact(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})

    server = start(serve, app)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):  # keep-alive survives a response with trailers
            response = client.get("/", headers={"TE": "trailers"})
            assert response.status_code == 200
            assert response.content == b"data"


# -- 6 & 7. misuse of send: raised in the app, the response still works ------


async def _body_before_start(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"too early"})


async def _start_twice(send: Send) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.start", "status": 202, "headers": []})


async def _status_as_str(send: Send) -> None:
    await send({"type": "http.response.start", "status": "200", "headers": []})


async def _body_as_str(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": "text"})


async def _unknown_type(send: Send) -> None:
    await send({"type": "http.response.bogus"})


async def _missing_type(send: Send) -> None:
    await send({"status": 200})


async def _trailers_not_announced(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})


async def _pathsend_relative_path(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.pathsend", "path": "relative/file.txt"})


MISUSES = [
    pytest.param(
        _body_before_start, UnexpectedMessage, "http.response.start", id="body-before-start"
    ),
    pytest.param(_start_twice, UnexpectedMessage, "twice", id="start-twice"),
    pytest.param(_status_as_str, InvalidMessage, "status", id="status-as-str"),
    pytest.param(_body_as_str, InvalidMessage, "encode", id="body-as-str"),
    pytest.param(_unknown_type, UnexpectedMessage, "http.response.bogus", id="unknown-type"),
    pytest.param(_missing_type, InvalidMessage, "type", id="missing-type"),
    pytest.param(
        _trailers_not_announced, UnexpectedMessage, "trailers", id="trailers-not-announced"
    ),
    pytest.param(_pathsend_relative_path, InvalidMessage, "absolute", id="pathsend-relative"),
]


@pytest.mark.parametrize(("misuse", "error_type", "hint"), MISUSES)
def test_misused_send_raises_in_the_app_and_a_correct_response_still_goes_out(
    serve: Serve, misuse: Callable[[Send], Awaitable[None]], error_type: type, hint: str
) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            await send(message)
            if isinstance(message, dict) and message.get("type") == "http.response.start":
                started = True

        try:
            await misuse(tracking_send)
        except Exception as exc:
            errors.append(exc)
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"recovered"})

    server = start(serve, app)
    response = httpx.get(server.url)
    [error] = errors
    assert isinstance(error, error_type), repr(error)
    assert hint in str(error)
    assert response.content == b"recovered"
    # start-twice keeps the first status; the others answer 200.
    assert response.status_code == (201 if misuse is _start_twice else 200)


def test_send_after_the_response_is_complete_raises_unexpected_message(serve: Serve) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await respond(send, body=b"done")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except Exception as exc:
            errors.append(exc)

    server = start(serve, app)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert body == b"done"
        wait_for(lambda: len(errors) == 1)
        # Nothing extra was written after the complete response; keep-alive still works.
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"done")
    assert isinstance(errors[0], UnexpectedMessage)


# -- 6. pathsend ---------------------------------------------------------------


def test_pathsend_sends_the_file_bytes_with_a_content_length(serve: Serve, tmp_path: Path) -> None:
    data = os.urandom(MiB + 12345)
    path = tmp_path / "f"
    path.write_bytes(data)

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(path)})

    server = start(serve, app)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            response = client.get("/")
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(data))
            assert "transfer-encoding" not in response.headers
            assert response.content == data


# -- 7. failure policy -----------------------------------------------------------


def test_app_raising_before_start_gets_500_and_the_server_keeps_serving(
    serve: Serve,
) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await respond(send, body=b"fine")

    server = start(serve, app)
    response = httpx.get(server.url + "/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    again = httpx.get(server.url + "/ok")
    assert (again.status_code, again.content) == (200, b"fine")


def test_app_exception_is_logged_with_traceback_on_levante_error(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise RuntimeError("boom-for-the-log")

    server = start(serve, app)
    with caplog.at_level(logging.ERROR, logger="levante.error"):
        assert httpx.get(server.url).status_code == 500
        wait_for(lambda: any(r.exc_info for r in caplog.records))
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.name == "levante.error"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == "boom-for-the-log"
    assert "boom-for-the-log" in caplog.text
    assert "Traceback" in caplog.text


def test_app_raising_after_start_before_body_gets_500(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after start")

    server = start(serve, app)
    response = httpx.get(server.url)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_app_returning_without_a_response_gets_500_and_is_logged(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        return None

    server = start(serve, app)
    with caplog.at_level(logging.ERROR, logger="levante.error"):
        response = httpx.get(server.url)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert any(r.name == "levante.error" and r.levelno == logging.ERROR for r in caplog.records)


def test_app_raising_mid_stream_aborts_the_connection(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("mid-stream")

    server = start(serve, app)
    assert_aborted(server.url)
    # Raw view: the head and the first chunk went out, the terminating chunk never did.
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"transfer-encoding: chunked" in head.lower()
    assert not body.endswith(b"0\r\n\r\n")


def test_app_returning_after_a_partial_stream_aborts_the_connection(serve: Serve) -> None:
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    server = start(serve, app)
    assert_aborted(server.url)


def test_header_pairs_as_lists_and_bytearray_values_are_sent(serve: Serve) -> None:
    # ASGI names "iterable of [name, value] two-item iterables"; apps send lists too.
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    [b"x-list", b"one"],
                    (b"x-bytearray", bytearray(b"two")),
                    [b"content-length", b"2"],
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    server = start(serve, app)
    for _ in range(2):  # the second time through any kept form of the lines
        head, _, body = exchange(
            server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nx-list: one\r\n" in head
        assert b"\r\nx-bytearray: two\r\n" in head
        assert body == b"ok"
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(server.url)
    assert response.http_version == "HTTP/2"
    assert (response.headers["x-list"], response.headers["x-bytearray"]) == ("one", "two")
    assert response.content == b"ok"


def test_header_values_that_change_per_response_are_each_sent(serve: Serve) -> None:
    # Header lines are checked and formatted once per (name, value) pair and kept:
    # a value seen before, or a new one, must come out as this response's own.
    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        request_id = dict(scope["headers"])[b"x-request-id"]
        body = b"x" * int(request_id)
        await respond(
            send,
            body,
            headers=[(b"x-request-id", request_id), (b"content-length", b"%d" % len(body))],
        )

    server = start(serve, app)
    with httpx.Client(base_url=server.url) as client:
        for n in [*range(40), *range(40)]:
            response = client.get("/", headers={"x-request-id": str(n)})
            assert response.headers["x-request-id"] == str(n)
            assert response.headers["content-length"] == str(n)
            assert response.content == b"x" * n


def test_headers_with_str_names_raise_invalid_message_and_answer_500(serve: Serve) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [("x-name", b"v")]}
            )
            await send({"type": "http.response.body", "body": b"body"})
        except Exception as exc:
            errors.append(exc)

    server = start(serve, app)
    response = httpx.get(server.url)
    [error] = errors
    assert isinstance(error, InvalidMessage)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_body_longer_than_content_length_in_one_message_raises_and_answers_500(
    serve: Serve,
) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
        )
        try:
            await send({"type": "http.response.body", "body": b"too long"})
        except Exception as exc:
            errors.append(exc)
            raise

    server = start(serve, app)
    response = httpx.get(server.url)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    [error] = errors
    assert isinstance(error, InvalidMessage)
    assert "Content-Length" in str(error)


def test_body_longer_than_content_length_mid_stream_raises_and_aborts(serve: Serve) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b"def", "more_body": True})
        except Exception as exc:
            errors.append(exc)
            raise

    server = start(serve, app)
    assert_aborted(server.url)
    [error] = errors
    assert isinstance(error, InvalidMessage)


def test_body_shorter_than_content_length_at_the_end_aborts(serve: Serve) -> None:
    errors: list[BaseException] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"10")],
            }
        )
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:
            errors.append(exc)
            raise

    server = start(serve, app)
    assert_aborted(server.url)
    [error] = errors
    assert isinstance(error, InvalidMessage)


# -- 8. backpressure, reading side ------------------------------------------------


def test_unread_request_body_pauses_reading_and_is_bounded(serve: Serve) -> None:
    total = 64 * MiB
    buffer_limit = 64 * KiB
    gate = asyncio.Event()
    received: list[int] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await gate.wait()
        size = 0
        for message in await read_all(receive):
            size += len(message["body"])
        received.append(size)
        await respond(send, body=str(size).encode())

    server = start(serve, app, request_body_buffer=buffer_limit)
    outcome: list[Any] = []

    def upload() -> None:
        try:
            with connect(server.port, timeout=30.0) as sock:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
                chunk = b"u" * MiB
                for _ in range(total // MiB):
                    sock.sendall(chunk)
                outcome.append(read_response(sock, timeout=30.0))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    try:
        wait_for(lambda: on_loop(server, lambda c: c.reading_paused) == [True])

        def buffered(c: Any) -> int:
            return sum(len(b) for b in c.current.body) if c.current is not None else 0

        held = on_loop(server, buffered)
        assert len(held) == 1
        assert 0 < held[0] <= buffer_limit + 256 * KiB
        settle(server)
        # Still paused, still bounded: the client is held back by TCP, not buffered by us.
        assert on_loop(server, lambda c: c.reading_paused) == [True]
        assert on_loop(server, buffered)[0] <= buffer_limit + 256 * KiB
        assert not outcome
    finally:
        server.call(gate.set)
    thread.join(60)
    assert not thread.is_alive()
    [result] = outcome
    assert not isinstance(result, BaseException), repr(result)
    status, _, body = result
    assert status == b"HTTP/1.1 200 OK"
    assert body == str(total).encode()
    assert received == [total]


# -- 9. backpressure, writing side ------------------------------------------------


def test_slow_reader_pauses_the_app_send_and_bounds_the_write_buffer(serve: Serve) -> None:
    total = 256 * MiB
    chunk = b"r" * (64 * KiB)
    count = total // len(chunk)
    sent = [0]

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(total).encode())],
            }
        )
        for _ in range(count):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    server = start(serve, app)
    with connect(server.port, timeout=30.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # The client reads nothing: the transport fills up and pauses writing.
        wait_for(lambda: on_loop(server, lambda c: c.write_paused) == [True])
        # The app is parked in send(), waiting for the transport to drain.
        wait_for(lambda: on_loop(server, lambda c: len(c.gate.waiters)) == [1])
        before = server.call(lambda: sent[0])
        settle(server)
        after = server.call(lambda: sent[0])
        assert before == after < count
        [buffered] = on_loop(server, lambda c: c.transport.get_write_buffer_size())
        assert buffered <= 4 * MiB

        # Now read everything and count it.
        buf = bytearray(MiB)
        view = memoryview(buf)
        head = b""
        while b"\r\n\r\n" not in head:
            n = sock.recv_into(view)
            assert n, "connection closed before the head"
            head += bytes(view[:n])
        head, _, first = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert f"content-length: {total}".encode() in head.lower()
        received = len(first)
        while received < total:
            n = sock.recv_into(view)
            assert n, f"connection closed after {received} body bytes"
            received += n
        assert received == total
    wait_for(lambda: server.call(lambda: sent[0]) == count)


# -- 10. limit_concurrency ---------------------------------------------------------


def test_limit_concurrency_answers_503_while_busy_and_recovers(serve: Serve) -> None:
    gate = asyncio.Event()
    calls: list[str] = []

    @http_only
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/block":
            await gate.wait()
        await respond(send, body=b"ok " + scope["path"].encode())

    server = start(serve, app, limit_concurrency=1)
    first = connect(server.port)
    try:
        first.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        wait_for(lambda: calls == ["/block"])

        raw = exchange(server.port, b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 503 ")
        assert raw.endswith(b"Service Unavailable")
        assert calls == ["/block"], "the app must not be called over the limit"

        server.call(gate.set)
        status, _, body = read_response(first)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"ok /block")
        assert read_until_close(first) == b""
    finally:
        first.close()
    wait_for(lambda: on_loop(server, lambda c: c) == [])
    response = httpx.get(server.url + "/after")
    assert (response.status_code, response.content) == (200, b"ok /after")
    assert calls == ["/block", "/after"]


def test_every_finished_app_call_leaves_the_servers_task_set(serve: Serve) -> None:
    # Each call's coroutine removes its own task (no done-callback per task): an
    # answered request, an app that raised, a WebSocket session, a refused
    # handshake and an HTTP/2 stream must all leave `state.tasks` empty.
    import websockets.sync.client

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hi"})
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["path"] == "/raise":
            raise RuntimeError("the app failed")
        await respond(send, body=b"ok")

    server = start(serve, app, limit_concurrency=1)
    state = server.server.state
    assert state is not None
    assert httpx.get(server.url + "/").status_code == 200
    assert httpx.get(server.url + "/raise").status_code == 500
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        assert ws.recv(timeout=5) == "hi"
    refused = exchange(server.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 4")
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(server.url + "/h2").http_version == "HTTP/2"
    wait_for(lambda: server.call(lambda: len(state.tasks)) == 0)
    # With --limit-concurrency 1 a task left behind would turn this into a 503.
    assert httpx.get(server.url + "/after").status_code == 200


def setting_task_factory(factory: Any, app: ASGIApp) -> ASGIApp:
    """`app`, with a lifespan whose startup sets `factory` as the loop's task factory."""

    async def wrapped(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


def test_a_task_factory_the_app_sets_makes_the_request_tasks(serve: Serve) -> None:
    # The server makes its request tasks itself (named, without the loop's
    # create_task) only while no task factory is set; one an app sets is used.
    made: list[asyncio.Task[Any]] = []
    seen: list[bool] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(asyncio.current_task() in made)
        await respond(send, body=b"ok")

    server = start(serve, setting_task_factory(factory, app))
    assert httpx.get(server.url + "/").status_code == 200
    assert seen == [True]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are CPython 3.12+")
def test_an_app_call_an_eager_task_factory_finishes_at_once_is_not_left_tracked(
    serve: Serve,
) -> None:
    # With the app's eager task factory a call that never waits ends inside
    # create_task, before the server would track its task: it must not be tracked
    # then, or it stays in `state.tasks` for good.
    def eager(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        kwargs["eager_start"] = True  # (uvloop 0.23 passes eager_start=None)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await respond(send, body=b"ok")

    server = start(serve, setting_task_factory(eager, app), limit_concurrency=1)
    state = server.server.state
    assert state is not None
    for _ in range(3):  # with --limit-concurrency 1 a task left tracked makes a 503
        assert httpx.get(server.url + "/").status_code == 200
    assert server.call(lambda: len(state.tasks)) == 0


# -- 11. lifespan ----------------------------------------------------------------


def test_lifespan_startup_runs_before_requests_and_shutdown_after(serve: Serve) -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append("request")
        await respond(send)

    server = start(serve, app)
    assert events == ["startup"]
    assert httpx.get(server.url).status_code == 200
    assert events == ["startup", "request"]
    server.stop()
    assert events == ["startup", "request", "shutdown"]


def test_lifespan_off_never_calls_the_app_with_a_lifespan_scope(serve: Serve) -> None:
    types: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        types.append(scope["type"])
        if scope["type"] == "http":
            await respond(send)

    server = start(serve, app, lifespan="off")
    assert httpx.get(server.url).status_code == 200
    server.stop()
    assert types == ["http"]


def test_app_raising_on_lifespan_in_auto_mode_still_serves_http(serve: Serve) -> None:
    types: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        types.append(scope["type"])
        if scope["type"] != "http":
            raise ValueError("no lifespan here")
        await respond(send, body=b"served")

    server = start(serve, app, lifespan="auto")
    response = httpx.get(server.url)
    assert (response.status_code, response.content) == (200, b"served")
    assert types == ["lifespan", "http"]
    server.stop()
