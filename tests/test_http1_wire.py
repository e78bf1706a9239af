"""HTTP/1.1 on the wire (RFC 9112): what a client sees through a real loopback socket.

Malformed requests, limits, keep-alive, pipelining, body framing in both directions,
`Expect: 100-continue`, HEAD and no-body statuses, default headers, response splitting,
and property tests that split valid requests into arbitrary TCP writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levante.server.errors import InvalidMessage
from tests.conftest import Running, connect, start_server

# -- raw-socket client --------------------------------------------------------


@dataclass
class Response:
    status_line: bytes
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: The body as it was framed on the wire (chunk sizes included).
    raw_body: bytes

    def header(self, name: bytes) -> bytes | None:
        values = self.values(name)
        assert len(values) <= 1, f"{name!r} appears {len(values)} times"
        return values[0] if values else None

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """A buffered reader over one client socket: responses may arrive back to back."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        sock.settimeout(timeout)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed while waiting for {marker!r}: {self.buf!r}")
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise ConnectionError(f"closed after {len(self.buf)} of {size} bytes")
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def response(self, head_only: bool = False) -> Response:
        """Read one response; `head_only` for the answer to a HEAD request."""
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = []
        for line in lines:
            name, sep, value = line.partition(b":")
            assert sep, f"malformed header line {line!r}"
            assert name == name.strip(), f"whitespace around the field name in {line!r}"
            headers.append((name.lower(), value.strip(b" \t")))
        response = Response(status_line, status, headers, b"", b"")
        te = response.header(b"transfer-encoding")
        if head_only or status < 200 or status in (204, 304):
            return response
        if te is not None:
            assert te == b"chunked", te
            self._read_chunked(response)
        elif (length := response.header(b"content-length")) is not None:
            response.body = response.raw_body = self._exact(int(length))
        else:  # close-delimited
            response.body = response.raw_body = self.read_to_eof()
        return response

    def _read_chunked(self, response: Response) -> None:
        raw = []
        body = []
        while True:
            size_line = self._until(b"\r\n")
            raw.append(size_line + b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while line := self._until(b"\r\n"):  # trailer fields, then a blank line
                    raw.append(line + b"\r\n")
                raw.append(b"\r\n")
                break
            data = self._exact(size)
            crlf = self._exact(2)
            assert crlf == b"\r\n", f"chunk not followed by CRLF: {crlf!r}"
            raw.append(data + crlf)
            body.append(data)
        response.body = b"".join(body)
        response.raw_body = b"".join(raw)

    def read_to_eof(self) -> bytes:
        """Everything until the server closes; a timeout means it did not close."""
        with contextlib.suppress(ConnectionResetError):
            while self._fill():
                pass
        data, self.buf = self.buf, b""
        return data

    def nothing_within(self, seconds: float) -> bool:
        """True if no byte arrives within `seconds` (only to assert an absence)."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        self.buf += data
        return False


@contextlib.contextmanager
def open_wire(port: int, timeout: float = 5.0) -> Iterator[Wire]:
    with connect(port) as sock:
        yield Wire(sock, timeout)


def roundtrip(port: int, data: bytes, count: int = 1) -> list[Response]:
    """Send `data` on a fresh connection and read `count` responses."""
    with open_wire(port) as wire:
        wire.sock.sendall(data)
        return [wire.response() for _ in range(count)]


def assert_serves_fresh_connection(port: int) -> None:
    [response] = roundtrip(port, b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 200
    assert response.json()["path"] == "/alive"


# -- apps -----------------------------------------------------------------------


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what it was given, as JSON; `/slow` takes a moment first."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(0.05)
    body = await read_body(receive)
    seen = {
        "method": scope["method"],
        "http_version": scope["http_version"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def streamer(*parts: bytes, status: int = 200, headers: Any = ()) -> Any:
    """An app that sends `parts` as separate body messages, the last with more_body=False."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for i, part in enumerate(parts):
            more = i < len(parts) - 1
            await send({"type": "http.response.body", "body": part, "more_body": more})

    return app


LIMITS = {
    "limit_request_line": 100,
    "limit_request_fields": 10,
    "limit_request_field_size": 200,
    "limit_request_head": 1000,
    "limit_request_body": 10,
}


@pytest.fixture(scope="module")
def strict() -> Iterator[Running]:
    """The echo app behind small limits, shared by the table-driven tests."""
    running = start_server(echo, timeout_graceful_shutdown=5, **LIMITS)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Running]:
    """The echo app with default limits, shared by many tests and all hypothesis examples."""
    running = start_server(echo, timeout_graceful_shutdown=5)
    yield running
    running.stop()


