"""WebSocket over HTTP/1.1 Upgrade, through a real client (the websockets library)."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.conftest import connect, read_response


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close-4001":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            return
        if message.get("text") == "raise":
            raise RuntimeError("boom")
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def url(server: Any, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def test_text_and_binary_messages_are_echoed(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xff"


def test_fragmented_message_arrives_whole(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.send(["frag", "mented ", "text"])
        assert ws.recv(timeout=5) == "fragmented text"


def test_subprotocol_chosen_by_the_app_is_negotiated(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), subprotocols=["chat.v2", "chat.v1"], open_timeout=5) as ws:
        assert ws.subprotocol == "chat.v2"


def test_close_code_from_the_app_reaches_the_client(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.send("close-4001")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "asked"


def test_app_that_raises_after_accept_closes_with_1011(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.send("raise")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1011


def test_message_over_the_size_limit_closes_with_1009(serve: Any) -> None:
    server = serve(echo, ws_max_size=1024)
    with ws_connect(url(server), open_timeout=5, max_size=None) as ws:
        ws.send(b"x" * 2048)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009


def test_client_close_code_reaches_the_app(serve: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    server = serve(app)
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.close(code=4321, reason="bye")
    server.stop()
    assert seen == [{"type": "websocket.disconnect", "code": 4321, "reason": "bye"}]


def test_permessage_deflate_is_negotiated_and_works(serve: Any) -> None:
    server = serve(echo)
    with ws_connect(url(server), open_timeout=5) as ws:
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        ws.send("z" * 100_000)
        assert ws.recv(timeout=5) == "z" * 100_000


def test_closing_before_accept_answers_403(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close"})

    server = serve(app)
    with pytest.raises(InvalidStatus) as info:
        ws_connect(url(server), open_timeout=5)
    assert info.value.response.status_code == 403


def test_app_can_deny_with_its_own_http_response(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            assert "websocket.http.response" in scope["extensions"]
            await receive()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"token please"})

    server = serve(app)
    with pytest.raises(InvalidStatus) as info:
        ws_connect(url(server), open_timeout=5)
    assert info.value.response.status_code == 401
    assert info.value.response.headers["www-authenticate"] == "Bearer"
    assert info.value.response.body == b"token please"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(
            b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            426,
            id="old-version",
        ),
        pytest.param(b"Sec-WebSocket-Version: 13\r\n", 400, id="missing-key"),
    ],
)
def test_bad_handshake_gets_a_4xx(serve: Any, headers: bytes, status: int) -> None:
    server = serve(echo)
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + headers
            + b"\r\n"
        )
        status_line, response_headers, _ = read_response(sock)
        assert status_line.startswith(b"HTTP/1.1 %d " % status)
        if status == 426:
            assert response_headers[b"sec-websocket-version"] == b"13"


def test_websocket_scope_describes_the_request(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scopes.append(scope)
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

    server = serve(app)
    with ws_connect(url(server, "/chat?room=1"), subprotocols=["a", "b"], open_timeout=5):
        pass
    server.stop()
    scope = scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["a", "b"]
    assert "method" not in scope


@pytest.mark.parametrize(
    "request_head",
    [
        pytest.param(
            b"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            id="not-a-get",
        ),
        pytest.param(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            id="no-connection-upgrade",
        ),
    ],
)
def test_malformed_websocket_upgrade_gets_400(serve: Any, request_head: bytes) -> None:
    server = serve(echo)
    with connect(server.port) as sock:
        sock.sendall(request_head)
        status_line, _, body = read_response(sock)
        assert status_line.startswith(b"HTTP/1.1 400 ")
        assert b"WebSocket" in body


def test_other_upgrades_are_served_as_plain_http(serve: Any) -> None:
    # RFC 9110 section 7.8: an Upgrade the server does not act on is ignored
    # (curl --http2 sends "Upgrade: h2c" with every http:// request; with
    # --http h1 the server does not act on it).
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain"})

    server = serve(app, http="h1")
    with connect(server.port) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        status_line, headers, body = read_response(sock)
        assert status_line == b"HTTP/1.1 200 OK"
        assert body == b"plain"
        assert headers[b"connection"] == b"close"
