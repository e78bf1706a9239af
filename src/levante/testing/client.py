"""`TestClient`: a synchronous httpx client that drives `AppTransport` on a loop thread."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from levante.asgi import ASGIApp
from levante.testing.exchange import expose_debug_info
from levante.testing.lifespan import LifespanManager
from levante.testing.loop import LoopThread
from levante.testing.transport import AppTransport
from levante.testing.websocket import WebSocketChannel, WebSocketTestSession

_WS_SCHEMES = {"http": "ws", "https": "wss"}


class TestClient(httpx.Client):
    """An `httpx.Client` that sends requests to an ASGI 3 app in-process.

    ``with TestClient(app) as client:`` runs the app's lifespan around the block
    (startup on enter, shutdown on exit); without ``with`` requests work too,
    with no lifespan. The app runs on an event loop in a background thread, one
    per entered client, or started on the first request outside ``with`` and
    stopped by `close`.

    Every request goes through `AppTransport`, so responses stream: with
    ``client.stream(...)`` the body arrives as the app sends it, and closing the
    response tells the app the client went away. `timeout` bounds every wait
    for the app, so a hung app fails the test instead of hanging it.

    The client offers the ``http.response.debug`` extension (``response_debug=False``
    turns it off), and what the app sends through it is on the response:
    ``response.template`` and ``response.context`` for a `Jinja2Templates`
    response, as with Starlette's TestClient.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(  # noqa: PLR0917 (positional order is Starlette's TestClient's)
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("testclient", 50000),
        headers: Mapping[str, str] | None = None,
        cookies: httpx.Cookies | dict[str, str] | None = None,
        follow_redirects: bool = True,
        timeout: float = 30.0,
        *,
        response_debug: bool = True,
    ) -> None:
        self.app = app
        #: The lifespan state: startup may fill it; each request scope gets a shallow copy.
        self.app_state: dict[str, Any] = {}
        self.app_transport = AppTransport(
            app,
            raise_server_exceptions=raise_server_exceptions,
            root_path=root_path,
            client=client,
            state=self.app_state,
            timeout=timeout,
            response_debug=response_debug,
        )
        # The loop thread's own guard: wider than any chain of the engine's
        # bounded waits, so it only fires for a loop blocked by synchronous code.
        self._guard = 2 * timeout + self.app_transport.options.close_grace + 5
        self._loops = _LazyLoop(timeout)
        # A client dropped without close() (``TestClient(app).get("/")``) stops its
        # loop thread when collected; `_loops` holds no reference back to the client.
        weakref.finalize(self, self._loops.stop)
        self._lifespan: LifespanManager | None = None
        super().__init__(
            base_url=base_url,
            headers={"user-agent": "testclient", **(headers or {})},
            cookies=cookies,
            follow_redirects=follow_redirects,
            transport=_BlockingTransport(self.app_transport, self._loops.get, self._guard),
        )

    def __enter__(self) -> Self:
        loop = self._loops.get()
        timeout = self.app_transport.options.timeout
        lifespan = LifespanManager(self.app, state=self.app_state, timeout=timeout)
        try:
            loop.run(lifespan.startup(), self._guard)
        except BaseException:
            self._loops.stop(timeout)
            raise
        self._lifespan = lifespan
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        # Unlike httpx.Client, leaving the block does not close the client: it
        # can be entered again (as Starlette's TestClient can).
        lifespan, self._lifespan = self._lifespan, None
        with contextlib.ExitStack() as stack:
            stack.callback(self._loops.stop, self.app_transport.options.timeout)
            if lifespan is not None:
                stack.callback(self._on_loop, lifespan.shutdown)
            stack.callback(self._on_loop, self.app_transport.aclose)

    def close(self) -> None:
        """Close open responses, stop the loop thread and close the client."""
        try:
            self.__exit__()
        finally:
            super().close()

    def _on_loop(self, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        loop = self._loops.current
        if loop is not None and not loop.stopped:
            loop.run(step(), self._guard)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: httpx.QueryParams | Mapping[str, str] | None = None,
    ) -> WebSocketTestSession:
        """A WebSocket session to `url` (relative to `base_url`, scheme http → ws).

        Use it as a context manager: entering connects (and raises
        `WebSocketDisconnect` or `WebSocketDenialResponse` if the app refuses),
        leaving closes the connection and waits for the app.
        """
        handshake = {
            "connection": "upgrade",
            "upgrade": "websocket",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",  # RFC 6455 section 1.3's example
            "sec-websocket-version": "13",
        }
        if subprotocols:
            handshake["sec-websocket-protocol"] = ", ".join(subprotocols)
        request = self.build_request(
            "GET", url, headers={**handshake, **(headers or {})}, params=params
        )
        scheme = _WS_SCHEMES.get(request.url.scheme, request.url.scheme)
        request.url = request.url.copy_with(scheme=scheme)
        channel = WebSocketChannel(request, self.app_transport.options)
        return WebSocketTestSession(channel, self._loops.get, self._guard)


class _LazyLoop:
    # The client's loop thread: started by the first use, replaced after a stop.

    def __init__(self, patience: float) -> None:
        self._patience = patience
        self._lock = threading.Lock()
        self.current: LoopThread | None = None

    def get(self) -> LoopThread:
        with self._lock:
            if self.current is None or self.current.stopped:
                self.current = LoopThread(self._patience)
            return self.current

    def stop(self, wait: float | None = None) -> None:
        with self._lock:
            loop, self.current = self.current, None
        if loop is not None:
            loop.stop(wait)


class _BlockingTransport(httpx.BaseTransport):
    # Drives the async engine from the caller's thread through the loop thread:
    # one copy of the request logic, whether the test is sync or async.

    def __init__(self, engine: AppTransport, loop: Callable[[], LoopThread], guard: float) -> None:
        self._engine = engine
        self._loop = loop
        self._guard = guard

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        loop = self._loop()
        response = loop.run(self._engine.handle_async_request(request), self._guard)
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            stream = _BlockingStream(stream, loop, self._guard)
        copy = httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            request=request,
            extensions=response.extensions,
        )
        return expose_debug_info(copy)


class _BlockingStream(httpx.SyncByteStream):
    # A response body read chunk by chunk from the loop thread.

    def __init__(self, stream: httpx.AsyncByteStream, loop: LoopThread, guard: float) -> None:
        self._stream = stream
        self._loop = loop
        self._guard = guard

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._stream.__aiter__()
        while (chunk := self._loop.run(_next_chunk(chunks), self._guard)) is not None:
            yield chunk

    def close(self) -> None:
        if not self._loop.stopped:
            self._loop.run(self._stream.aclose(), self._guard)


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    # StopAsyncIteration cannot cross the thread boundary: None ends the body.
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