# -- 1. malformed requests --------------------------------------------------------

H = b"Host: x\r\n"

MALFORMED = [
    # request line
    pytest.param(b"garbage\r\n\r\n", 400, id="garbage-request-line"),
    pytest.param(b"GET /\r\nHost: x\r\n\r\n", 505, id="request-line-without-version"),
    pytest.param(b"GET /\r\n\r\n", 505, id="http-0.9-simple-request"),
    pytest.param(b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, id="http-2.0-request-line"),
    pytest.param(b"get / HTTP/1.1\r\n" + H + b"\r\n", 400, id="lowercase-method"),
    pytest.param(b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400, id="space-in-target"),
    pytest.param(b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400, id="nul-in-target"),
    # field names and lines
    pytest.param(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, id="space-before-colon"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X(y): z\r\n\r\n", 400, id="non-token-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X\x01Y: z\r\n\r\n", 400, id="ctl-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b": z\r\n\r\n", 400, id="empty-field-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400, id="obs-fold"),
    pytest.param(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400, id="whitespace-first-field"),
    # field values
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400, id="ctl-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, id="nul-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400, id="del-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, id="bare-cr-in-value"),
    # Host
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="http-1.1-without-host"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"Host: y\r\n\r\n", 400, id="two-host-fields"),
    pytest.param(b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400, id="two-hosts-http-1.0"),
    # Content-Length
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
        id="duplicate-content-length-different",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nab",
        400,
        id="duplicate-content-length-same",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2, 2\r\n\r\nab",
        400,
        id="content-length-list",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, id="content-length-neg"
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400, id="content-length-abc"
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +1\r\n\r\na", 400, id="content-length-plus"
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
        400,
        id="content-length-overflow",
    ),
    # Transfer-Encoding
    pytest.param(
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        id="transfer-encoding-and-content-length",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nabc",
        400,  # RFC 9112 section 6.3: chunked not last in a request -> 400
        id="transfer-encoding-gzip",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\nabc",
        400,
        id="transfer-encoding-chunked-not-last",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,  # RFC 9112 section 6.1: an unknown coding SHOULD get 501 (h11 does)
        id="transfer-encoding-unknown-coding-then-chunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
        id="chunked-applied-twice",
    ),
    # chunked framing
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        400,
        id="chunk-size-not-hex",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nab\r\n0\r\n\r\n",
        400,
        id="chunk-size-overflow",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
        400,
        id="chunk-data-without-crlf",
    ),
    # limits (see LIMITS)
    pytest.param(
        b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, id="request-line-too-long"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: y\r\n" % i for i in range(20)) + b"\r\n",
        431,
        id="too-many-fields",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + H + b"X-A: " + b"y" * 300 + b"\r\n\r\n", 431, id="field-too-long"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n"
        + H
        + b"".join(b"X-%d: %s\r\n" % (i, b"y" * 150) for i in range(8))
        + b"\r\n",
        431,
        id="head-too-large",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n",
        413,
        id="chunked-body-over-limit",
    ),
    # Expect
    pytest.param(
        b"GET / HTTP/1.1\r\n" + H + b"Expect: something-else\r\n\r\n", 417, id="unknown-expect"
    ),
]


@pytest.mark.parametrize(("request_bytes", "status"), MALFORMED)
def test_malformed_request_is_answered_with_its_status_then_closed(
    strict: Running, request_bytes: bytes, status: int
) -> None:
    with open_wire(strict.port) as wire:
        wire.sock.sendall(request_bytes)
        response = wire.response()
        assert response.status_line.startswith(b"HTTP/1.1 %d " % status), response.status_line
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b"", "bytes after the error response"
    assert_serves_fresh_connection(strict.port)


