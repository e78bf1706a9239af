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
from hyperframe.frame import ContinuationFrame, HeadersFrame, RstStreamFrame
from websockets.frames import Frame, Opcode

from levante.server import Config
from levante.server.errors import ConfigError
from tests.conftest import Running, connect, read_response, wait_for

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
    server_loop: list[asyncio.AbstractEventLoop] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived.append(scope["client"][1])
        if len(arrived) == 50:
            release.set()
        await release.wait()  # all 50 are in flight at once
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app, h2_max_concurrent_streams=64)
    server_loop.append(server.loop)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            return await asyncio.gather(*(client.get(f"{server.url}/{n}") for n in range(50)))

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
    read = threading.Event()
    total: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            read.set()
            if not message.get("more_body"):
                break
        total.append(size)
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
    client.flush()
    # The app has not read: no WINDOW_UPDATE for the stream comes back.
    with pytest.raises(AssertionError, match="timed out"):
        client.read(
            lambda events: any(
                isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id for e in events
            ),
            timeout=0.5,
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


def test_malformed_requests_reset_the_stream_only(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    client = H2Client(server.port)
    bad = [
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x")],  # no :path
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"connection", b"close")],
        [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b"x-a", b"1"),
            (b":authority", b"x"),
        ],
    ]
    encoder = client.conn.encoder
    for fields in bad:
        stream_id = client.conn.get_next_available_stream_id()
        block = encoder.encode(fields)
        frame_ = HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"])
        client.sock.sendall(frame_.serialize())
        client.conn.highest_outbound_stream_id = stream_id
        raw = _read_frames(client.sock, lambda frames: any(f[0] == 3 for f in frames))
        rst = next(f for f in raw if f[0] == 3)
        assert rst[2] == stream_id
        assert int.from_bytes(rst[3], "big") == h2.errors.ErrorCodes.PROTOCOL_ERROR
    client.close()
    still_serving(server.port)


def _read_frames(
    sock: socket.socket,
    until: Callable[[list[tuple[int, int, int, bytes]]], bool],
    timeout: float = 5.0,
) -> list[tuple[int, int, int, bytes]]:
    """Raw frames (type, flags, stream id, payload) until `until` holds or the peer closes."""
    frames: list[tuple[int, int, int, bytes]] = []
    data = b""
    deadline = time.monotonic() + timeout
    while not until(frames):
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"timed out; frames: {frames}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if len(data) < 9 + length:
                break
            frames.append(
                (
                    data[3],
                    data[4],
                    int.from_bytes(data[5:9], "big") & 0x7FFFFFFF,
                    data[9 : 9 + length],
                )
            )
            data = data[9 + length :]
    return frames


def raw_connection(port: int) -> socket.socket:
    """A socket past the HTTP/2 preface and an empty SETTINGS frame."""
    sock = connect(port)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    return sock


def goaway_code(frames: list[tuple[int, int, int, bytes]]) -> int | None:
    for kind, _, _, payload in frames:
        if kind == 7:
            return int.from_bytes(payload[4:8], "big")
    return None


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
    client = H2Client(server.port)
    encoder = client.conn.encoder
    block = encoder.encode(
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")]
    )
    burst = b""
    for n in range(100):
        stream_id = 1 + 2 * n
        burst += HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
        burst += RstStreamFrame(stream_id, error_code=8).serialize()
    with client.sock:
        client.sock.sendall(burst)
        frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    still_serving(server.port)


