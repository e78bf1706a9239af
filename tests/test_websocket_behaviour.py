"""WebSocket behaviour under stress and misuse, with real clients on loopback.

Keep-alive pings and dead-peer drops, clients that vanish, flow control in both
directions, protocol errors (RFC 6455 section 5 and 7.4.1 close codes), graceful
shutdown (1001), ``--ws none``, FastAPI and Starlette unchanged, and ASGI
messages sent at the wrong time. Raw sockets speak the wire format where a
well-behaved client cannot misbehave; ``websockets.sync.client`` does the rest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
import threading
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from levante.server.protocols.websocket import WebSocketProtocol
from tests.apps import ws_apps
from tests.conftest import Running, connect, read_response, wait_for

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def url(server: Running, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def ws_conns(server: Running, fn: Any) -> list[Any]:
    """`fn(conn)` for every open WebSocket connection, evaluated in the server's loop."""
    return server.call(
        lambda: [fn(c) for c in server.server.state.connections if isinstance(c, WebSocketProtocol)]
    )


def disconnects(record: list[Any]) -> list[dict[str, Any]]:
    return [m for m in record if isinstance(m, dict) and m["type"] == "websocket.disconnect"]


class RawWebSocket:
    """A hand-driven WebSocket client: exact frames out, frames parsed in."""

    def __init__(self, port: int, path: str = "/ws", timeout: float = 10.0) -> None:
        self.sock = connect(port, timeout)
        self.buf = bytearray()
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path.encode(), port, key)
        )
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        lines = head.split(b"\r\n")
        assert lines[0].startswith(b"HTTP/1.1 101 "), head
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert headers[b"sec-websocket-accept"] == expected

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_frame(self) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next frame; server frames must not be masked."""
        b0, b1 = self.read_exact(2)
        assert not b1 & 0x80, "a server frame was masked (RFC 6455 section 5.1)"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read_exact(8))
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exact(length)

    def read_close(self) -> tuple[int, list[int]]:
        """Read frames up to a close frame: (its code, opcodes seen before it)."""
        seen = []
        while True:
            _, opcode, payload = self.read_frame()
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0], seen
            seen.append(opcode)

    def read_to_end(self) -> tuple[list[int], str]:
        """Read until the server closes: (opcodes of the frames seen, "eof" or "reset")."""
        opcodes = []
        try:
            while True:
                opcodes.append(self.read_frame()[1])
        except EOFError:
            return opcodes, "eof"
        except ConnectionResetError:
            return opcodes, "reset"

    def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0
    ) -> None:
        self.sock.sendall(client_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def close(self) -> None:
        self.sock.close()


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """One client frame as bytes (RFC 6455 section 5.2), masked unless told otherwise."""
    head = bytearray([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if mask:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + payload


def check_echo(server: Running, ws: Any, text: str = "still here") -> None:
    ws.send(text)
    assert ws.recv(timeout=5) == text


def check_http(server: Running) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200 ")
    assert body == b"ok"


# -- 1. keep-alive pings and dead peers -----------------------------------------


def test_peer_that_never_answers_pings_is_dropped(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.recording_echo(record), ws_ping_interval=1, ws_ping_timeout=1)
    raw = RawWebSocket(server.port)
    try:
        wait_for(lambda: ("accepted", "/ws") in record, timeout=5)
        # The client now neither reads nor sends: the server's pings go unanswered.
        wait_for(lambda: disconnects(record), timeout=10)
        assert disconnects(record)[0]["code"] == 1006
        assert ws_conns(server, lambda c: c) == []
        raw.sock.settimeout(5)
        opcodes, end = raw.read_to_end()
        assert end in ("eof", "reset")
        # Before being dropped, the silent client was pinged (unless a reset discarded them).
        assert set(opcodes) <= {OP_PING, OP_CLOSE}
        if end == "eof":
            assert OP_PING in opcodes
    finally:
        raw.close()


def test_client_answering_pings_stays_connected(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.recording_echo(record), ws_ping_interval=1, ws_ping_timeout=1)
    # The client sends no pings of its own: only its pongs show it is alive.
    with ws_connect(url(server), open_timeout=5, ping_interval=None) as ws:
        check_echo(server, ws, "first")
        (first_due,) = ws_conns(server, lambda c: c.next_ping)

        def three_pings_sent() -> bool:
            due = ws_conns(server, lambda c: c.next_ping)
            assert due, f"the server dropped a client that answers pings: {record}"
            return due[0] >= first_due + 2.5  # one ping per 1-second tick

        # Three pings later the dead-peer limit (interval + timeout = 2 s) has
        # passed several times over; only the pongs kept the connection.
        wait_for(three_pings_sent, timeout=15)
        assert disconnects(record) == []
        check_echo(server, ws, "after pings")
    wait_for(lambda: disconnects(record), timeout=5)


# -- 2. a client that vanishes mid-message --------------------------------------


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_vanishing_mid_message_disconnects_with_1006(serve: Any, how: str) -> None:
    record: list[Any] = []
    server = serve(ws_apps.recording_echo(record))
    with ws_connect(url(server), open_timeout=5) as bystander:
        raw = RawWebSocket(server.port, "/raw")
        wait_for(lambda: ("accepted", "/raw") in record, timeout=5)
        raw.send_frame(OP_TEXT, b"first half of a ", fin=False)
        wait_for(lambda: any(ws_conns(server, lambda c: bool(c.session.fragments))), timeout=5)
        if how == "reset":
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        wait_for(lambda: disconnects(record), timeout=5)
        assert disconnects(record) == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
        # The server goes on serving: the other WebSocket, a new one, and HTTP.
        check_echo(server, bystander)
        with ws_connect(url(server), open_timeout=5) as fresh:
            check_echo(server, fresh, "new connection")
        check_http(server)


# -- 3. flow control ------------------------------------------------------------


def test_slow_reader_blocks_the_apps_send(serve: Any) -> None:
    total, size = 200, 1 << 20
    sent = [0]
    server = serve(ws_apps.blaster(total, size, sent))
    raw = RawWebSocket(server.port)
    try:
        # The client reads nothing: the transport pauses writing and send() blocks.
        def app_blocked() -> bool:
            states = ws_conns(server, lambda c: (c.write_paused, len(c.gate.waiters)))
            return bool(states) and states[0][0] and states[0][1] > 0

        wait_for(app_blocked, timeout=10)
        blocked_at = server.call(lambda: sent[0])
        (buffered,) = ws_conns(server, lambda c: c.transport.get_write_buffer_size())
        assert blocked_at < total, "every message was sent although the client read nothing"
        assert buffered <= 4 * size, f"{buffered} bytes buffered for a client that reads nothing"
        # Another round trip through the loop: the app is still stuck.
        assert server.call(lambda: sent[0]) < total

        # Now the client reads everything, in order.
        for i in range(total):
            fin, opcode, payload = raw.read_frame()
            assert (fin, opcode, len(payload)) == (True, OP_BINARY, size)
            assert payload[0] == payload[-1] == i % 256
        code, between = raw.read_close()
        assert (code, between) == (1000, [])
        raw.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        assert raw.read_to_end() == ([], "eof")
        assert server.call(lambda: sent[0]) == total
    finally:
        raw.close()


FLOOD_COUNT, FLOOD_MAX_QUEUE = 10_000, 16


def flood_message(i: int) -> str:
    return f"message {i:05d} " + "x" * 48


def flood_while_the_app_waits(serve: Any) -> tuple[int, bool, list[str]]:
    """A client floods messages the app does not receive until a gate opens.

    Returns (messages queued once the server paused reading, whether the socket
    was still being read then, what the app received after the gate opened).
    """
    gate = asyncio.Event()
    received: list[str] = []
    app = ws_apps.gated_receiver(gate, FLOOD_COUNT, received)
    server = serve(app, ws_max_queue=FLOOD_MAX_QUEUE)
    errors: list[BaseException] = []
    with ws_connect(url(server), open_timeout=5, compression=None) as ws:

        def flood() -> None:
            try:
                for i in range(FLOOD_COUNT):
                    ws.send(flood_message(i))
            except BaseException as exc:
                errors.append(exc)

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        try:
            wait_for(lambda: any(ws_conns(server, lambda c: c.session.reading_paused)), timeout=10)
            ((queued, reading),) = ws_conns(
                server, lambda c: (len(c.session.messages), c.transport.is_reading())
            )
            assert received == []
        finally:
            server.call(gate.set)
        wait_for(lambda: len(received) == FLOOD_COUNT, timeout=30)
        flooder.join(10)
        assert not flooder.is_alive()
        assert errors == []
        assert ws.recv(timeout=5) == f"got {FLOOD_COUNT}"
    return queued, reading, received


def test_flooding_client_is_paused_then_fully_delivered_in_order(serve: Any) -> None:
    _, reading, received = flood_while_the_app_waits(serve)
    assert not reading, "the socket was still read while the app received nothing"
    assert received == [flood_message(i) for i in range(FLOOD_COUNT)]


def test_flooding_client_queue_is_bounded_by_ws_max_queue(serve: Any) -> None:
    # The frame parser is fed FEED_SLICE bytes at a time and not at all while the
    # queue is full, so at most one slice's worth of frames (6 bytes is the
    # smallest masked frame) can land beyond ws_max_queue, whatever the flood size.
    from levante.server.websocket import FEED_SLICE

    queued, _, _ = flood_while_the_app_waits(serve)
    bound = FLOOD_MAX_QUEUE + FEED_SLICE // 6
    assert queued <= bound, (
        f"{queued} messages queued for an app that receives nothing "
        f"(ws_max_queue={FLOOD_MAX_QUEUE}, bound {bound})"
    )


# -- 4. protocol errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param({"opcode": OP_TEXT, "payload": b"caf\xc3(\xff"}, 1007, id="invalid-utf8"),
        pytest.param({"opcode": OP_TEXT, "payload": b"hi", "mask": False}, 1002, id="unmasked"),
        pytest.param({"opcode": 0x3, "payload": b"??"}, 1002, id="reserved-opcode"),
        pytest.param({"opcode": OP_TEXT, "payload": b"hi", "rsv": 0b010}, 1002, id="rsv2-set"),
    ],
)
def test_protocol_error_closes_only_that_connection(
    serve: Any, frame: dict[str, Any], code: int
) -> None:
    record: list[Any] = []
    server = serve(ws_apps.recording_echo(record))
    with ws_connect(url(server), open_timeout=5) as bystander:
        check_echo(server, bystander, "before")
        raw = RawWebSocket(server.port, "/bad")
        try:
            raw.send_frame(frame.pop("opcode"), frame.pop("payload"), **frame)
            try:
                received, before = raw.read_close()
            except (EOFError, ConnectionResetError) as exc:
                pytest.fail(f"the server closed the TCP connection without a close frame: {exc!r}")
            assert (received, before) == (code, [])
            # The server closes the TCP connection after its close frame.
            raw.sock.settimeout(5)
            opcodes, _ = raw.read_to_end()
            assert opcodes == []
        finally:
            raw.close()
        check_echo(server, bystander, "after")
        wait_for(lambda: len(disconnects(record)) == 1, timeout=5)
        assert disconnects(record)[0]["code"] == code


# -- 4b. frame boundaries: whatever way the bytes arrive, every message is whole ------


def read_data(raw: RawWebSocket) -> tuple[int, bytes]:
    """(opcode, payload) of the next data message; pongs are skipped."""
    while True:
        fin, opcode, payload = raw.read_frame()
        if opcode != OP_PONG:
            assert fin, "the server fragmented a message"
            return opcode, payload


def expect_pong(raw: RawWebSocket, payload: bytes) -> None:
    """The next frame is the pong to `payload`: the server has read all sent before it."""
    _, opcode, data = raw.read_frame()
    assert (opcode, data) == (OP_PONG, payload)


@pytest.mark.parametrize("size", [5, 125, 126, 300, 65535, 65536, 200_000])
@pytest.mark.parametrize("cut", [1, 2, 3, 7, 11], ids=lambda c: f"cut{c}")
def test_a_frame_split_anywhere_is_echoed_whole(serve: Any, size: int, cut: int) -> None:
    # A ping and the first `cut` bytes of a text frame go in one write; the pong
    # proves the server read them before the rest of the frame arrives.
    server = serve(ws_apps.recording_echo([]))
    raw = RawWebSocket(server.port)
    try:
        text = ("é" * size)[: size // 2] + "x" * (size - 2 * (size // 2))
        data = client_frame(OP_TEXT, text.encode())
        raw.sock.sendall(client_frame(OP_PING, b"p") + data[:cut])
        expect_pong(raw, b"p")
        raw.sock.sendall(data[cut:])
        assert read_data(raw) == (OP_TEXT, text.encode())
        raw.send_frame(OP_BINARY, b"\x00after")
        assert read_data(raw) == (OP_BINARY, b"\x00after")
    finally:
        raw.close()


def test_many_frames_in_one_write_are_echoed_in_order(serve: Any) -> None:
    server = serve(ws_apps.recording_echo([]))
    raw = RawWebSocket(server.port)
    try:
        messages = [(OP_TEXT if i % 2 else OP_BINARY, b"m%d" % i * (i * 37)) for i in range(40)]
        raw.sock.sendall(b"".join(client_frame(op, payload) for op, payload in messages))
        assert [read_data(raw) for _ in messages] == messages
    finally:
        raw.close()


def test_fragmented_message_with_a_ping_inside_then_whole_messages(serve: Any) -> None:
    server = serve(ws_apps.recording_echo([]))
    raw = RawWebSocket(server.port)
    try:
        raw.sock.sendall(
            client_frame(OP_TEXT, b"one ", fin=False)
            + client_frame(OP_PING, b"mid")
            + client_frame(OP_CONT, b"two ", fin=False)
        )
        expect_pong(raw, b"mid")
        raw.sock.sendall(
            client_frame(OP_CONT, b"three")
            + client_frame(OP_TEXT, b"next")
            + client_frame(OP_BINARY, b"\xff" * 70_000)
        )
        assert read_data(raw) == (OP_TEXT, b"one two three")
        assert read_data(raw) == (OP_TEXT, b"next")
        assert read_data(raw) == (OP_BINARY, b"\xff" * 70_000)
    finally:
        raw.close()


def test_invalid_utf8_split_across_reads_closes_with_1007(serve: Any) -> None:
    server = serve(ws_apps.recording_echo([]))
    raw = RawWebSocket(server.port)
    try:
        data = client_frame(OP_TEXT, b"ok" * 40 + b"\xc3(")
        raw.sock.sendall(client_frame(OP_PING, b"p") + data[:20])
        expect_pong(raw, b"p")
        raw.sock.sendall(data[20:])
        assert raw.read_close() == (1007, [])
    finally:
        raw.close()


def test_text_frame_over_the_size_limit_closes_with_1009(serve: Any) -> None:
    server = serve(ws_apps.recording_echo([]), ws_max_size=1000)
    raw = RawWebSocket(server.port)
    try:
        raw.send_frame(OP_TEXT, b"a" * 1000)
        assert read_data(raw) == (OP_TEXT, b"a" * 1000)
        raw.send_frame(OP_TEXT, b"a" * 1001)
        assert raw.read_close() == (1009, [])
    finally:
        raw.close()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
def test_app_messages_of_every_length_encoding_reach_the_client(serve: Any, size: int) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": memoryview(b"b" * size)})
        await send({"type": "websocket.send", "text": "t" * size})
        await send({"type": "websocket.close", "code": 1000})

    server = serve(app)
    raw = RawWebSocket(server.port)
    try:
        assert read_data(raw) == (OP_BINARY, b"b" * size)
        assert read_data(raw) == (OP_TEXT, b"t" * size)
        assert raw.read_close() == (1000, [])
    finally:
        raw.close()


# -- 5. graceful shutdown -------------------------------------------------------


def test_shutdown_closes_open_websockets_with_1001(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.recording_echo(record), timeout_graceful_shutdown=10)
    with ws_connect(url(server), open_timeout=5) as ws:
        check_echo(server, ws)
        server.stop(timeout=15)  # the client's background thread completes the close
        assert not server.thread.is_alive()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001
    assert disconnects(record) == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
    ]
    assert server.errors == []


# -- 6. --ws none ---------------------------------------------------------------


def test_ws_none_serves_upgrade_requests_as_http(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.scope_reporter(record), ws="none")
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        status, headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200 ")
    assert body == b"type=http"
    assert b"sec-websocket-accept" not in headers
    assert record == ["http"]
    with pytest.raises(InvalidStatus) as info:
        ws_connect(url(server), open_timeout=5)
    assert info.value.response.status_code == 200


# -- 7. frameworks ------------------------------------------------------------------


def test_fastapi_websocket_endpoint(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.create_fastapi_app(record))
    with ws_connect(url(server), open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "echo: hello"
        ws.send("ünïcode")
        assert ws.recv(timeout=5) == "echo: ünïcode"
        ws.close(code=1000)
    wait_for(lambda: record == [("disconnect", 1000)], timeout=5)

    with pytest.raises(InvalidStatus) as info:
        ws_connect(url(server, "/deny"), open_timeout=5)
    assert info.value.response.status_code == 403

    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200 ")
    assert body == b'{"status":"ok"}'


def test_starlette_websocket_endpoint_and_route(serve: Any) -> None:
    record: list[Any] = []
    server = serve(ws_apps.create_starlette_app(record))
    with ws_connect(url(server, "/endpoint"), open_timeout=5) as ws:
        ws.send("one")
        assert ws.recv(timeout=5) == "endpoint: one"
        ws.send("two")
        assert ws.recv(timeout=5) == "endpoint: two"
        ws.close(code=4002, reason="bye")
    wait_for(lambda: ("endpoint disconnect", 4002) in record, timeout=5)

    with ws_connect(url(server, "/function"), open_timeout=5) as ws:
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=5) == b"\x03\x02\x01"
    wait_for(lambda: len(record) == 2, timeout=5)
    assert record[1][0] in ("function done", "function disconnect")


# -- 8. ASGI messages at the wrong time -------------------------------------------


@pytest.mark.parametrize("kind", ws_apps.MISUSES)
def test_message_at_the_wrong_time_raises_in_the_app(serve: Any, kind: str) -> None:
    record: list[Any] = []
    server = serve(ws_apps.misuser(kind, record))
    if kind == "send_before_accept":
        with pytest.raises(InvalidStatus) as info:
            ws_connect(url(server), open_timeout=5)
        assert info.value.response.status_code == 403
    else:
        with ws_connect(url(server), open_timeout=5) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "done")
    wait_for(lambda: record, timeout=5)
    assert record[0] in ("UnexpectedMessage", "ClientDisconnected"), (
        f"{kind}: the app's send() gave {record[0]!r}"
    )
