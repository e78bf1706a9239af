"""The thread pool that runs `def` handlers: its bound, and the event loop staying free.

Handlers wait on events and counters, never on sleeps; every wait is bounded so
a broken pool fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from levante.testing import TestClient
from levante.web import App
from levante.web.concurrency import DEFAULT_THREAD_LIMIT, set_thread_limit, thread_limit

WAIT = 10.0  # seconds: the bound on every wait below


@pytest.fixture
def set_limit() -> Iterator[Callable[[int], None]]:
    previous = thread_limit()
    try:
        yield set_thread_limit
    finally:
        set_thread_limit(previous)


class Gate:
    """Holds `def` handlers until opened; counts those inside and the peak."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.inside = 0
        self.peak = 0
        self.opened = threading.Event()

    def enter(self) -> bool:
        with self._changed:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self._changed.notify_all()
        try:
            return self.opened.wait(WAIT)
        finally:
            with self._changed:
                self.inside -= 1

    def wait_inside(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.inside >= count, WAIT)


class Arrivals:
    """An ASGI wrapper counting requests as the event loop takes them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._changed = threading.Condition()
        self.count = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/work":
            with self._changed:
                self.count += 1
                self._changed.notify_all()
        await self.app(scope, receive, send)

    def wait_for(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count == count, WAIT)


def gated_app(gate: Gate) -> App:
    app = App()

    @app.get("/work")
    def work() -> bool:
        return gate.enter()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    return app


def test_the_default_limit_is_40_threads_as_anyio():
    assert DEFAULT_THREAD_LIMIT == 40


def test_thread_limit_reports_what_set_thread_limit_set(set_limit):
    set_limit(3)
    assert thread_limit() == 3


def test_a_limit_below_one_is_refused(set_limit):
    with pytest.raises(ValueError, match="at least 1"):
        set_limit(0)


def test_no_more_def_handlers_run_at_once_than_the_limit(set_limit):
    set_limit(2)
    gate = Gate()
    app = Arrivals(gated_app(gate))
    with TestClient(app) as client, ThreadPoolExecutor(5) as callers:
        try:
            pending = [callers.submit(client.get, "/work") for _ in range(5)]
            assert gate.wait_inside(2)
            assert app.wait_for(5)
            # The loop hands each request to the pool in the step that counted it,
            # so once /ping is answered all five are in the pool: two run, three wait.
            assert client.get("/ping").json() == "pong"
            assert gate.inside == 2
        finally:
            gate.opened.set()
        responses = [future.result(WAIT) for future in pending]
    assert [response.json() for response in responses] == [True] * 5
    assert gate.peak == 2


def test_an_async_route_answers_while_every_thread_is_busy(set_limit):
    set_limit(1)
    gate = Gate()
    with TestClient(gated_app(gate)) as client, ThreadPoolExecutor(1) as callers:
        try:
            blocked = callers.submit(client.get, "/work")
            assert gate.wait_inside(1)
            response = client.get("/ping")
            assert (response.status_code, response.json()) == (200, "pong")
            assert not blocked.done()
        finally:
            gate.opened.set()
        assert blocked.result(WAIT).json() is True
