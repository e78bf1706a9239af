"""CORSMiddleware: preflights answered by the middleware, CORS headers on responses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from levante.testing import TestClient
from levante.web.middleware import CORSMiddleware
from levante.web.responses import PlainTextResponse

SITE = "https://site.example"
OTHER = "https://evil.example"


async def hello(scope: Any, receive: Any, send: Any) -> None:
    response = PlainTextResponse(f"{scope['method']} reached the app", headers={"x-data": "1"})
    await response(scope, receive, send)


def call(method: str, headers: dict[str, str], app: Any = hello, **options: Any) -> httpx.Response:
    with TestClient(CORSMiddleware(app, **options)) as client:
        return client.request(method, "/", headers=headers)


def preflight(
    origin: str = SITE, method: str = "PUT", request_headers: str | None = None, **options: Any
) -> httpx.Response:
    headers = {"origin": origin, "access-control-request-method": method}
    if request_headers is not None:
        headers["access-control-request-headers"] = request_headers
    return call("OPTIONS", headers, **options)


def get(origin: str | None = SITE, **options: Any) -> httpx.Response:
    return call("GET", {} if origin is None else {"origin": origin}, **options)


def test_preflight_from_allowed_origin_is_answered_200_by_the_middleware() -> None:
    r = preflight(allow_origins=[SITE], allow_methods=["GET", "PUT"])
    assert r.status_code == 200
    assert r.text == "OK"
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-methods"] == "GET, PUT"
    assert r.headers["access-control-max-age"] == "600"
    assert "Origin" in r.headers["vary"]
    assert "Access-Control-Request-Method" in r.headers["vary"]


def test_preflight_from_other_origin_is_refused_with_400_and_no_grant() -> None:
    r = preflight(origin=OTHER, allow_origins=[SITE], allow_methods=["PUT"])
    assert r.status_code == 400
    assert r.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in r.headers


def test_preflight_for_unlisted_method_is_refused() -> None:
    r = preflight(method="DELETE", allow_origins=[SITE], allow_methods=["GET"])
    assert r.status_code == 400
    assert r.text == "Disallowed CORS method"


def test_preflight_for_a_safelisted_method_passes_even_when_unlisted() -> None:
    # Fetch: a CORS-safelisted method (GET, HEAD, POST) needs no Allow-Methods entry.
    r = preflight(
        method="POST",
        request_headers="x-token",
        allow_origins=[SITE],
        allow_methods=["PUT"],
        allow_headers=["x-token"],
    )
    assert r.status_code == 200


def test_any_method_allowed_by_star_is_echoed() -> None:
    r = preflight(method="PURGE", allow_origins=[SITE], allow_methods=["*"])
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == "PURGE"


def test_preflight_with_unlisted_request_header_is_refused() -> None:
    r = preflight(
        request_headers="x-token, x-other",
        allow_origins=[SITE],
        allow_methods=["PUT"],
        allow_headers=["x-token"],
    )
    assert r.status_code == 400
    assert r.text == "Disallowed CORS headers"


def test_allowed_request_headers_are_granted_case_insensitively() -> None:
    r = preflight(
        request_headers="X-TOKEN, content-type",
        allow_origins=[SITE],
        allow_methods=["PUT"],
        allow_headers=["X-Token"],
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-headers"] == "x-token, content-type"


def test_star_headers_echo_the_requested_ones_including_authorization() -> None:
    # Fetch: "*" never covers Authorization, so the middleware names it explicitly.
    r = preflight(
        request_headers="authorization, x-anything",
        allow_origins=[SITE],
        allow_methods=["PUT"],
        allow_headers=["*"],
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-headers"] == "authorization, x-anything"


def test_preflight_with_credentials_grants_them_and_names_the_origin() -> None:
    r = preflight(allow_origins=["*"], allow_methods=["PUT"], allow_credentials=True)
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true"


def test_preflight_with_star_origin_and_no_credentials_answers_star() -> None:
    r = preflight(allow_origins=["*"], allow_methods=["PUT"])
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


def test_max_age_is_configurable() -> None:
    r = preflight(allow_origins=[SITE], allow_methods=["PUT"], max_age=60)
    assert r.headers["access-control-max-age"] == "60"


def test_private_network_preflight_is_refused_unless_allowed() -> None:
    def private(**options: Any) -> httpx.Response:
        headers = {
            "origin": SITE,
            "access-control-request-method": "PUT",
            "access-control-request-private-network": "true",
        }
        return call("OPTIONS", headers, allow_origins=[SITE], allow_methods=["PUT"], **options)

    assert private().status_code == 400
    allowed = private(allow_private_network=True)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-private-network"] == "true"


def test_options_without_request_method_is_not_a_preflight_and_reaches_the_app() -> None:
    r = call("OPTIONS", {"origin": SITE}, allow_origins=[SITE])
    assert r.text == "OPTIONS reached the app"
    assert r.headers["access-control-allow-origin"] == SITE


def test_simple_request_from_allowed_origin_gets_the_origin_echoed() -> None:
    r = get(allow_origins=[SITE])
    assert r.text == "GET reached the app"
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in r.headers


def test_simple_request_with_star_and_no_credentials_gets_star_without_vary() -> None:
    r = get(allow_origins=["*"])
    assert r.headers["access-control-allow-origin"] == "*"
    assert "vary" not in r.headers


def test_simple_request_with_star_and_credentials_gets_the_origin_and_vary() -> None:
    r = get(allow_origins=["*"], allow_credentials=True)
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["vary"] == "Origin"


def test_simple_request_from_other_origin_gets_no_grant_but_still_varies() -> None:
    r = get(OTHER, allow_origins=[SITE], allow_credentials=True)
    assert r.status_code == 200  # the browser, not the server, withholds the response
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["vary"] == "Origin"


def test_request_without_origin_gets_vary_origin_for_caches() -> None:
    r = get(None, allow_origins=[SITE])
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"


def test_vary_is_appended_to_the_apps_own() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("x", headers={"vary": "Accept"})(scope, receive, send)

    r = call("GET", {"origin": SITE}, app, allow_origins=[SITE])
    assert r.headers["vary"] == "Accept, Origin"


def test_origin_regex_must_match_the_whole_origin() -> None:
    regex = r"https://.*\.site\.example"
    ok = get("https://app.site.example", allow_origin_regex=regex)
    assert ok.headers["access-control-allow-origin"] == "https://app.site.example"
    sneaky = get("https://app.site.example.evil.example", allow_origin_regex=regex)
    assert "access-control-allow-origin" not in sneaky.headers


def test_expose_headers_are_listed() -> None:
    r = get(allow_origins=[SITE], expose_headers=["x-data", "x-more"])
    assert r.headers["access-control-expose-headers"] == "x-data, x-more"


def test_expose_star_with_credentials_names_the_response_headers() -> None:
    # Fetch reads "*" literally on credentialed responses, so it cannot be sent as is.
    r = get(allow_origins=[SITE], allow_credentials=True, expose_headers=["*"])
    exposed = r.headers["access-control-expose-headers"].split(", ")
    assert "x-data" in exposed
    assert "*" not in exposed


def test_websocket_handshake_passes_through_untouched() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("this app serves WebSockets only")
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})

    with (
        TestClient(CORSMiddleware(app, allow_origins=[SITE])) as client,
        client.websocket_connect("/", headers={"origin": OTHER}) as ws,
    ):
        assert ws.receive_text() == "hi"


@pytest.mark.parametrize("origin", ["https://site.example/", "https://site.example/app"])
def test_origin_with_a_path_is_a_configuration_error(origin: str) -> None:
    with pytest.raises(ValueError, match="no trailing slash"):
        CORSMiddleware(hello, allow_origins=[origin])


def test_a_single_string_for_origins_is_a_configuration_error() -> None:
    with pytest.raises(TypeError, match="list of origins"):
        CORSMiddleware(hello, allow_origins=SITE)