def test_requests_at_each_limit_are_accepted(strict: Running) -> None:
    at_line_limit = b"/" + b"a" * (LIMITS["limit_request_line"] - 1)
    [response] = roundtrip(strict.port, b"GET " + at_line_limit + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert response.status == 200
    assert response.json()["path"] == at_line_limit.decode()

    fields = b"".join(b"X-%d: y\r\n" % i for i in range(LIMITS["limit_request_fields"] - 1))
    [response] = roundtrip(strict.port, b"GET / HTTP/1.1\r\n" + H + fields + b"\r\n")
    assert response.status == 200
    assert len(response.json()["headers"]) == LIMITS["limit_request_fields"]

    value = b"v" * (LIMITS["limit_request_field_size"] - len(b"X-A"))
    [response] = roundtrip(strict.port, b"GET / HTTP/1.1\r\n" + H + b"X-A: " + value + b"\r\n\r\n")
    assert response.status == 200

    body = b"b" * LIMITS["limit_request_body"]
    [response] = roundtrip(
        strict.port, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n" + body
    )
    assert response.status == 200
    assert response.json()["body"] == body.decode()


def test_http_1_2_is_served_as_http_1_1(strict: Running) -> None:
    # RFC 9110 section 2.5: a higher minor version of a major version the server
    # implements SHOULD be processed as the highest minor version it conforms to.
    with open_wire(strict.port) as wire:
        wire.sock.sendall(b"GET /v HTTP/1.2\r\n" + H + b"\r\n")
        response = wire.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.json()["http_version"] == "1.1"


def test_declared_body_over_limit_is_refused_before_it_is_sent(strict: Running) -> None:
    too_long = LIMITS["limit_request_body"] + 1
    with open_wire(strict.port) as wire:
        # Only the head: the 413 must not wait for a body the server will not take.
        wire.sock.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % too_long)
        response = wire.response()
        assert response.status_line.startswith(b"HTTP/1.1 413 ")
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""
    assert_serves_fresh_connection(strict.port)


@pytest.mark.parametrize(
    ("settings_", "value_size"),
    [
        pytest.param({}, 100 * 1024, id="100KiB-default-limits"),
        pytest.param({"limit_request_head": 1024}, 2048, id="2KiB-over-1KiB-limit-one-write"),
    ],
)
def test_header_line_that_never_ends_gets_431_and_close(
    serve: Any, settings_: dict[str, Any], value_size: int
) -> None:
    # A short header timeout bounds the test if the server waits instead of answering.
    server = serve(echo, timeout_request_header=2, **settings_)
    with open_wire(server.port) as wire:
        with contextlib.suppress(ConnectionError):  # the server may close while we send
            wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * value_size)
        response = wire.response()
        assert response.status_line.startswith(b"HTTP/1.1 431 "), response.status_line
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""
    assert_serves_fresh_connection(server.port)


# -- 2. persistence -----------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(echo_server: Running) -> None:
    with open_wire(echo_server.port) as wire:
        for i in range(4):
            if i % 2:
                body = b"body-%d" % i
                wire.sock.sendall(
                    b"POST /r%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                    % (i, len(body), body)
                )
            else:
                body = b""
                wire.sock.sendall(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            response = wire.response()
            assert response.status == 200
            assert response.header(b"connection") is None
            assert response.json()["path"] == f"/r{i}"
            assert response.json()["body"] == body.decode()


def test_http_1_0_closes_after_the_response_by_default(echo_server: Running) -> None:
    with open_wire(echo_server.port) as wire:
        wire.sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        response = wire.response()
        assert response.status == 200
        assert response.json()["http_version"] == "1.0"
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


def test_http_1_0_keep_alive_is_honoured_and_announced(echo_server: Running) -> None:
    with open_wire(echo_server.port) as wire:
        for path in (b"/one", b"/two"):
            wire.sock.sendall(b"GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % path)
            response = wire.response()
            assert response.status == 200
            assert response.header(b"connection") == b"keep-alive"
            assert response.json()["path"] == path.decode()
        wire.sock.sendall(b"GET /last HTTP/1.0\r\n\r\n")
        response = wire.response()
        assert response.json()["path"] == "/last"
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


def test_connection_close_from_client_is_echoed_and_the_server_closes(
    echo_server: Running,
) -> None:
    with open_wire(echo_server.port) as wire:
        wire.sock.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = wire.response()
        assert response.status == 200
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param(
            b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n",
            id="http-1.1-connection-close",
        ),
        pytest.param(
            b"GET /first HTTP/1.0\r\n\r\nGET /second HTTP/1.0\r\n\r\n", id="http-1.0-default"
        ),
    ],
)
def test_request_that_closes_is_answered_and_later_pipelined_ones_are_not(
    serve: Any, requests: bytes
) -> None:
    # RFC 9112 section 9.6: answer the request carrying "close", then close; the
    # requests after it are not processed. (Own server: a stuck connection here
    # must not hold up the shared one.)
    server = serve(echo, timeout_graceful_shutdown=1)
    with open_wire(server.port, timeout=3) as wire:
        wire.sock.sendall(requests)
        response = wire.response()
        assert response.status == 200
        assert response.json()["path"] == "/first"
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        pytest.param(b"garbage\r\n\r\n", 400, id="garbage"),
        pytest.param(b"GET /second HTTP/1.1\r\n\r\n", 400, id="missing-host"),
        pytest.param(b"GET /second HTTP/1.1\r\nHost: x\r\nExpect: nope\r\n\r\n", 417, id="expect"),
    ],
)
def test_valid_request_then_malformed_one_in_the_same_write_gets_both_answers(
    serve: Any, bad: bytes, status: int
) -> None:
    # The valid request is answered first (in order), then the error, then close.
    server = serve(echo, timeout_graceful_shutdown=1)
    with open_wire(server.port, timeout=3) as wire:
        wire.sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + bad)
        first = wire.response()
        assert first.status == 200
        assert first.json()["path"] == "/first"
        error = wire.response()
        assert error.status_line.startswith(b"HTTP/1.1 %d " % status), error.status_line
        assert error.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


