"""SessionMiddleware: the signed cookie, when it is (re)set, and what a bad one gives."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import msgspec
import pytest

from levante.testing import TestClient
from levante.web.datastructures import QueryParams
from levante.web.middleware import SessionMiddleware
from levante.web.responses import JSONResponse

SECRET = "s3cr3t-for-tests"
TWO_WEEKS = 14 * 24 * 3600


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def session_app(scope: Any, receive: Any, send: Any) -> None:
    """/set?k=v stores pairs, /append grows a nested list, /clear empties; all
    answer with the session as JSON."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(scope["session"])})
        return
    session = scope["session"]
    if scope["path"] == "/set":
        session.update(QueryParams(scope["query_string"]))
    elif scope["path"] == "/append":
        session.setdefault("items", []).append(len(session.get("items", [])))
    elif scope["path"] == "/clear":
        session.clear()
    await JSONResponse(session)(scope, receive, send)


def make_client(clock: Clock | None = None, **options: Any) -> TestClient:
    options.setdefault("secret_key", SECRET)
    if clock is not None:
        options["clock"] = clock
    return TestClient(SessionMiddleware(session_app, **options))


def test_changed_session_is_saved_in_a_signed_cookie() -> None:
    with make_client() as client:
        response = client.get("/set?user=ada")
        assert response.json() == {"user": "ada"}
        header = response.headers["set-cookie"]
        assert header.startswith("session=")
        assert "; Path=/; Max-Age=1209600; HttpOnly; SameSite=lax" in header
        assert "Secure" not in header
        assert client.get("/get").json() == {"user": "ada"}


def test_cookie_payload_is_readable_base64_json() -> None:
    # Signed, not encrypted: what the docs warn about.
    with make_client() as client:
        value = client.get("/set?user=ada").cookies["session"]
    payload = value.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"user": "ada"}


def test_unchanged_session_sets_no_cookie() -> None:
    with make_client() as client:
        client.get("/set?user=ada")
        response = client.get("/get")
    assert response.json() == {"user": "ada"}
    assert "set-cookie" not in response.headers


def test_empty_session_without_cookie_sets_none() -> None:
    with make_client() as client:
        response = client.get("/get")
    assert "set-cookie" not in response.headers


def test_change_inside_a_nested_value_is_saved() -> None:
    with make_client() as client:
        client.get("/append")
        response = client.get("/append")
        assert "set-cookie" in response.headers
        assert client.get("/get").json() == {"items": [0, 1]}


def test_emptied_session_clears_the_cookie() -> None:
    with make_client() as client:
        client.get("/set?user=ada")
        response = client.get("/clear")
        header = response.headers["set-cookie"]
        assert header.startswith("session=;")
        assert "Max-Age=0" in header
        assert "session" not in client.cookies
        assert client.get("/get").json() == {}


def test_tampered_cookie_gives_an_empty_session_and_is_cleared() -> None:
    with make_client() as client:
        value = client.get("/set?role=user").cookies["session"]
        _payload, stamp, mac = value.split(".")
        forged = base64.urlsafe_b64encode(b'{"role":"admin"}').rstrip(b"=").decode()
        client.cookies.set("session", f"{forged}.{stamp}.{mac}")
        response = client.get("/get")
    assert response.status_code == 200
    assert response.json() == {}
    assert "Max-Age=0" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "cookie", [b"garbage", b"a.b.c", b"...", b"e30.notanumber.sig", b"e30.1.", b"\xe9.1.x"]
)
def test_malformed_cookie_gives_an_empty_session(cookie: bytes) -> None:
    with make_client() as client:
        response = client.get("/get", headers=[(b"cookie", b"session=" + cookie)])
    assert response.json() == {}


def test_cookie_signed_with_another_secret_gives_an_empty_session() -> None:
    with make_client(secret_key="other secret") as other:
        value = other.get("/set?user=ada").cookies["session"]
    with make_client() as client:
        client.cookies.set("session", value)
        assert client.get("/get").json() == {}


def test_validly_signed_payload_that_is_not_an_object_gives_an_empty_session() -> None:
    clock = Clock()
    middleware = SessionMiddleware(session_app, secret_key=SECRET, clock=clock)
    payload = base64.urlsafe_b64encode(msgspec.json.encode([1, 2])).rstrip(b"=").decode()
    with TestClient(middleware) as client:
        client.cookies.set("session", middleware.signer.sign(payload, int(clock.now)))
        assert client.get("/get").json() == {}


def test_session_older_than_max_age_is_empty() -> None:
    clock = Clock()
    with make_client(clock, max_age=100) as client:
        value = client.get("/set?user=ada").cookies["session"]
        clock.now += 101
        client.cookies.set("session", value)  # as if the browser had kept it
        assert client.get("/get").json() == {}


def test_session_within_max_age_is_kept() -> None:
    clock = Clock()
    with make_client(clock, max_age=100) as client:
        client.get("/set?user=ada")
        clock.now += 40
        response = client.get("/get")
    assert response.json() == {"user": "ada"}
    assert "set-cookie" not in response.headers


def test_session_past_half_its_max_age_is_re_signed_when_used() -> None:
    clock = Clock()
    with make_client(clock, max_age=100) as client:
        client.get("/set?user=ada")
        clock.now += 60
        assert "set-cookie" in client.get("/get").headers
        clock.now += 60  # 120 s after the first signature, 60 after the refresh
        assert client.get("/get").json() == {"user": "ada"}


def test_cookie_attributes_follow_the_options() -> None:
    with make_client(
        session_cookie="sid",
        max_age=None,
        path="/app",
        same_site="strict",
        https_only=True,
        domain="example.com",
    ) as client:
        header = client.get("/set?a=1").headers["set-cookie"]
    assert header.startswith("sid=")
    assert header.endswith("; Path=/app; Domain=example.com; HttpOnly; SameSite=strict; Secure")
    assert "Max-Age" not in header


def test_same_site_none_without_https_only_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="https_only=True"):
        SessionMiddleware(session_app, secret_key=SECRET, same_site="none")


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret key must not be empty"):
        SessionMiddleware(session_app, secret_key="")


def test_oversized_session_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with make_client() as client, caplog.at_level(logging.WARNING, "levante.web"):
        client.get("/set?blob=" + "x" * 5000)
    assert "browsers drop cookies over 4096 bytes" in caplog.text


def test_websocket_handler_can_read_the_session() -> None:
    with make_client() as client:
        client.get("/set?user=ada")
        with client.websocket_connect("/ws") as ws:
            assert json.loads(ws.receive_text()) == {"user": "ada"}
