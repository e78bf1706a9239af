"""HTTP/2 (RFC 9113) and WebSocket over HTTP/2 (RFC 8441) with real clients.

httpx (through h2) over TLS with ALPN and in cleartext with prior knowledge;
a frame-level client built on h2 for trailers, resets, flow control, WebSocket
over HTTP/2 and the attacks the server must survive; h2load for load.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
from websockets.frames import Frame, Opcode

from levante.server import Config
from levante.server.errors import ConfigError
from tests.conftest import Running, connect, read_response, wait_for
from tests.h2raw import (
    BASE_FIELDS,
    END_HEADERS,
    END_STREAM,
    ERROR_TIMEOUT,
    RESPONSE_TIMEOUT,
    ErrorCode,
    FrameType,
    RawH2Connection,
    Setting,
    encode_frame,
    expect_goaway,
    expect_reset,
    expect_response,
    failure,
    ping_frame,
    rst_stream_frame,
    settings_frame,
    window_update_frame,
)

Scope = dict[str, Any]


def echo_app(scopes: list[Scope] | None = None) -> Any:
    """Answers what it was asked: version, method, path, body size and digest."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        if scopes is not None:
            scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept", "subprotocol": "chat"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "bye":
                    await send({"type": "websocket.close", "code": 1000})
                    continue
                await send(
                    {
                        "type": "websocket.send",
                        **{k: v for k, v in message.items() if k in ("text", "bytes")},
                    }
                )
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            body = message.get("body", b"")
            digest.update(body)
            size += len(body)
            if not message.get("more_body"):
                break
        if scope["path"].startswith("/download/"):
            total = int(scope["path"].rsplit("/", 1)[1])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % total)],
                }
            )
            chunk = bytes(range(256)) * 256
            sent = 0
            while sent < total:
                piece = chunk[: total - sent]
                sent += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": sent < total})
            return
        text = (
            f"{scope['http_version']} {scope['method']} {scope['path']} {size} {digest.hexdigest()}"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"x-client-port", str(scope["client"][1]).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text.encode()})

    return app


class H2Client:
    """A frame-level HTTP/2 client on a blocking socket (h2 as the state machine)."""

    def __init__(
        self, port: int, sock: socket.socket | None = None, settings: dict[int, int] | None = None
    ) -> None:
        self.sock = sock or connect(port)
        self.sock.settimeout(5)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0, **(settings or {})},
        )
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        path: str,
        method: str = "GET",
        end: bool = True,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"localhost"),
        ]
        self.conn.send_headers(stream_id, headers + (extra or []), end_stream=end)
        self.flush()
        return stream_id

    def read(
        self, until: Callable[[list[h2.events.Event]], bool], timeout: float = 5.0
    ) -> list[h2.events.Event]:
        deadline = time.monotonic() + timeout
        while not until(self.events):
            if self.closed:
                raise AssertionError(f"connection closed; events: {self.events}")
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"timed out; events: {self.events}") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                continue
            for event in self.conn.receive_data(data):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    with contextlib.suppress(h2.exceptions.StreamClosedError):
                        self.conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
            self.flush()
        return self.events

    def response(self, stream_id: int, timeout: float = 5.0) -> tuple[dict[bytes, bytes], bytes]:
        def ended(events: list[h2.events.Event]) -> bool:
            return any(
                isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
                and e.stream_id == stream_id
                for e in events
            )

        events = self.read(ended, timeout)
        headers: dict[bytes, bytes] = {}
        body = b""
        for event in events:
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                headers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
        return headers, body

    def goaway(self, timeout: float = 5.0) -> h2.events.ConnectionTerminated:
        self.read(
            lambda events: any(isinstance(e, h2.events.ConnectionTerminated) for e in events),
            timeout,
        )
        return next(e for e in self.events if isinstance(e, h2.events.ConnectionTerminated))

    def reset_of(self, stream_id: int) -> h2.events.StreamReset:
        self.read(
            lambda events: any(
                isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id for e in events
            )
        )
        return next(
            e
            for e in self.events
            if isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id
        )

    def close(self) -> None:
        self.sock.close()


def still_serving(port: int) -> None:
    """Another connection is served normally."""
    with httpx.Client(http1=False, http2=True, timeout=5) as client:
        response = client.get(f"http://127.0.0.1:{port}/still")
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"


# -- real clients: httpx ---------------------------------------------------------