# -- 3. pipelining ----------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(echo_server: Running) -> None:
    requests = (
        b"GET /a?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nbravo"
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\ncha\r\n4\r\nrlie\r\n0\r\n\r\n"
        b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    responses = roundtrip(echo_server.port, requests, count=4)
    seen = [(r.json()["method"], r.json()["path"], r.json()["body"]) for r in responses]
    assert seen == [
        ("GET", "/a", ""),
        ("POST", "/b", "bravo"),
        ("POST", "/c", "charlie"),
        ("GET", "/d", ""),
    ]
    assert all(r.status == 200 for r in responses)


def test_pipelined_answers_stay_in_order_when_the_first_is_slow(echo_server: Running) -> None:
    requests = (
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nslow"
        b"GET /fast1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /fast2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nfast"
    )
    responses = roundtrip(echo_server.port, requests, count=3)
    assert [(r.json()["path"], r.json()["body"]) for r in responses] == [
        ("/slow", "slow"),
        ("/fast1", ""),
        ("/fast2", "fast"),
    ]


# -- 4. chunked bodies ------------------------------------------------------------


def test_chunked_request_with_extensions_and_trailers_reaches_the_app_intact(
    echo_server: Running,
) -> None:
    request = (
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'6;quoted="a b";flag\r\n world\r\n'
        b"0\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    first, second = roundtrip(echo_server.port, request, count=2)
    seen = first.json()
    assert seen["body"] == "hello world"
    names = [name for name, _ in seen["headers"]]
    # RFC 9110 section 6.5.1: trailer fields are not merged into the header section.
    assert names == ["host", "transfer-encoding"]
    assert second.json()["path"] == "/next"


def test_streamed_response_is_chunked_with_exact_framing(serve: Any) -> None:
    server = serve(streamer(b"ab", b"cde", b"fghij"))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = wire.response()
        assert response.header(b"transfer-encoding") == b"chunked"
        assert response.header(b"content-length") is None
        assert response.raw_body == b"2\r\nab\r\n3\r\ncde\r\n5\r\nfghij\r\n0\r\n\r\n"
        assert response.body == b"abcdefghij"
        # The framing ended exactly: the connection serves the next request.
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wire.response().body == b"abcdefghij"


def test_empty_body_message_mid_stream_does_not_end_the_chunked_body(serve: Any) -> None:
    server = serve(streamer(b"ab", b"", b"cd", b""))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = wire.response()
        assert response.header(b"transfer-encoding") == b"chunked"
        assert response.raw_body == b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wire.response().body == b"abcd"


def test_streamed_response_to_http_1_0_is_close_delimited(serve: Any) -> None:
    server = serve(streamer(b"ab", b"cde", b"f"))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = wire.response()  # no length, no chunking: reads to EOF
        assert response.header(b"transfer-encoding") is None
        assert response.header(b"content-length") is None
        assert response.header(b"connection") == b"close"
        assert response.body == b"abcdef"


# -- 5. Content-Length ------------------------------------------------------------


def test_single_body_message_gets_a_content_length(serve: Any) -> None:
    server = serve(streamer(b"hello world"))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = wire.response()
        assert response.values(b"content-length") == [b"11"]
        assert response.header(b"transfer-encoding") is None
        assert response.body == b"hello world"


def test_app_content_length_is_kept_even_when_streaming(serve: Any) -> None:
    server = serve(streamer(b"hello", b" ", b"world", headers=[(b"Content-Length", b"11")]))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = wire.response()
        assert response.values(b"content-length") == [b"11"]
        assert response.header(b"transfer-encoding") is None
        assert response.body == b"hello world"
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wire.response().body == b"hello world"


# -- 6. Expect: 100-continue --------------------------------------------------------

EXPECT_HEAD = (
    b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
)


async def _no_read_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"not reading that"})


