"""The basics, end to end: a request gets the app's answer."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

import levante.server
from tests.conftest import connect, read_response


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def test_get_answers_with_the_app_body(serve: Any) -> None:
    server = serve(hello)
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "hello"
    assert response.headers["content-length"] == "5"
    assert response.headers["server"] == "levante"
    assert "date" in response.headers


def test_keep_alive_serves_several_requests_on_one_connection(serve: Any) -> None:
    server = serve(hello)
    with connect(server.port) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _headers, body = read_response(sock)
            assert status == b"HTTP/1.1 200 OK"
            assert body == b"hello"


def test_the_build_under_test_is_the_one_asked_for() -> None:
    # scripts/test runs the suite on the source and on the compiled build; this makes
    # sure the compiled run did not quietly import the source (or the reverse).
    expected = os.environ.get("LEVANTE_EXPECT_BUILD")
    if expected is None:
        pytest.skip("LEVANTE_EXPECT_BUILD is set by scripts/test")
    assert levante.server.compiled() == (expected == "compiled")