def test_httpx_over_tls_negotiates_h2_by_alpn(
    serve: Callable[..., Running], server_files: dict[str, str]
) -> None:
    scopes: list[Scope] = []
    server = serve(
        echo_app(scopes),
        ssl_certfile=server_files["ssl_certfile"],
        ssl_keyfile=server_files["ssl_keyfile"],
    )
    context = ssl.create_default_context(cafile=server_files["ca"])
    with httpx.Client(http2=True, verify=context, timeout=5) as client:
        response = client.post(f"https://localhost:{server.port}/tls?x=1", content=b"hello")
    assert response.http_version == "HTTP/2"
    assert response.text.startswith("2 POST /tls 5 ")
    scope = scopes[0]
    assert scope["http_version"] == "2" and scope["scheme"] == "https"
    assert scope["query_string"] == b"x=1"
    assert "tls" in scope["extensions"]
    names = [name for name, _ in scope["headers"]]
    assert b"host" in names and not any(name.startswith(b":") for name in names)


def test_httpx_h2c_prior_knowledge_and_scope(serve: Callable[..., Running]) -> None:
    scopes: list[Scope] = []
    server = serve(echo_app(scopes))
    with httpx.Client(http1=False, http2=True, timeout=5) as client:
        response = client.get(
            f"{server.url}/a%20b/c?q=1", headers={"cookie": "a=1", "x-thing": "y"}
        )
        assert response.http_version == "HTTP/2"
        assert response.headers["server"] == "levante" and "date" in response.headers
    scope = scopes[0]
    assert scope["http_version"] == "2"
    assert scope["path"] == "/a b/c" and scope["raw_path"] == b"/a%20b/c"
    headers = dict(scope["headers"])
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"x-thing"] == b"y"
    assert scope["extensions"]["http.response.trailers"] == {}


def test_many_parallel_streams_share_one_connection(serve: Callable[..., Running]) -> None:
    release = asyncio.Event()
    arrived: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived.append(scope["client"][1])
        if len(arrived) == 50:
            release.set()
        if scope["path"] != "/0":
            await release.wait()  # the other 49 are in flight at once
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app, h2_max_concurrent_streams=64)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            first = await client.get(f"{server.url}/0")  # the connection, established
            rest = await asyncio.gather(*(client.get(f"{server.url}/{n}") for n in range(1, 50)))
            return [first, *rest]

    responses = asyncio.run(main())
    assert [r.text for r in responses] == [f"/{n}" for n in range(50)]
    assert len(set(arrived)) == 1  # one connection (one client port)


