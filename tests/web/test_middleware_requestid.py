"""RequestIDMiddleware: where the ID comes from, where it goes, which are refused."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from levante.testing import TestClient
from levante.web.concurrency import run_in_threadpool
from levante.web.middleware import RequestIDLogFilter, RequestIDMiddleware, request_id
from levante.web.responses import JSONResponse


async def show_ids(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the ID as the scope, the context variable and a thread see it."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    ids = {
        "scope": scope["request_id"],
        "context": request_id.get(),
        "thread": await run_in_threadpool(request_id.get),
    }
    await JSONResponse(ids)(scope, receive, send)


def get(headers: Any = None, app: Any = show_ids, **options: Any) -> Any:
    with TestClient(RequestIDMiddleware(app, **options)) as client:
        return client.get("/", headers=headers)


def test_request_without_id_gets_a_uuid4_hex_everywhere() -> None:
    response = get()
    rid = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert response.json() == {"scope": rid, "context": rid, "thread": rid}


def test_each_request_gets_its_own_id() -> None:
    assert get().headers["x-request-id"] != get().headers["x-request-id"]


def test_valid_incoming_id_is_used_and_echoed() -> None:
    response = get({"x-request-id": "edge-7f3a/42+=="})
    assert response.headers["x-request-id"] == "edge-7f3a/42+=="
    assert response.json()["context"] == "edge-7f3a/42+=="


def test_incoming_id_is_ignored_when_not_trusted() -> None:
    response = get({"x-request-id": "from-client"}, trust_incoming=False)
    assert response.headers["x-request-id"] != "from-client"


@pytest.mark.parametrize("bad", [b"", b"has space", b"tab\there", b"x" * 201, b"caf\xc3\xa9"])
def test_invalid_incoming_id_is_replaced(bad: bytes) -> None:
    response = get([(b"x-request-id", bad)])
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_incoming_id_of_200_characters_is_accepted() -> None:
    assert get({"x-request-id": "x" * 200}).headers["x-request-id"] == "x" * 200


def test_header_name_and_generator_are_configurable() -> None:
    response = get({"x-correlation-id": "abc"}, header_name="X-Correlation-ID")
    assert response.headers["x-correlation-id"] == "abc"
    response = get(generator=lambda: "fixed-id")
    assert response.headers["x-request-id"] == "fixed-id"


def test_apps_own_response_header_is_kept() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = JSONResponse({}, headers={"x-request-id": "app-chose"})
        await response(scope, receive, send)

    assert get(app=app).headers["x-request-id"] == "app-chose"


def test_context_variable_is_reset_after_the_request() -> None:
    get()
    assert request_id.get() is None


def test_websocket_accept_carries_the_id() -> None:
    app = RequestIDMiddleware(show_ids)
    with TestClient(app) as client:
        with client.websocket_connect("/", headers={"x-request-id": "ws-1"}) as ws:
            headers = dict(ws.extra_headers)
            ws.receive()
    assert headers[b"x-request-id"] == b"ws-1"


def test_log_filter_puts_the_id_on_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.requestid")
    log_filter = RequestIDLogFilter()
    caplog.handler.addFilter(log_filter)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan support")
        logger.warning("handling")
        await JSONResponse({})(scope, receive, send)

    try:
        with caplog.at_level(logging.WARNING, "tests.requestid"):
            get({"x-request-id": "log-me"}, app=app)
            logger.warning("outside")
    finally:
        caplog.handler.removeFilter(log_filter)
    assert [r.request_id for r in caplog.records] == ["log-me", "-"]  # type: ignore[attr-defined]
