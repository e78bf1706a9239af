"""CSRFMiddleware: the signed double-submit cookie, Sec-Fetch-Site and Origin checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from levante.testing import TestClient
from levante.web.middleware import CSRFMiddleware
from levante.web.responses import PlainTextResponse

SECRET = "csrf-secret-for-tests"


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the body it received and the token in the scope."""
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan support")  # the test client then skips lifespan
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    text = f"{scope['method']} ok; body={body.decode()}; token={scope['csrf_token']}"
    await PlainTextResponse(text)(scope, receive, send)


def make_client(**options: Any) -> TestClient:
    options.setdefault("secret", SECRET)
    return TestClient(CSRFMiddleware(echo_app, **options))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


def token_of(client: TestClient) -> str:
    """Do a safe request to get the cookie, as a page load would."""
    client.get("/")
    return client.cookies["csrftoken"]


def test_safe_request_without_cookie_gets_a_token_cookie(client: TestClient) -> None:
    response = client.get("/")
    header = response.headers["set-cookie"]
    token = response.cookies["csrftoken"]
    assert header == f"csrftoken={token}; Path=/; Max-Age=31536000; SameSite=lax"
    assert "HttpOnly" not in header  # page scripts must read it
    assert response.text.endswith(f"token={token}")


def test_safe_request_with_valid_cookie_keeps_it(client: TestClient) -> None:
    token = token_of(client)
    response = client.get("/")
    assert "set-cookie" not in response.headers
    assert response.text.endswith(f"token={token}")


def test_safe_request_with_forged_cookie_gets_a_new_one(client: TestClient) -> None:
    client.cookies.set("csrftoken", "forged.1.abc")
    response = client.get("/")
    assert response.cookies["csrftoken"] != "forged.1.abc"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_request_without_header_is_refused(client: TestClient, method: str) -> None:
    token_of(client)
    response = client.request(method, "/")
    assert response.status_code == 403
    assert response.text == "CSRF token missing or incorrect"


def test_unsafe_request_with_matching_header_is_accepted(client: TestClient) -> None:
    token = token_of(client)
    response = client.post("/", content=b"data", headers={"x-csrftoken": token})
    assert response.status_code == 200
    assert response.text == f"POST ok; body=data; token={token}"


def test_header_without_cookie_is_refused(client: TestClient) -> None:
    token = token_of(client)
    client.cookies.clear()
    assert client.post("/", headers={"x-csrftoken": token}).status_code == 403


def test_header_not_matching_the_cookie_is_refused(client: TestClient) -> None:
    token_of(client)
    with make_client() as other:
        other_token = token_of(other)
    assert client.post("/", headers={"x-csrftoken": other_token}).status_code == 403


def test_planted_unsigned_cookie_and_matching_header_are_refused(client: TestClient) -> None:
    # An attacker able to set cookies (a sibling subdomain) cannot mint a valid token.
    client.cookies.set("csrftoken", "chosen.1.value")
    response = client.post("/", headers={"x-csrftoken": "chosen.1.value"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("fetch_site", "status"),
    [("same-origin", 200), ("none", 200), ("same-site", 403), ("cross-site", 403)],
)
def test_sec_fetch_site_must_be_same_origin_or_user_initiated(
    client: TestClient, fetch_site: str, status: int
) -> None:
    token = token_of(client)
    response = client.post("/", headers={"x-csrftoken": token, "sec-fetch-site": fetch_site})
    assert response.status_code == status
    if status == 403:
        assert response.text == "Cross-site request refused"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://testserver", 200),
        ("http://TESTSERVER", 200),
        ("https://evil.example", 403),
        ("http://testserver.evil.example", 403),
        ("null", 403),
    ],
)
def test_origin_must_match_host_when_sec_fetch_site_is_absent(
    client: TestClient, origin: str, status: int
) -> None:
    token = token_of(client)
    response = client.post("/", headers={"x-csrftoken": token, "origin": origin})
    assert response.status_code == status


def test_cross_site_post_is_refused_even_with_a_valid_token(client: TestClient) -> None:
    token = token_of(client)
    headers = {
        "x-csrftoken": token,
        "origin": "https://evil.example",
        "sec-fetch-site": "cross-site",
    }
    response = client.post("/", headers=headers)
    assert response.status_code == 403


def test_trusted_origin_may_post_cross_site() -> None:
    with make_client(trusted_origins=["https://app.example"]) as client:
        token = token_of(client)
        headers = {
            "x-csrftoken": token,
            "origin": "https://app.example",
            "sec-fetch-site": "cross-site",
        }
        assert client.post("/", headers=headers).status_code == 200


def test_trusted_origin_still_needs_the_token() -> None:
    with make_client(trusted_origins=["https://app.example"]) as client:
        token_of(client)
        response = client.post("/", headers={"origin": "https://app.example"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "status"), [("/webhook", 200), ("/hooks/stripe", 200), ("/x", 403)]
)
def test_exempt_paths_skip_the_checks(path: str, status: int) -> None:
    with make_client(exempt_paths=["/webhook", "/hooks/"]) as client:
        headers = {"sec-fetch-site": "cross-site"}
        assert client.post(path, content=b"event", headers=headers).status_code == status


def test_custom_header_and_cookie_names() -> None:
    with make_client(cookie_name="xsrf", header_name="X-XSRF-Token") as client:
        client.get("/")
        token = client.cookies["xsrf"]
        assert client.post("/", headers={"x-xsrf-token": token}).status_code == 200


def test_cookie_attributes_follow_the_options() -> None:
    with make_client(
        cookie_path="/app",
        cookie_domain="example.com",
        cookie_secure=True,
        cookie_samesite="strict",
    ) as client:
        header = client.get("/").headers["set-cookie"]
    assert header.endswith(
        "; Path=/app; Max-Age=31536000; SameSite=strict; Domain=example.com; Secure"
    )


def test_form_field_carries_the_token_and_the_app_still_reads_the_body() -> None:
    with make_client(form_field="csrftoken") as client:
        token = token_of(client)
        response = client.post("/", data={"name": "ada", "csrftoken": token})
    assert response.status_code == 200
    assert response.text.startswith("POST ok; body=name=ada&csrftoken=")


def test_form_field_with_wrong_token_is_refused() -> None:
    with make_client(form_field="csrftoken") as client:
        token_of(client)
        response = client.post("/", data={"csrftoken": "wrong"})
    assert response.status_code == 403


def test_form_field_is_not_read_unless_configured(client: TestClient) -> None:
    token = token_of(client)
    assert client.post("/", data={"csrftoken": token}).status_code == 403


def test_form_field_is_read_only_from_urlencoded_bodies() -> None:
    with make_client(form_field="csrftoken") as client:
        token = token_of(client)
        response = client.post("/", data={"csrftoken": token}, files={"f": b"x"})
    assert response.status_code == 403


def test_token_is_signed_with_the_secret() -> None:
    with make_client(secret="one") as one:
        token = token_of(one)
    with make_client(secret="two") as two:
        two.cookies.set("csrftoken", token)
        response = two.post("/", headers={"x-csrftoken": token})
    assert response.status_code == 403


def test_websocket_is_not_checked(client: TestClient) -> None:
    with client.websocket_connect("/") as ws:
        assert ws.receive()["type"] == "websocket.close"


def test_response_of_a_refused_request_is_plain_text(client: TestClient) -> None:
    response: httpx.Response = client.post("/")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_non_ascii_token_header_is_refused_not_an_error(client: TestClient) -> None:
    token_of(client)
    response = client.post("/", headers={"x-csrftoken": "t\u00e9st".encode("latin-1")})
    assert response.status_code == 403
