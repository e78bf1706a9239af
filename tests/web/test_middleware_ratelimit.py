"""RateLimitMiddleware and MemoryStore: quotas, 429s, headers, keys, bounded memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from levante.testing import TestClient, WebSocketDenialResponse
from levante.web.middleware import (
    MemoryStore,
    RateLimitMiddleware,
    RateLimitResult,
)
from levante.web.responses import PlainTextResponse


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await PlainTextResponse("hello")(scope, receive, send)


def limited(clock: Clock, limit: int = 3, window: float = 60.0, **options: Any) -> TestClient:
    store = MemoryStore(clock=clock)
    return TestClient(RateLimitMiddleware(hello, limit, window, store=store, **options))


def test_requests_within_the_limit_pass_with_ratelimit_headers() -> None:
    with limited(Clock()) as client:
        responses = [client.get("/") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
    assert responses[0].headers["ratelimit-reset"] == "20"  # one request's share refills
    assert responses[2].headers["ratelimit-reset"] == "60"


def test_request_over_the_limit_gets_429_with_retry_after() -> None:
    with limited(Clock()) as client:
        for _ in range(3):
            client.get("/")
        response = client.get("/")
    assert response.status_code == 429
    assert response.text == "Too Many Requests"
    assert response.headers["retry-after"] == "20"
    assert response.headers["ratelimit-remaining"] == "0"


def test_fresh_window_allows_the_full_limit_again() -> None:
    clock = Clock()
    with limited(clock) as client:
        for _ in range(3):
            client.get("/")
        assert client.get("/").status_code == 429
        clock.now += 60
        responses = [client.get("/") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert responses[0].headers["ratelimit-remaining"] == "2"
        assert client.get("/").status_code == 429


def test_quota_refills_gradually_as_the_window_slides() -> None:
    clock = Clock()
    with limited(clock) as client:
        for _ in range(3):
            client.get("/")
        clock.now += 19.9
        assert client.get("/").status_code == 429
        clock.now += 0.1  # one request's share (60 s / 3) has passed
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 429


def test_retry_after_is_rounded_up_to_whole_seconds() -> None:
    clock = Clock()
    with limited(clock, limit=1, window=1.5) as client:
        client.get("/")
        clock.now += 0.2
        assert client.get("/").headers["retry-after"] == "2"


def test_clients_are_counted_separately_by_ip() -> None:
    clock = Clock()
    app = RateLimitMiddleware(hello, 1, 60, store=MemoryStore(clock=clock))
    with (
        TestClient(app, client=("10.0.0.1", 1111)) as first,
        TestClient(app, client=("10.0.0.2", 2222)) as second,
    ):
        assert first.get("/").status_code == 200
        assert first.get("/").status_code == 429
        assert second.get("/").status_code == 200


def test_custom_key_counts_by_api_key_and_none_is_not_limited() -> None:
    def api_key(scope: Any) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                return value.decode()
        return None

    with limited(Clock(), limit=1, key=api_key) as client:
        assert client.get("/", headers={"x-api-key": "a"}).status_code == 200
        assert client.get("/", headers={"x-api-key": "a"}).status_code == 429
        assert client.get("/", headers={"x-api-key": "b"}).status_code == 200
        unkeyed = [client.get("/").status_code for _ in range(5)]
    assert unkeyed == [200] * 5


def test_exempt_paths_are_never_limited() -> None:
    with limited(Clock(), limit=1, exempt_paths=["/health", "/static/"]) as client:
        statuses = [client.get(p).status_code for p in ["/health", "/static/a.css"] * 3]
        assert statuses == [200] * 6
        assert "ratelimit-limit" not in client.get("/health").headers
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 429


def test_headers_can_be_left_off_but_retry_after_stays() -> None:
    with limited(Clock(), limit=1, headers=False) as client:
        ok = client.get("/")
        refused = client.get("/")
    assert "ratelimit-limit" not in ok.headers
    assert "ratelimit-limit" not in refused.headers
    assert refused.headers["retry-after"] == "60"


def test_refused_websocket_handshake_gets_429_when_the_server_can_deny() -> None:
    with limited(Clock(), limit=1) as client:
        with client.websocket_connect("/ws"):
            pass
        with pytest.raises(WebSocketDenialResponse) as denial:
            with client.websocket_connect("/ws"):
                pass
    assert denial.value.status_code == 429


def test_refused_websocket_is_closed_with_1013_without_the_denial_extension() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = RateLimitMiddleware(hello, 1, 60, store=MemoryStore(clock=Clock()))
    scope = {"type": "websocket", "path": "/", "client": ("10.0.0.1", 1), "headers": []}
    asyncio.run(app(dict(scope), receive, send))
    sent.clear()
    asyncio.run(app(dict(scope), receive, send))
    assert sent == [{"type": "websocket.close", "code": 1013, "reason": ""}]


def test_a_custom_store_decides() -> None:
    class Closed:
        async def hit(self, key: str, limit: int, window: float) -> RateLimitResult:
            return RateLimitResult(False, 0, 3600.0)

    with TestClient(RateLimitMiddleware(hello, store=Closed())) as client:
        response = client.get("/")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3600"


def hit(store: MemoryStore, key: str, limit: int = 2, window: float = 10.0) -> RateLimitResult:
    return asyncio.run(store.hit(key, limit, window))


def test_memory_store_drops_keys_whose_quota_is_whole_again() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    for key in ("a", "b", "c"):
        hit(store, key)
    assert len(store) == 3
    clock.now += 10  # every quota has refilled
    hit(store, "d")
    hit(store, "e")
    assert len(store) <= 3


def test_memory_store_forgets_the_least_recently_seen_key_at_max_keys() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock, max_keys=2)
    assert hit(store, "a", limit=1).allowed
    hit(store, "b", limit=1)
    hit(store, "c", limit=1)
    assert len(store) == 2
    assert hit(store, "a", limit=1).allowed  # "a" was forgotten, so starts afresh
    assert not hit(store, "c", limit=1).allowed


def test_memory_store_reports_remaining_and_reset() -> None:
    store = MemoryStore(clock=Clock())
    assert hit(store, "k", limit=2, window=10) == RateLimitResult(True, 1, 5.0)
    assert hit(store, "k", limit=2, window=10) == RateLimitResult(True, 0, 10.0)
    assert hit(store, "k", limit=2, window=10) == RateLimitResult(False, 0, 5.0)


@pytest.mark.parametrize(("limit", "window"), [(0, 60), (10, 0), (10, -1)])
def test_nonpositive_limit_or_window_is_a_configuration_error(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="limit >= 1 and window > 0"):
        RateLimitMiddleware(hello, limit, window)
