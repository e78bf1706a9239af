"""ServerTimingMiddleware and the helpers handlers use to add metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from levante.testing import TestClient
from levante.web.concurrency import run_in_threadpool
from levante.web.middleware import ServerTimingMiddleware, add_server_timing, server_timing
from levante.web.responses import PlainTextResponse


def ticking(*times: float) -> Any:
    """A clock that returns `times` in turn."""
    values: Iterator[float] = iter(times)
    return lambda: next(values)


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("hello")(scope, receive, send)


def server_timing_of(app: Any, **options: Any) -> list[str]:
    with TestClient(ServerTimingMiddleware(app, **options)) as client:
        return client.get("/").headers.get_list("server-timing")


def test_time_to_response_start_is_reported_as_app_duration() -> None:
    assert server_timing_of(hello, clock=ticking(10.0, 10.0125)) == ["app;dur=12.50"]


def test_metric_name_is_configurable() -> None:
    assert server_timing_of(hello, metric_name="total", clock=ticking(0, 0.001)) == [
        "total;dur=1.00"
    ]


def test_handler_metrics_come_before_the_app_metric() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        add_server_timing("db", 4.5, "orders query")
        add_server_timing("cache-miss")
        await hello(scope, receive, send)

    assert server_timing_of(app, clock=ticking(0, 0.01)) == [
        'db;dur=4.50;desc="orders query", cache-miss, app;dur=10.00'
    ]


def test_server_timing_context_manager_times_the_block() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        with server_timing("render"):
            pass
        await hello(scope, receive, send)

    [header] = server_timing_of(app)
    assert header.startswith("render;dur=")
    assert ", app;dur=" in header


def test_metrics_added_in_the_thread_pool_are_kept() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await run_in_threadpool(add_server_timing, "sync", 1.0)
        await hello(scope, receive, send)

    assert server_timing_of(app, clock=ticking(0, 0))[0].startswith("sync;dur=1.00, ")


def test_description_quotes_and_backslashes_are_escaped() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        add_server_timing("q", description='say "hi" \\ bye')
        await hello(scope, receive, send)

    header = server_timing_of(app, clock=ticking(0, 0))[0]
    assert header.startswith('q;desc="say \\"hi\\" \\\\ bye"')


def test_apps_own_server_timing_header_is_kept() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("x", headers={"server-timing": "edge;dur=1"})(scope, receive, send)

    assert server_timing_of(app, clock=ticking(0, 0)) == ["edge;dur=1", "app;dur=0.00"]


def test_adding_a_metric_outside_a_timed_request_does_nothing() -> None:
    add_server_timing("orphan", 1.0)  # no error, nowhere to go


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "caf\u00e9"])
def test_metric_name_must_be_a_token(name: str) -> None:
    with pytest.raises(ValueError, match="must be an HTTP token"):
        add_server_timing(name)
    with pytest.raises(ValueError, match="must be an HTTP token"):
        ServerTimingMiddleware(hello, metric_name=name)


def test_websocket_passes_through_untimed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan support")
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    with TestClient(ServerTimingMiddleware(app)) as client:
        with client.websocket_connect("/") as ws:
            assert ws.extra_headers == []
            ws.receive()
