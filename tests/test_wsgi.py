"""A Flask app served through `--interface wsgi` (and detected by `auto`): a GET,
a POST form, a streamed response, a large body both ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from levante.server.interface import detect
from tests.apps.proc import Child, free_port

APP = "tests.apps.thirdparty.flask_app:app"


@pytest.fixture(params=["wsgi", "auto"])
def flask_server(request: pytest.FixtureRequest, start: Callable[..., Child]) -> str:
    port = free_port()
    child = start(APP, "--interface", request.param, "--port", str(port), "--no-access-log")
    child.wait_line("Levante running on")
    return f"http://127.0.0.1:{port}"


def test_get(flask_server: str) -> None:
    response = httpx.get(flask_server + "/?name=levante", timeout=10)
    assert response.json() == {"hello": "levante"}


def test_post_form(flask_server: str) -> None:
    response = httpx.post(
        flask_server + "/form", data={"name": "ana", "tag": ["a", "b"]}, timeout=10
    )
    assert response.json() == {
        "name": "ana",
        "tags": ["a", "b"],
    }


def test_streamed_response_arrives_in_parts(flask_server: str) -> None:
    with httpx.stream("GET", flask_server + "/stream?count=50", timeout=10) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        lines = list(response.iter_lines())
    assert lines == [f"part {n}" for n in range(50)]


def test_large_bodies_both_ways(flask_server: str) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    response = httpx.post(flask_server + "/echo", content=body, timeout=30)
    assert response.content == body


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (lambda environ, start_response: [], "wsgi"),
        (lambda scope, receive, send: None, "asgi3"),
    ],
)
def test_the_interface_is_detected_from_the_signature(app: Any, interface: str) -> None:
    assert detect(app) == interface


def test_an_async_callable_object_is_asgi() -> None:
    class App:
        async def __call__(self, environ: Any, start_response: Any) -> None:
            return None

    assert detect(App()) == "asgi3"


def test_a_hung_wsgi_call_does_not_keep_the_process_alive(
    start: Callable[..., Child], tmp_path: Any
) -> None:
    import threading
    import time

    port = free_port()
    child = start(
        APP,
        "--interface",
        "wsgi",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "1",
        env={"LEVANTE_TEST_MARKS": str(tmp_path)},
    )
    child.wait_line("Levante running on")
    caller = threading.Thread(
        target=lambda: _ignore(lambda: httpx.get(f"http://127.0.0.1:{port}/hang", timeout=60))
    )
    caller.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / "hanging").exists():
        assert time.monotonic() < deadline, "the hanging call never started"
        time.sleep(0.05)
    child.popen.terminate()
    assert child.finish(30) == 0
    assert "Threads still running after shutdown" in child.output
    caller.join(30)


def _ignore(call: Callable[[], Any]) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        call()
