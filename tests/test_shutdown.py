"""Graceful shutdown and connection timeouts.

Shutdown: requests in flight finish, idle connections close, endless streams
are told the client left, and the graceful timeout bounds everything else.
Timeouts: idle keep-alive connections and slow request heads are closed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.apps.proc import Child
from tests.apps.slow import STARTED
from tests.conftest import Running, connect, read_response, wait_for

Start = Callable[..., Child]

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#: The log line of a shutdown that waits for requests in flight.
DRAINING = "request(s) to finish"


def read_to_eof(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the peer sends until it closes; fails if it is still open after `timeout`."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(
            f"the server kept the connection open for {timeout}s; got {b''.join(chunks)!r}"
        ) from None
    return b"".join(chunks)


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while marker not in buf:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"closed before {marker!r}: {buf!r}")
        buf += data
    return buf


def assert_not_served(port: int) -> None:
    """A new connection is refused, or closed without an answer."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    except ConnectionRefusedError:
        return
    with sock:
        try:
            sock.sendall(GET)
        except OSError:
            return
        data = read_to_eof(sock)
    assert data == b"", f"a new connection was served during shutdown: {data!r}"


class Stopper:
    """Calls `Running.stop()` in a thread, so the test can watch the shutdown."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._stop, daemon=True)
        self.thread.start()

    def _stop(self) -> None:
        try:
            self.running.stop(timeout=90.0)
        except BaseException as exc:
            self.errors.append(exc)

    def join(self, timeout: float) -> None:
        """Wait for the server to stop; if it has not, force it (a second Ctrl+C) and fail."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            running = self.running
            running.loop.call_soon_threadsafe(running.server.handle_exit, signal.SIGINT, None)
            self.thread.join(30)
            raise AssertionError(f"the server had not stopped {timeout}s after stop()")
        assert not self.errors, self.errors
        assert not self.running.thread.is_alive()


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


# -- signals, as a child process ------------------------------------------------


def test_sigterm_lets_the_request_in_flight_finish(start: Start, tmp_path: Path) -> None:
    release = tmp_path / "release"
    child = start(
        "tests.apps.slow:until_released",
        "--port",
        "0",
        "--timeout-graceful-shutdown",
        "60",
        env={"TEST_RELEASE_FILE": str(release)},
    )
    port = child.port()
    result: dict[str, Any] = {}

    def request() -> None:
        try:
            with connect(port, timeout=30.0) as sock:
                sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                result["response"] = read_response(sock, timeout=30.0)
                result["rest"] = read_to_eof(sock)
        except BaseException as exc:
            result["error"] = exc

    client = threading.Thread(target=request, daemon=True)
    client.start()
    child.wait_line(STARTED)
    child.popen.send_signal(signal.SIGTERM)
    child.wait_line(DRAINING)  # logged once the listening socket is closed
    assert_not_served(port)
    release.write_text("go")
    client.join(30)
    assert not client.is_alive()
    assert "error" not in result, result
    status, headers, body = result["response"]
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"finished after release"
    assert headers[b"connection"] == b"close"
    assert result["rest"] == b""  # then the server closed the connection
    # Nothing is left to wait for: the server exits long before the 60 s timeout.
    assert child.finish(timeout=20) == 0
    assert "Cancelling" not in child.output


def test_second_sigint_stops_at_once(start: Start) -> None:
    child = start(
        "tests.apps.slow:never_finishes", "--port", "0", "--timeout-graceful-shutdown", "60"
    )
    port = child.port()
    with connect(port, timeout=30.0) as sock:
        sock.sendall(GET)
        child.wait_line(STARTED)
        child.popen.send_signal(signal.SIGINT)
        child.wait_line(DRAINING)
        child.popen.send_signal(signal.SIGINT)
        assert child.finish(timeout=20) == 0
        assert read_to_eof(sock) == b""  # no answer: the connection was dropped
    assert "Cancelling 1 request(s)" in child.output
    assert "test app: cancelled" in child.output