def test_large_upload_and_download(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB, 128 times the stream window
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        response = client.post(f"{server.url}/upload", content=body)
        assert response.text == f"2 POST /upload {len(body)} {hashlib.sha256(body).hexdigest()}"
        download = client.get(f"{server.url}/download/{10 * 1024 * 1024 + 7}")
        assert len(download.content) == 10 * 1024 * 1024 + 7
        assert download.headers["content-length"] == str(10 * 1024 * 1024 + 7)


def test_h2c_upgrade_from_http1(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    sock = connect(server.port)
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    settings = conn.initiate_upgrade_connection()
    sock.sendall(
        b"GET /upgraded HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    sock.sendall(conn.data_to_send())
    client = H2Client.__new__(H2Client)
    client.sock, client.conn, client.events, client.closed = sock, conn, [], False
    if rest:
        client.events.extend(conn.receive_data(rest))
    headers, body = client.response(1)
    assert headers[b":status"] == b"200"
    assert body.startswith(b"2 GET /upgraded 0 ")
    # The connection goes on as HTTP/2.
    stream_id = client.request("/next")
    assert client.response(stream_id)[1].startswith(b"2 GET /next 0 ")
    client.close()


def test_http_h2_only_answers_http1_with_505(serve: Callable[..., Running]) -> None:
    server = serve(echo_app(), http="h2")
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(sock)
        assert status.startswith(b"HTTP/1.1 505")
    still_serving(server.port)


def test_http_h1_does_not_speak_h2(serve: Callable[..., Running]) -> None:
    server = serve(echo_app(), http="h1")
    with httpx.Client(http1=False, http2=True, timeout=5) as client, pytest.raises(httpx.HTTPError):
        client.get(server.url)


# -- frame-level behaviour ---------------------------------------------------------


def test_response_trailers(serve: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"part one ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})

    server = serve(app)
    client = H2Client(server.port)
    stream_id = client.request("/")
    headers, body = client.response(stream_id)
    assert headers[b":status"] == b"200" and body == b"part one part two"
    trailers = [e for e in client.events if isinstance(e, h2.events.TrailersReceived)]
    assert trailers and dict(trailers[0].headers) == {b"x-checksum": b"abc123"}
    client.close()


def test_rst_stream_reaches_the_app_as_http_disconnect(serve: Callable[..., Running]) -> None:
    messages: list[Any] = []
    got = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        messages.append(await receive())  # the request, complete
        messages.append(await receive())  # waits: the client leaves
        got.set()
        with pytest.raises(OSError):
            await send({"type": "http.response.body", "body": b"more", "more_body": True})
        messages.append("send raised")

    server = serve(app)
    client = H2Client(server.port)
    stream_id = client.request("/stream")
    client.read(lambda events: any(isinstance(e, h2.events.DataReceived) for e in events))
    client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    client.flush()
    assert got.wait(5)
    wait_for(lambda: "send raised" in messages, 5)
    assert messages[0]["type"] == "http.request" and messages[1] == {"type": "http.disconnect"}
    # The connection itself goes on.
    stream_id = client.request("/again")
    client.read(
        lambda events: any(
            isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id for e in events
        )
    )
    client.close()


def test_request_flow_control_follows_the_app(serve: Callable[..., Running]) -> None:
    gate = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    server = serve(app)
    client = H2Client(server.port)
    client.read(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
    stream_id = client.request("/upload", method="POST", end=False)
    window = client.conn.local_flow_control_window(stream_id)
    assert window >= 65535
    chunk = b"x" * 16384
    sent = 0
    while client.conn.local_flow_control_window(stream_id) >= len(chunk):
        client.conn.send_data(stream_id, chunk)
        sent += len(chunk)
    client.conn.ping(b"pingpong")
    client.flush()
    # The server has read all of it once it answers the PING; the app has not read:
    # no WINDOW_UPDATE for the stream has come back.
    client.read(lambda events: any(isinstance(e, h2.events.PingAckReceived) for e in events))
    assert not any(
        isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id for e in client.events
    )
    assert client.conn.local_flow_control_window(stream_id) < len(chunk)
    gate.set()  # the app reads: the window reopens
    client.read(
        lambda events: any(
            isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id for e in events
        )
    )
    assert client.conn.local_flow_control_window(stream_id) >= len(chunk)
    client.conn.send_data(stream_id, chunk, end_stream=True)
    client.flush()
    _, body = client.response(stream_id)
    assert body == str(sent + len(chunk)).encode()
    client.close()


def test_response_respects_a_small_client_window(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    client = H2Client(server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    stream_id = client.request("/download/100000")
    headers, body = client.response(stream_id, timeout=10)
    assert headers[b":status"] == b"200" and len(body) == 100000
    client.close()


def test_websocket_over_http2(serve: Callable[..., Running]) -> None:
    scopes: list[Scope] = []
    server = serve(echo_app(scopes))
    client = H2Client(server.port)
    client.read(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
    assert client.conn.remote_settings.enable_connect_protocol == 1
    stream_id = client.request(
        "/ws",
        method="CONNECT",
        end=False,
        extra=[
            (b":protocol", b"websocket"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat"),
        ],
    )
    client.read(lambda events: any(isinstance(e, h2.events.ResponseReceived) for e in events))
    response = next(e for e in client.events if isinstance(e, h2.events.ResponseReceived))
    headers = dict(response.headers)
    assert headers[b":status"] == b"200" and headers[b"sec-websocket-protocol"] == b"chat"
    scope = scopes[0]
    assert (
        scope["type"] == "websocket"
        and scope["http_version"] == "2"
        and scope["subprotocols"] == ["chat"]
    )

    def frames() -> list[Frame]:
        data = b"".join(
            e.data
            for e in client.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )
        found = []
        while len(data) >= 2:
            length = data[1] & 0x7F
            start = 2
            if length == 126:
                length, start = int.from_bytes(data[2:4], "big"), 4
            found.append(Frame(Opcode(data[0] & 0x0F), data[start : start + length]))
            data = data[start + length :]
        return found

    for text in ("hello", "über"):
        client.conn.send_data(stream_id, _masked(Opcode.TEXT, text.encode()))
        client.flush()
    client.conn.send_data(stream_id, _masked(Opcode.BINARY, b"\x00\x01" * 200))
    client.flush()
    client.read(lambda events: len(frames()) >= 3)
    received = frames()
    assert [(f.opcode, f.data) for f in received[:3]] == [
        (Opcode.TEXT, b"hello"),
        (Opcode.TEXT, "über".encode()),
        (Opcode.BINARY, b"\x00\x01" * 200),
    ]
    client.conn.send_data(stream_id, _masked(Opcode.TEXT, b"bye"))
    client.flush()
    client.read(lambda events: any(f.opcode is Opcode.CLOSE for f in frames()))
    client.conn.send_data(
        stream_id, _masked(Opcode.CLOSE, (1000).to_bytes(2, "big")), end_stream=True
    )
    client.flush()
    client.read(
        lambda events: any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in events
        )
    )
    still_serving(server.port)
    client.close()


def _masked(opcode: Opcode, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    head = bytes([0x80 | opcode.value])
    if length < 126:
        head += bytes([0x80 | length])
    else:
        head += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    return head + mask + masked


# -- protections ------------------------------------------------------------------


def test_rapid_reset_gets_goaway(serve: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/still":
            await asyncio.sleep(30)  # slow work the attacker never waits for
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = serve(app, h2_max_reset_streams=50, timeout_graceful_shutdown=1)
    conn = RawH2Connection(server.port)
    burst = b"".join(
        encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, stream_id, conn.request_block())
        + rst_stream_frame(stream_id, ErrorCode.CANCEL)
        for stream_id in range(1, 200, 2)
    )
    conn.send(burst)
    expect_goaway(conn, ErrorCode.ENHANCE_YOUR_CALM)
    conn.close()
    still_serving(server.port)


@pytest.mark.parametrize(
    "fragment",
    [b"", b"\x40\x01a\x01b" * 400],
    ids=["empty-frames", "never-ending-block"],
)
def test_continuation_floods_get_goaway(serve: Callable[..., Running], fragment: bytes) -> None:
    # CVE-2024-27316 and kin: a header block that never ends, in empty CONTINUATION
    # frames (bounded by their count) or in full ones (bounded by --limit-request-head).
    server = serve(echo_app(), limit_request_head=8192)
    conn = RawH2Connection(server.port)
    conn.send(encode_frame(FrameType.HEADERS, 0, 1, conn.request_block()))
    for _ in range(10_000):
        conn.send(encode_frame(FrameType.CONTINUATION, 0, 1, fragment))
        if conn.send_failed:
            break  # the server ended the connection: what is being tested
    expect_goaway(conn, ErrorCode.ENHANCE_YOUR_CALM)
    conn.close()
    still_serving(server.port)


def test_too_large_header_list_is_answered_431(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    client = H2Client(server.port)
    stream_id = client.request("/", extra=[(b"x-big", b"v" * 9000)])
    headers, _ = client.response(stream_id)
    assert headers[b":status"] == b"431"
    stream_id = client.request("/fine")
    assert client.response(stream_id)[0][b":status"] == b"200"
    client.close()


def test_streams_past_the_limit_are_refused(serve: Callable[..., Running]) -> None:
    release = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = serve(app, h2_max_concurrent_streams=3)
    conn = RawH2Connection(server.port)
    assert conn.server_settings[Setting.MAX_CONCURRENT_STREAMS] == 3
    for stream_id in (1, 3, 5, 7):  # a client that ignores the limit
        conn.send_request(stream_id)
    expect_reset(conn, 7, ErrorCode.REFUSED_STREAM)
    release.set()
    for stream_id in (1, 3, 5):
        expect_response(conn, stream_id, b"ok")
    conn.close()


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_control_frame_floods_get_goaway(serve: Callable[..., Running], kind: str) -> None:
    server = serve(echo_app(), h2_max_control_frames=100)
    conn = RawH2Connection(server.port)
    flood = ping_frame(b"12345678") if kind == "ping" else settings_frame()
    conn.send(flood * 500)
    expect_goaway(conn, ErrorCode.ENHANCE_YOUR_CALM)
    conn.close()
    still_serving(server.port)


def test_idle_connection_gets_goaway_and_closes(serve: Callable[..., Running]) -> None:
    server = serve(echo_app(), timeout_keep_alive=1)
    conn = RawH2Connection(server.port)
    expect_goaway(conn, ErrorCode.NO_ERROR)
    conn.read_frames(ERROR_TIMEOUT)  # until the server closes
    assert conn.closed, failure(conn, "the connection closed after GOAWAY")


def test_graceful_shutdown_sends_goaway_and_finishes_streams(serve: Callable[..., Running]) -> None:
    started = threading.Event()
    release = threading.Event()
    told: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            told.append(await receive())  # the server closes it with 1001
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/events":  # waits for the client to leave, as SSE does
            await receive()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
            told.append(await receive())
            return
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    server = serve(app)
    conn = RawH2Connection(server.port)
    conn.send_request(1, "/slow")
    conn.send_request(3, "/events")
    conn.wait_for(lambda: conn.stream(3).body != b"", RESPONSE_TIMEOUT)
    ws = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
    conn.send_request(5, "/ws", "CONNECT", end_stream=False, extra=ws)
    conn.wait_for(lambda: conn.stream(5).status == "200", RESPONSE_TIMEOUT)
    assert started.wait(5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    goaway = expect_goaway(conn, ErrorCode.NO_ERROR)
    assert goaway.last_stream_id == 5  # the last stream it serves
    # Open streams go on: the WebSocket gets close 1001 (and, once the client answers,
    # its app a disconnect), the SSE app is told the client left.
    close_frame = b"\x88"  # FIN + close opcode, unmasked from the server
    conn.wait_for(lambda: conn.stream(5).body.startswith(close_frame), RESPONSE_TIMEOUT)
    assert conn.stream(5).body[2:4] == (1001).to_bytes(2, "big")
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 5, _masked(Opcode.CLOSE, b"\x03\xe9")))
    wait_for(lambda: len(told) == 2, 5)
    assert {"type": "http.disconnect"} in told
    assert any(m.get("code") == 1001 for m in told if m["type"] == "websocket.disconnect")
    release.set()
    expect_response(conn, 1, b"finished")
    stopper.join(10)
    assert not stopper.is_alive()
    conn.close()


# -- load ---------------------------------------------------------------------


def h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        pytest.skip("h2load is missing: scripts/h2load installs it (Debian nghttp2-client)")
    return path


@pytest.mark.parametrize("tls", [False, True])
def test_h2load_many_streams_zero_errors(
    serve: Callable[..., Running], server_files: dict[str, str], tls: bool
) -> None:
    settings = (
        {"ssl_certfile": server_files["ssl_certfile"], "ssl_keyfile": server_files["ssl_keyfile"]}
        if tls
        else {}
    )
    server = serve(echo_app(), **settings)
    scheme = "https" if tls else "http"
    result = subprocess.run(
        [
            h2load(),
            "-n",
            "4000",
            "-c",
            "4",
            "-m",
            "32",
            f"{scheme}://127.0.0.1:{server.port}/load",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "4000 succeeded, 0 failed, 0 errored, 0 timeout" in result.stdout, result.stdout
    assert "status codes: 4000 2xx" in result.stdout
    assert "Application protocol: h2" in result.stdout


def test_h2load_uploads(serve: Callable[..., Running], tmp_path: Any) -> None:
    body = tmp_path / "body"
    body.write_bytes(b"u" * 200_000)
    server = serve(echo_app())
    result = subprocess.run(
        [
            h2load(),
            "-n",
            "200",
            "-c",
            "2",
            "-m",
            "10",
            "-d",
            str(body),
            f"http://127.0.0.1:{server.port}/up",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "200 succeeded, 0 failed, 0 errored, 0 timeout" in result.stdout, result.stdout


def test_app_errors_answer_500_or_reset_only_their_stream(serve: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        if scope["path"] != "/fine":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    server = serve(app)
    client = H2Client(server.port)
    early = client.request("/early")
    headers, body = client.response(early)
    assert headers[b":status"] == b"500" and body == b"Internal Server Error"
    late = client.request("/late")
    assert client.reset_of(late).error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
    fine = client.request("/fine")
    assert client.response(fine)[1] == b"fine"
    client.close()


def test_websocket_over_http2_denial_and_deflate(serve: Callable[..., Running]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/deny":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await receive()

    server = serve(app)
    client = H2Client(server.port)
    client.read(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
    ws = [(b":protocol", b"websocket"), (b"sec-websocket-version", b"13")]
    denied = client.request("/deny", method="CONNECT", end=False, extra=ws)
    headers, _ = client.response(denied)
    assert headers[b":status"] == b"403"
    deflate = [(b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")]
    accepted = client.request("/ok", method="CONNECT", end=False, extra=ws + deflate)
    client.read(
        lambda events: any(
            isinstance(e, h2.events.ResponseReceived) and e.stream_id == accepted for e in events
        )
    )
    response = next(
        e
        for e in client.events
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == accepted
    )
    fields = dict(response.headers)
    assert fields[b":status"] == b"200"
    assert fields[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    assert b"sec-websocket-accept" not in fields and b"upgrade" not in fields
    client.close()


def test_expect_continue_and_cookies(serve: Callable[..., Running]) -> None:
    scopes: list[Scope] = []
    server = serve(echo_app(scopes))
    client = H2Client(server.port)
    stream_id = client.request(
        "/c",
        method="POST",
        end=False,
        extra=[(b"expect", b"100-continue"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
    )
    client.read(
        lambda events: any(isinstance(e, h2.events.InformationalResponseReceived) for e in events)
    )
    client.conn.send_data(stream_id, b"body", end_stream=True)
    client.flush()
    headers, body = client.response(stream_id)
    assert headers[b":status"] == b"200" and body.startswith(b"2 POST /c 4 ")
    assert dict(scopes[0]["headers"])[b"cookie"] == b"a=1; b=2"
    client.close()


@pytest.mark.parametrize(
    "fields",
    [
        [*BASE_FIELDS, ("content-length", "9" * 5000)],  # int() would refuse 5000 digits
        [*BASE_FIELDS[:3], (":authority", "evil\r\nx-injected: 1")],
        [(":method", "GET"), (":scheme", "ht tp"), (":path", "/"), (":authority", "x")],
    ],
    ids=["content-length-digits", "authority-crlf", "scheme"],
)
def test_invalid_field_values_reset_the_stream(
    serve: Callable[..., Running], fields: list[tuple[str, str]]
) -> None:
    server = serve(echo_app())
    conn = RawH2Connection(server.port)
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, conn.encode(fields)))
    expect_reset(conn, 1, ErrorCode.PROTOCOL_ERROR)
    conn.close()


def test_resets_the_client_provokes_count_against_the_limit(serve: Callable[..., Running]) -> None:
    # "MadeYouReset" (CVE-2025-8671): a WINDOW_UPDATE of 0 makes the server reset the
    # stream, leaving its app call running; such resets count like the client's own.
    running = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/slow":
            running.append(1)
            await asyncio.sleep(30)

    server = serve(app, h2_max_reset_streams=20, timeout_graceful_shutdown=1)
    conn = RawH2Connection(server.port)
    burst = b"".join(
        encode_frame(
            FrameType.HEADERS, END_HEADERS | END_STREAM, stream_id, conn.request_block("/slow")
        )
        + window_update_frame(stream_id, 0)
        for stream_id in range(1, 200, 2)
    )
    conn.send(burst)
    expect_goaway(conn, ErrorCode.ENHANCE_YOUR_CALM)
    assert len(running) <= 21
    conn.close()


def test_streams_opened_after_goaway_are_ignored_not_fatal(serve: Callable[..., Running]) -> None:
    started = threading.Event()
    release = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first"})

    server = serve(app)
    conn = RawH2Connection(server.port)
    conn.send_request(1)
    assert started.wait(5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    expect_goaway(conn, ErrorCode.NO_ERROR)
    # Sent before the client read the GOAWAY: a new stream with a body.
    conn.send_request(3, end_stream=False)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 3, b"hi"))
    release.set()
    expect_response(conn, 1, b"first")
    goaways = [frame for frame in conn.received if frame.type == FrameType.GOAWAY]
    assert [frame.last_stream_id for frame in goaways] == [1], failure(conn, "one GOAWAY(1)")
    stopper.join(10)
    conn.close()


def test_prior_knowledge_after_a_proxy_protocol_header(serve: Callable[..., Running]) -> None:
    scopes: list[Scope] = []
    server = serve(echo_app(scopes), proxy_protocol=True)
    sock = connect(server.port)
    sock.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n")
    client = H2Client(server.port, sock=sock)
    stream_id = client.request("/behind-proxy")
    headers, body = client.response(stream_id)
    assert headers[b":status"] == b"200" and body.startswith(b"2 GET /behind-proxy 0 ")
    assert scopes[0]["client"] == ("192.0.2.1", 56324)
    client.close()


def test_http_h2_with_the_proxy_protocol_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="--proxy-protocol with --http h2"):
        Config(http="h2", proxy_protocol=True)
