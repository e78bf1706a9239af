"""TrustedHostMiddleware: Host checking, wildcards, the www redirect, WebSockets."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from levante.testing import TestClient, WebSocketDenialResponse
from levante.web.middleware import TrustedHostMiddleware
from levante.web.responses import PlainTextResponse


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await PlainTextResponse("hello")(scope, receive, send)


def get(url: str, allowed_hosts: list[str], **options: Any) -> httpx.Response:
    app = TrustedHostMiddleware(hello, allowed_hosts=allowed_hosts, **options)
    with TestClient(app, follow_redirects=False) as client:
        return client.get(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "http://example.com:8000/",
        "http://EXAMPLE.com/",
        "http://example.com./",  # a fully qualified name's trailing dot
    ],
)
def test_allowed_host_reaches_the_app(url: str) -> None:
    response = get(url, ["example.com"])
    assert response.text == "hello"


def test_other_host_gets_400_invalid_host_header() -> None:
    response = get("http://evil.example/", ["example.com"])
    assert response.status_code == 400
    assert response.text == "Invalid host header"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("a.b.example.com", True),
        ("example.com", False),  # the bare domain needs its own entry
        ("evil-example.com", False),
        ("example.com.evil.example", False),
    ],
)
def test_wildcard_matches_subdomains_only(host: str, allowed: bool) -> None:
    response = get(f"http://{host}/", ["*.example.com"], www_redirect=False)
    assert (response.status_code == 200) is allowed


def test_star_allows_any_host() -> None:
    assert get("http://anything.example/", ["*"]).status_code == 200


def test_ipv6_literal_host_is_matched_without_its_port() -> None:
    assert get("http://[::1]:8000/", ["[::1]"]).status_code == 200


def test_bare_domain_is_redirected_to_allowed_www_host() -> None:
    response = get("http://example.com:8000/path?q=1", ["www.example.com"])
    assert response.status_code == 307
    assert response.headers["location"] == "http://www.example.com:8000/path?q=1"


def test_www_redirect_can_be_turned_off() -> None:
    response = get("http://example.com/", ["www.example.com"], www_redirect=False)
    assert response.status_code == 400


def test_request_without_host_header_is_refused() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "scheme": "http"}
    asyncio.run(TrustedHostMiddleware(hello, ["example.com"])(scope, receive, send))
    assert sent[0]["status"] == 400


def test_websocket_to_other_host_is_denied_with_400_when_the_server_can() -> None:
    app = TrustedHostMiddleware(hello, allowed_hosts=["example.com"])
    with TestClient(app, base_url="http://evil.example") as client:
        with pytest.raises(WebSocketDenialResponse) as denial:
            with client.websocket_connect("/"):
                pass
    assert denial.value.status_code == 400


def test_websocket_to_other_host_is_closed_without_the_denial_extension() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/",
        "scheme": "ws",
        "headers": [(b"host", b"evil.example")],
        "extensions": {},
    }
    asyncio.run(TrustedHostMiddleware(hello, ["example.com"])(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


def test_websocket_to_allowed_host_is_accepted() -> None:
    app = TrustedHostMiddleware(hello, allowed_hosts=["example.com"])
    with (
        TestClient(app, base_url="http://example.com") as client,
        client.websocket_connect("/") as ws,
    ):
        assert ws.receive()["type"] == "websocket.close"


@pytest.mark.parametrize("pattern", ["example.*", "*example.com", "a.*.example.com"])
def test_misplaced_wildcard_is_a_configuration_error(pattern: str) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        TrustedHostMiddleware(hello, allowed_hosts=[pattern])


def test_www_redirect_needs_the_www_host_named_not_a_wildcard() -> None:
    app = TrustedHostMiddleware(hello, allowed_hosts=["*.api.example.com"])
    with TestClient(app, base_url="http://api.example.com") as client:
        response = client.get("/", follow_redirects=False)
    assert response.status_code == 400
