"""The ``Server-Timing`` response header (W3C Server Timing), which browsers show
in their developer tools' network panel.

`ServerTimingMiddleware` reports how long the app took to start its response;
handlers add their own metrics with `add_server_timing` or `server_timing`::

    with server_timing("db", "orders query"):
        rows = await fetch_orders()

Timings tell a client about the server's internals; enable the middleware where
that is acceptable (development, internal services).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.middleware._asgi import response_headers

#: The metric names Server-Timing allows: an HTTP token (RFC 9110 §5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# The metrics of the current request, in the order added; None outside one.
_metrics: ContextVar[list[str] | None] = ContextVar("server_timing", default=None)


def add_server_timing(
    name: str, duration: float | None = None, description: str | None = None
) -> None:
    """Add a metric to the current response's Server-Timing header.

    `duration` is in milliseconds. Metrics must be added before the response
    starts; outside a request served through `ServerTimingMiddleware` this does
    nothing, so library code may call it freely.
    """
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"Server-Timing metric name {name!r} must be an HTTP token")
    metrics = _metrics.get()
    if metrics is not None:
        metrics.append(format_metric(name, duration, description))


@contextmanager
def server_timing(name: str, description: str | None = None) -> Iterator[None]:
    """Time the ``with`` block and add it as metric `name`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add_server_timing(name, (time.perf_counter() - start) * 1000, description)


def format_metric(name: str, duration: float | None, description: str | None) -> str:
    """One Server-Timing entry: ``name;dur=12.34;desc="text"``."""
    parts = [name]
    if duration is not None:
        parts.append(f"dur={duration:.2f}")
    if description is not None:
        escaped = description.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'desc="{escaped}"')
    return ";".join(parts)


class ServerTimingMiddleware:
    """Add ``Server-Timing: app;dur=<ms>`` to HTTP responses: the time from the
    request reaching this middleware to the app starting its response, with any
    metrics the handler added before it. `clock` is injectable for tests."""

    def __init__(
        self,
        app: ASGIApp,
        metric_name: str = "app",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not _TOKEN.fullmatch(metric_name):
            raise ValueError(f"Server-Timing metric name {metric_name!r} must be an HTTP token")
        self.app = app
        self.metric_name = metric_name
        self.clock = clock

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        metrics: list[str] = []

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (self.clock() - started) * 1000
                entries = [*metrics, format_metric(self.metric_name, elapsed, None)]
                response_headers(message).append("server-timing", ", ".join(entries))
            await send(message)

        reset = _metrics.set(metrics)
        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _metrics.reset(reset)