# -- shutdown, in process ---------------------------------------------------------


def test_idle_keep_alive_connection_is_closed_at_shutdown(serve: Any) -> None:
    server = serve(hello, timeout_graceful_shutdown=60)
    with connect(server.port) as sock:
        sock.sendall(GET)
        status, headers, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert body == b"hello"
        assert b"connection" not in headers  # kept alive
        stopper = Stopper(server)
        assert read_to_eof(sock) == b""
    # An idle connection is nothing to wait for: no need for the 60 s timeout.
    stopper.join(20)


def test_shutdown_with_no_connections_returns(serve: Any) -> None:
    server = serve(hello, timeout_graceful_shutdown=60)
    with connect(server.port) as sock:
        sock.sendall(GET)
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
    Stopper(server).join(20)


def test_endless_stream_is_told_of_the_disconnect_at_shutdown(serve: Any) -> None:
    disconnected = threading.Event()
    messages: list[str] = []

    async def events(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        while True:
            message = await receive()
            messages.append(message["type"])
            if message["type"] == "http.disconnect":
                disconnected.set()
                return

    server = serve(events, timeout_graceful_shutdown=60)
    with connect(server.port) as sock:
        sock.sendall(GET)
        head = read_until(sock, b"data: first\n\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        stopper = Stopper(server)
        assert disconnected.wait(20), "the app was not told the client left"
        stopper.join(20)
        read_to_eof(sock)  # and the stream's connection is closed
    assert messages == ["http.request", "http.disconnect"]


def test_graceful_timeout_bounds_an_app_that_never_finishes(serve: Any) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = serve(stuck, timeout_graceful_shutdown=1)
    with connect(server.port) as sock:
        sock.sendall(GET)
        assert started.wait(10)
        Stopper(server).join(30)
        assert read_to_eof(sock) == b""  # closed without an answer
    assert cancelled.is_set()


def test_no_new_connections_are_served_once_shutdown_began(serve: Any) -> None:
    started = threading.Event()

    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await asyncio.Event().wait()

    server = serve(stuck, timeout_graceful_shutdown=60)
    with connect(server.port) as sock:
        sock.sendall(GET)
        assert started.wait(10)
        stopper = Stopper(server)
        state = server.server.state

        def shutting_down() -> bool:
            # runs in the server's loop: once this is true, the listener is closed
            return bool(server.call(lambda: state.shutting_down))

        wait_for(shutting_down, timeout=10.0)
        assert_not_served(server.port)
        server.loop.call_soon_threadsafe(server.server.handle_exit, signal.SIGINT, None)
        stopper.join(20)


# -- timeouts -----------------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed_after_the_timeout(serve: Any) -> None:
    server = serve(hello, timeout_keep_alive=1)
    with connect(server.port) as sock:
        sock.sendall(GET)
        status, headers, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert body == b"hello"
        assert b"connection" not in headers
        assert read_to_eof(sock, timeout=8.0) == b""


def test_connection_that_never_sends_is_closed_after_the_keep_alive_timeout(
    serve: Any,
) -> None:
    server = serve(hello, timeout_keep_alive=1)
    with connect(server.port) as sock:
        assert read_to_eof(sock, timeout=8.0) == b""


def test_incomplete_request_head_gets_408_and_is_closed(serve: Any) -> None:
    called = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            called.set()
        await hello(scope, receive, send)

    server = serve(app, timeout_request_header=1)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        data = read_to_eof(sock, timeout=8.0)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert b"connection: close" in data.lower()
    assert not called.is_set()


def test_header_timeout_applies_to_the_second_request_on_a_connection(serve: Any) -> None:
    server = serve(hello, timeout_request_header=1, timeout_keep_alive=60)
    with connect(server.port) as sock:
        sock.sendall(GET)
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
        sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n")
        data = read_to_eof(sock, timeout=8.0)
    assert data.startswith(b"HTTP/1.1 408 "), data