def test_100_continue_is_sent_only_when_the_app_reads_the_body(serve: Any) -> None:
    arrived = threading.Event()
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived.set()
        await gate.wait()
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})

    server = serve(app)
    with open_wire(server.port) as wire:
        wire.sock.sendall(EXPECT_HEAD)
        assert arrived.wait(5)
        assert wire.nothing_within(0.3), f"sent before the app read: {wire.buf!r}"
        server.call(gate.set)
        interim = wire.response()
        assert interim.status_line == b"HTTP/1.1 100 Continue"
        assert interim.headers == []
        wire.sock.sendall(b"hello")
        final = wire.response()
        assert final.status == 200
        assert final.body == b"got hello"


def test_app_answering_without_reading_never_sends_100_continue(serve: Any) -> None:
    server = serve(_no_read_app)
    with open_wire(server.port) as wire:
        wire.sock.sendall(EXPECT_HEAD)
        response = wire.response()
        assert response.status_line == b"HTTP/1.1 200 OK"
        assert response.body == b"not reading that"
        # The body was never read, so the connection cannot be reused.
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""


# -- 7. HEAD --------------------------------------------------------------------


def test_head_has_the_get_headers_and_no_body_bytes(serve: Any) -> None:
    server = serve(streamer(b"hello world", headers=[(b"content-type", b"text/plain")]))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = wire.response(head_only=True)
        assert head.status == 200
        assert head.header(b"content-length") == b"11"
        assert head.header(b"content-type") == b"text/plain"
        # The next bytes on the wire are the GET's status line, nothing in between.
        get = wire.response()
        assert get.status_line == b"HTTP/1.1 200 OK"
        assert get.body == b"hello world"


# -- 8. Date and Server --------------------------------------------------------------

IMF_FIXDATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT"
)


def test_date_is_an_imf_fixdate_and_server_names_levante(echo_server: Running) -> None:
    response = httpx.get(echo_server.url + "/")
    assert response.headers["server"] == "levante"
    date = response.headers["date"]
    assert IMF_FIXDATE.fullmatch(date.encode()), date
    parsed = parsedate_to_datetime(date)
    assert parsed.tzinfo is not None
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 3600


def test_server_and_date_headers_can_be_turned_off(serve: Any) -> None:
    no_server = serve(echo, server_header=False)
    response = httpx.get(no_server.url + "/")
    assert "server" not in response.headers
    assert "date" in response.headers

    no_date = serve(echo, date_header=False)
    response = httpx.get(no_date.url + "/")
    assert "date" not in response.headers
    assert response.headers["server"] == "levante"


# -- 9. no-body statuses ---------------------------------------------------------


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize(
    "parts",
    [
        pytest.param((b"should not appear",), id="one-message"),
        pytest.param((b"should ", b"not ", b"appear"), id="streamed"),
    ],
)
def test_no_body_status_carries_no_body_or_transfer_encoding(
    serve: Any, status: int, parts: tuple[bytes, ...]
) -> None:
    server = serve(streamer(*parts, status=status))
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        first = wire.response()
        assert first.status == status
        assert first.header(b"transfer-encoding") is None
        if status == 204:
            # RFC 9110 section 8.6: no Content-Length in a 204.
            assert first.header(b"content-length") is None
        second = wire.response()  # right after the first head: no stray body bytes
        assert second.status_line.startswith(b"HTTP/1.1 %d " % status)
        assert b"appear" not in wire.buf


