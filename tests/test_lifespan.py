"""ASGI lifespan: startup failure and its exit code, auto/on/off modes, shutdown, state."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from levante.server import Config, LifespanFailure, Server
from tests.apps.proc import Child

Start = Callable[..., Child]


# -- as a child process: exit codes and logs --------------------------------------


def test_startup_failed_message_exits_with_code_3(start: Start) -> None:
    child = start("tests.apps.lifespans:fail_startup", "--port", "0")
    assert child.finish(timeout=20) == 3
    assert "db down" in child.output
    assert "Levante running on" not in child.output


def test_startup_failure_is_reported_in_on_mode_too(start: Start) -> None:
    child = start("tests.apps.lifespans:fail_startup", "--port", "0", "--lifespan", "on")
    assert child.finish(timeout=20) == 3
    assert "db down" in child.output


def test_app_raising_during_startup_in_on_mode_exits_non_zero(start: Start) -> None:
    child = start("tests.apps.lifespans:raise_on_lifespan", "--port", "0", "--lifespan", "on")
    code = child.finish(timeout=20)
    assert code != 0
    assert "cache init exploded" in child.output
    assert "Levante running on" not in child.output


def test_app_raising_on_lifespan_in_auto_mode_still_serves(start: Start) -> None:
    child = start("tests.apps.lifespans:raise_on_lifespan", "--port", "0", "--lifespan", "auto")
    port = child.port()
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5.0)
    assert response.status_code == 200
    assert response.json()["app"] == "raise_on_lifespan"
    assert "unsupported" in child.output


def test_lifespan_off_never_sends_the_lifespan_scope(start: Start) -> None:
    # With lifespan off, an app that fails startup is never asked to start.
    child = start("tests.apps.lifespans:fail_startup", "--port", "0", "--lifespan", "off")
    port = child.port()
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5.0)
    assert response.status_code == 200
    assert "db down" not in child.output


def test_sigterm_runs_lifespan_shutdown(start: Start, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.marker"
    child = start(
        "tests.apps.lifespans:shutdown_marker",
        "--port",
        "0",
        env={"TEST_SHUTDOWN_MARKER": str(marker)},
    )
    port = child.port()
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5.0).status_code == 200
    assert not marker.exists()
    child.popen.terminate()
    assert child.finish() == 0
    assert marker.read_text() == "shutdown ran\n"
    assert "Application shutdown complete" in child.output


def test_sigint_runs_lifespan_shutdown(start: Start, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.marker"
    child = start(
        "tests.apps.lifespans:shutdown_marker",
        "--port",
        "0",
        env={"TEST_SHUTDOWN_MARKER": str(marker)},
    )
    child.port()
    child.popen.send_signal(signal.SIGINT)
    assert child.finish() == 0
    assert marker.exists()


# -- in process ---------------------------------------------------------------------


def serve_until_started(app: Any, **settings: Any) -> None:
    """Run `Server.serve()` in this thread's own loop; stop it as soon as it listens.

    For apps expected to fail startup: `serve()` raises before listening.
    """
    config = Config.resolve({"port": 0, "access_log": False, **settings}, environ={})
    server = Server(config, app)

    async def main() -> None:
        task = asyncio.ensure_future(server.serve())
        started = asyncio.ensure_future(server.started.wait())
        await asyncio.wait((task, started), return_when=asyncio.FIRST_COMPLETED)
        server.should_exit.set()
        started.cancel()
        await task

    asyncio.run(main())


class Recorder:
    """A lifespan-aware app that records what happened, for in-process tests."""

    def __init__(self, startup_state: dict[str, Any] | None = None) -> None:
        self.events: list[str] = []
        self.startup_state = startup_state or {}
        self.shutdown_done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"].update(self.startup_state)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    self.shutdown_done.set()
                    return
        self.events.append("http")
        state = scope["state"]
        body = repr(sorted(state.items())).encode()
        state["set_by_request"] = True  # must not leak into the next request
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def test_state_set_at_startup_is_visible_to_requests(serve: Any) -> None:
    app = Recorder({"db": "connected", "answer": 42})
    server = serve(app, lifespan="on")
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        for _ in range(2):
            response = client.get("/")
            assert response.status_code == 200
            assert response.text == repr([("answer", 42), ("db", "connected")])


def test_shutdown_runs_after_stop(serve: Any) -> None:
    app = Recorder()
    server = serve(app, lifespan="on")
    assert httpx.get(server.url, timeout=5.0).status_code == 200
    server.stop()
    assert app.shutdown_done.is_set()
    assert app.events == ["lifespan.startup", "http", "lifespan.shutdown"]


def test_lifespan_off_does_not_call_the_app_for_lifespan(serve: Any) -> None:
    app = Recorder()
    server = serve(app, lifespan="off")
    assert httpx.get(server.url, timeout=5.0).status_code == 200
    server.stop()
    assert app.events == ["http"]


def test_startup_failure_raises_lifespan_failure_in_process() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "db down"})

    with pytest.raises(LifespanFailure, match="db down"):
        serve_until_started(app, lifespan="auto")


def test_app_returning_before_startup_in_on_mode_fails() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    with pytest.raises(LifespanFailure, match="returned before completing"):
        serve_until_started(app, lifespan="on")


def test_app_returning_at_once_in_auto_mode_is_served_without_lifespan(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = serve(app, lifespan="auto")
    assert httpx.get(server.url, timeout=5.0).status_code == 204


def test_shutdown_failed_message_does_not_stop_the_server_from_exiting(serve: Any) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await receive()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        seen.append(message["type"])
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})
        await asyncio.sleep(0)

    server = serve(app, lifespan="on")
    assert httpx.get(server.url, timeout=5.0).text == "ok"
    server.stop()
    assert seen == ["lifespan.shutdown"]
    assert not server.thread.is_alive()
