"""HTTPSRedirectMiddleware: http to https, ws to wss, default ports dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from levante.testing import TestClient, WebSocketDenialResponse
from levante.web.middleware import HTTPSRedirectMiddleware
from levante.web.responses import PlainTextResponse


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("secure hello")(scope, receive, send)


def request(method: str, url: str) -> httpx.Response:
    with TestClient(HTTPSRedirectMiddleware(hello), follow_redirects=False) as client:
        return client.request(method, url)


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("http://example.com/a/b?x=1&y=2", "https://example.com/a/b?x=1&y=2"),
        ("http://example.com:80/", "https://example.com/"),
        ("http://example.com:443/", "https://example.com/"),
        ("http://example.com:8080/", "https://example.com:8080/"),
        ("http://[::1]:80/", "https://[::1]/"),
    ],
)
def test_http_is_redirected_to_https(url: str, location: str) -> None:
    response = request("GET", url)
    assert response.status_code == 307
    assert response.headers["location"] == location


def test_redirect_keeps_the_method_with_307() -> None:
    response = request("POST", "http://example.com/form")
    assert response.status_code == 307


def test_https_request_reaches_the_app() -> None:
    response = request("GET", "https://example.com/")
    assert response.status_code == 200
    assert response.text == "secure hello"


def test_ws_handshake_gets_a_redirect_to_wss_when_the_server_can_deny() -> None:
    with TestClient(HTTPSRedirectMiddleware(hello), base_url="http://example.com") as client:
        with pytest.raises(WebSocketDenialResponse) as denial:
            with client.websocket_connect("/chat?room=1"):
                pass
    assert denial.value.status_code == 307
    assert denial.value.headers["location"] == "wss://example.com/chat?room=1"


def test_ws_handshake_is_closed_without_the_denial_extension() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "scheme": "ws", "headers": [(b"host", b"a.b")]}
    asyncio.run(HTTPSRedirectMiddleware(hello)(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