# -- 10. response splitting --------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        pytest.param((b"x-evil", b"a\r\nset-cookie: pwned=1"), id="crlf-in-value"),
        pytest.param((b"x-evil", b"a\nset-cookie: pwned=1"), id="lf-in-value"),
        pytest.param((b"x-evil", b"a\rset-cookie: pwned=1"), id="cr-in-value"),
        pytest.param((b"set-cookie: pwned=1\r\nx-evil", b"a"), id="crlf-in-name"),
        pytest.param((b"x-evil", b"a\x00set-cookie: pwned=1"), id="nul-in-value"),
    ],
)
def test_header_with_cr_lf_or_nul_is_refused_with_500(serve: Any, header: Any) -> None:
    raised: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [header]})
            await send({"type": "http.response.body", "body": b"injected?"})
        except Exception as exc:
            raised.append(exc)
            raise

    server = serve(app)
    with open_wire(server.port) as wire:
        wire.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = wire.response()
        assert response.status == 500
        assert response.values(b"set-cookie") == []
        assert response.header(b"x-evil") is None
        assert b"injected?" not in response.body
        assert response.header(b"connection") == b"close"
        assert wire.read_to_eof() == b""
    assert len(raised) == 1
    assert isinstance(raised[0], InvalidMessage)


# -- target decoding ----------------------------------------------------------------


def test_percent_escapes_are_decoded_in_path_only(echo_server: Running) -> None:
    [response] = roundtrip(
        echo_server.port,
        b"GET /a%20b/%E2%82%AC/c%2Fd?q=%20x&r=%E2%82%AC+s HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    seen = response.json()
    assert seen["path"] == "/a b/\u20ac/c/d"
    assert seen["raw_path"] == "/a%20b/%E2%82%AC/c%2Fd"
    assert seen["query_string"] == "q=%20x&r=%E2%82%AC+s"


# -- 11. property tests: arbitrary TCP segmentation ------------------------------------

VALID_REQUESTS = {
    "get": (
        b"GET /p/a%20th?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\n"
        b"Accept: */*\r\nX-Custom: some value\r\n\r\n",
        1,
    ),
    "post-content-length": (
        b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz",
        1,
    ),
    "post-chunked": (
        b"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: v\r\n\r\n",
        1,
    ),
    "two-pipelined": (
        b"GET /first?a=b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz",
        2,
    ),
}


def _comparable(response: Response) -> tuple[Any, ...]:
    headers = [(n, v) for n, v in response.headers if n != b"date"]
    return response.status_line, headers, response.raw_body


def _send_split(port: int, data: bytes, cuts: list[int], count: int) -> list[Response]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    with open_wire(port) as wire:
        for start, end in itertools.pairwise(bounds):
            wire.sock.sendall(data[start:end])
        return [wire.response() for _ in range(count)]


def test_unsplit_valid_requests_reach_the_app_as_sent(echo_server: Running) -> None:
    data, _ = VALID_REQUESTS["get"]
    [get] = roundtrip(echo_server.port, data)
    assert get.json() == {
        "method": "GET",
        "http_version": "1.1",
        "path": "/p/a th",
        "raw_path": "/p/a%20th",
        "query_string": "x=1&y=%20",
        "headers": [["host", "example.test"], ["accept", "*/*"], ["x-custom", "some value"]],
        "body": "",
    }
    data, _ = VALID_REQUESTS["post-chunked"]
    [post] = roundtrip(echo_server.port, data)
    assert post.json()["body"] == "Wikipedia in\r\n\r\nchunks."
    data, _ = VALID_REQUESTS["two-pipelined"]
    first, second = roundtrip(echo_server.port, data, count=2)
    assert (first.json()["path"], first.json()["query_string"]) == ("/first", "a=b")
    assert (second.json()["method"], second.json()["body"]) == ("POST", "xyz")


@pytest.mark.parametrize("name", list(VALID_REQUESTS))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_request_split_into_arbitrary_writes_is_seen_as_unsplit(
    echo_server: Running, name: str, data: st.DataObject
) -> None:
    request, count = VALID_REQUESTS[name]
    expected = [_comparable(r) for r in roundtrip(echo_server.port, request, count)]
    cuts = data.draw(
        st.lists(st.integers(min_value=1, max_value=len(request) - 1), min_size=1, max_size=12),
        label="cuts",
    )
    responses = _send_split(echo_server.port, request, cuts, count)
    assert [_comparable(r) for r in responses] == expected