def test_continuation_flood_gets_goaway(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    client = H2Client(server.port)
    block = client.conn.encoder.encode(
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")]
    )
    with client.sock:
        client.sock.sendall(HeadersFrame(1, block).serialize())
        frames: list[tuple[int, int, int, bytes]] = []
        try:
            for _ in range(10_000):  # empty CONTINUATION frames, never END_HEADERS
                client.sock.sendall(ContinuationFrame(1, b"").serialize())
        except OSError:
            pass  # the server closed the connection: what is being tested
        frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    still_serving(server.port)


def test_continuation_flood_of_bytes_gets_goaway(serve: Callable[..., Running]) -> None:
    server = serve(echo_app(), limit_request_head=8192)
    client = H2Client(server.port)
    with client.sock:
        client.sock.sendall(HeadersFrame(1, b"").serialize())
        try:
            for _ in range(100):
                client.sock.sendall(ContinuationFrame(1, b"\x40\x01a\x01b" * 400).serialize())
        except OSError:
            pass
        frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
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
    client = H2Client(server.port)
    client.read(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
    assert client.conn.remote_settings.max_concurrent_streams == 3
    # A client that ignores the limit: four requests, written as raw frames.
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")]
    block = client.conn.encoder.encode(fields)
    for stream_id in (1, 3, 5, 7):
        client.sock.sendall(
            HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
        )

    def answered(frames: list[tuple[int, int, int, bytes]]) -> bool:
        return sum(1 for kind, flags, _, _ in frames if kind == 0 and flags & 1) == 3

    frames = _read_frames(client.sock, lambda frames: any(f[0] == 3 for f in frames))
    rst = next(f for f in frames if f[0] == 3)
    assert rst[2] == 7 and int.from_bytes(rst[3], "big") == h2.errors.ErrorCodes.REFUSED_STREAM
    release.set()
    frames = _read_frames(client.sock, answered)
    assert sorted(sid for kind, flags, sid, _ in frames if kind == 0 and flags & 1) == [1, 3, 5]
    client.close()


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_control_frame_floods_get_goaway(serve: Callable[..., Running], kind: str) -> None:
    server = serve(echo_app(), h2_max_control_frames=100)
    sock = raw_connection(server.port)
    if kind == "ping":
        flood = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
    else:
        flood = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    with sock:
        with contextlib.suppress(OSError):
            sock.sendall(flood * 500)
        frames = _read_frames(sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    still_serving(server.port)


def test_protocol_errors_end_the_connection_with_goaway(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    codes = h2.errors.ErrorCodes
    cases = [
        # DATA on an idle stream
        (b"\x00\x00\x04\x00\x00\x00\x00\x00\x01abcd", codes.PROTOCOL_ERROR),
        # SETTINGS of 5 octets
        (b"\x00\x00\x05\x04\x00\x00\x00\x00\x00abcde", codes.FRAME_SIZE_ERROR),
        # WINDOW_UPDATE of 0 on the connection
        (b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00", codes.PROTOCOL_ERROR),
        # a frame over MAX_FRAME_SIZE
        (b"\x00\x40\x01\x00\x00\x00\x00\x00\x01" + b"x" * 16385, codes.FRAME_SIZE_ERROR),
        # CONTINUATION with no header block
        (b"\x00\x00\x00\x09\x04\x00\x00\x00\x01", codes.PROTOCOL_ERROR),
        # PUSH_PROMISE from a client
        (b"\x00\x00\x04\x05\x04\x00\x00\x00\x01\x00\x00\x00\x02", codes.PROTOCOL_ERROR),
        # HEADERS on an even stream id
        (b"\x00\x00\x01\x01\x05\x00\x00\x00\x02\x82", codes.PROTOCOL_ERROR),
    ]
    for data, code in cases:
        with raw_connection(server.port) as sock:
            sock.sendall(data)
            frames = _read_frames(sock, lambda frames: goaway_code(frames) is not None)
            assert goaway_code(frames) == code, data[:9]
    still_serving(server.port)


def test_hpack_garbage_is_a_compression_error(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    with raw_connection(server.port) as sock:
        sock.sendall(HeadersFrame(1, b"\xff\xff\xff\xff\xff", flags=["END_HEADERS"]).serialize())
        frames = _read_frames(sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.COMPRESSION_ERROR
    still_serving(server.port)


def test_idle_connection_gets_goaway_and_closes(serve: Callable[..., Running]) -> None:
    server = serve(echo_app(), timeout_keep_alive=1)
    with raw_connection(server.port) as sock:
        frames = _read_frames(sock, lambda frames: False, timeout=8)
    assert goaway_code(frames) == h2.errors.ErrorCodes.NO_ERROR


def test_graceful_shutdown_sends_goaway_and_finishes_streams(serve: Callable[..., Running]) -> None:
    started = threading.Event()
    release = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    server = serve(app)
    client = H2Client(server.port)
    stream_id = client.request("/slow")
    assert started.wait(5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    goaway = next(payload for kind, _, _, payload in frames if kind == 7)
    assert int.from_bytes(goaway[:4], "big") == stream_id  # the last stream it will serve
    assert goaway_code(frames) == h2.errors.ErrorCodes.NO_ERROR
    release.set()

    def ended(frames: list[tuple[int, int, int, bytes]]) -> bool:
        return any(kind == 0 and flags & 1 and sid == stream_id for kind, flags, sid, _ in frames)

    frames = _read_frames(client.sock, ended)
    assert (
        b"".join(p for kind, _, sid, p in frames if kind == 0 and sid == stream_id) == b"finished"
    )
    stopper.join(10)
    assert not stopper.is_alive()
    client.close()


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


def _headers_frame(client: H2Client, stream_id: int, fields: list[tuple[bytes, bytes]]) -> bytes:
    block = client.conn.encoder.encode(fields)
    return HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"]).serialize()


GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")]


@pytest.mark.parametrize(
    "fields",
    [
        [*GET, (b"content-length", b"9" * 5000)],  # int() would refuse 5000 digits
        [*GET[:3], (b":authority", b"evil\r\nx-injected: 1")],
        [(b":method", b"GET"), (b":scheme", b"ht tp"), (b":path", b"/"), (b":authority", b"x")],
    ],
    ids=["content-length-digits", "authority-crlf", "scheme"],
)
def test_invalid_field_values_reset_the_stream(
    serve: Callable[..., Running], fields: list[tuple[bytes, bytes]]
) -> None:
    server = serve(echo_app())
    client = H2Client(server.port)
    client.sock.sendall(_headers_frame(client, 1, fields))
    frames = _read_frames(client.sock, lambda frames: any(f[0] == 3 for f in frames))
    rst = next(f for f in frames if f[0] == 3)
    assert rst[2] == 1 and int.from_bytes(rst[3], "big") == h2.errors.ErrorCodes.PROTOCOL_ERROR
    client.close()
    still_serving(server.port)


def test_resets_the_client_provokes_count_against_the_limit(serve: Callable[..., Running]) -> None:
    # "MadeYouReset" (CVE-2025-8671): a WINDOW_UPDATE of 0 makes the server reset the
    # stream, leaving its app call running; such resets count like the client's own.
    running = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/slow":
            running.append(1)
            await asyncio.sleep(30)

    server = serve(app, h2_max_reset_streams=20, timeout_graceful_shutdown=1)
    client = H2Client(server.port)
    slow = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/slow"),
        (b":authority", b"x"),
    ]
    burst = b""
    for n in range(100):
        stream_id = 1 + 2 * n
        burst += _headers_frame(client, stream_id, slow)
        burst += b"\x00\x00\x04\x08\x00" + stream_id.to_bytes(4, "big") + b"\x00\x00\x00\x00"
    with client.sock:
        with contextlib.suppress(OSError):
            client.sock.sendall(burst)
        frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(running) <= 21


def test_the_preface_must_end_with_settings(serve: Callable[..., Running]) -> None:
    server = serve(echo_app())
    with connect(server.port) as sock:
        sock.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"8" * 8
        )
        frames = _read_frames(sock, lambda frames: goaway_code(frames) is not None)
    assert goaway_code(frames) == h2.errors.ErrorCodes.PROTOCOL_ERROR


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
    client = H2Client(server.port)
    client.sock.sendall(_headers_frame(client, 1, GET))
    assert started.wait(5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    frames = _read_frames(client.sock, lambda frames: goaway_code(frames) is not None)
    # Sent before the client read the GOAWAY: a new stream with a body.
    late = HeadersFrame(3, client.conn.encoder.encode(GET), flags=["END_HEADERS"]).serialize()
    client.sock.sendall(late + b"\x00\x00\x02\x00\x01\x00\x00\x00\x03hi")
    release.set()

    def ended(frames: list[tuple[int, int, int, bytes]]) -> bool:
        return any(kind == 0 and flags & 1 and sid == 1 for kind, flags, sid, _ in frames)

    frames += _read_frames(client.sock, ended)
    assert [int.from_bytes(p[:4], "big") for kind, _, _, p in frames if kind == 7] == [1]
    assert goaway_code(frames) == h2.errors.ErrorCodes.NO_ERROR
    stopper.join(10)
    client.close()


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
