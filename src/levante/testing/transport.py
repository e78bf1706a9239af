"""`AppTransport`: the one async engine behind `TestClient`, usable with `httpx.AsyncClient`."""

from __future__ import annotations

from typing import Any

import httpx

from levante.asgi import ASGIApp
from levante.testing.exchange import HTTPExchange
from levante.testing.options import AppOptions


class AppTransport(httpx.AsyncBaseTransport):
    """An httpx transport that hands each request to an ASGI 3 app in the current event loop.

    Use it directly in async tests::

        transport = AppTransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/")

    Responses are streamed: `handle_async_request` returns as soon as the app
    sends ``http.response.start``, and body chunks arrive as the app sends them.
    Closing a response makes the app's next ``receive()`` return
    ``http.disconnect``; an app still running ``close_grace`` seconds later is
    cancelled. Every wait for the app is bounded by `timeout` seconds.

    `state` is the lifespan state (see `LifespanManager`); each request scope gets
    a shallow copy. With `raise_server_exceptions`, an exception the app raises
    is re-raised in the test; without it, an app that fails before starting a
    response gives a 500 response. With `response_debug`, the
    ``http.response.debug`` extension is offered (see `TestClient`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        raise_server_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("testclient", 50000),
        state: dict[str, Any] | None = None,
        timeout: float = 30.0,
        close_grace: float = 0.5,
        response_debug: bool = True,
    ) -> None:
        self.options = AppOptions(
            app=app,
            raise_server_exceptions=raise_server_exceptions,
            root_path=root_path,
            client=client,
            state={} if state is None else state,
            timeout=timeout,
            close_grace=close_grace,
            response_debug=response_debug,
        )
        self._open: set[HTTPExchange] = set()

    @property
    def app(self) -> ASGIApp:
        """The ASGI app requests are sent to."""
        return self.options.app

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state dict; request scopes get shallow copies of it."""
        return self.options.state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app for `request`; return once the response has started."""
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"AppTransport serves http and https URLs, not {request.url.scheme!r} "
                "(use TestClient.websocket_connect for WebSockets)",
                request=request,
            )
        exchange = HTTPExchange(request, self.options, on_close=self._open.discard)
        self._open.add(exchange)
        try:
            return await exchange.start()
        except BaseException:
            self._open.discard(exchange)
            raise

    async def aclose(self) -> None:
        """Close every response still open (their apps see http.disconnect)."""
        first_error: BaseException | None = None
        while self._open:
            exchange = self._open.pop()
            try:
                await exchange.aclose()
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
