"""What every middleware shares: the `Middleware` spec, use in an `App`, lifespan and
unknown scopes passed straight through, and the app's response objects left unchanged."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from levante.testing import TestClient
from levante.web import App, Request
from levante.web.middleware import (
    CompressionMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    GZipMiddleware,
    HTTPSRedirectMiddleware,
    Middleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    ServerTimingMiddleware,
    SessionMiddleware,
    TrustedHostMiddleware,
)
from levante.web.responses import PlainTextResponse

#: Each middleware with the options it needs, configured to refuse as much as it can.
EVERY_MIDDLEWARE = [
    Middleware(CORSMiddleware, allow_origins=["https://site.example"]),
    Middleware(CompressionMiddleware, minimum_size=1),
    Middleware(GZipMiddleware, minimum_size=1),
    Middleware(TrustedHostMiddleware, allowed_hosts=["nowhere.example"]),
    Middleware(HTTPSRedirectMiddleware),
    Middleware(SessionMiddleware, secret_key="k"),
    Middleware(CSRFMiddleware, secret="k"),
    Middleware(RateLimitMiddleware, limit=1, window=60),
    Middleware(RequestIDMiddleware),
    Middleware(ServerTimingMiddleware),
]
IDS = [m.cls.__name__ for m in EVERY_MIDDLEWARE]  # type: ignore[attr-defined]


def test_middleware_spec_unpacks_as_class_args_kwargs() -> None:
    spec = Middleware(CORSMiddleware, allow_origins=["*"])
    cls, args, kwargs = spec
    assert cls is CORSMiddleware
    assert args == ()
    assert kwargs == {"allow_origins": ["*"]}


def test_middleware_spec_wraps_an_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    wrapped = Middleware(GZipMiddleware, minimum_size=10).wrap(app)
    assert isinstance(wrapped, GZipMiddleware)
    assert wrapped.app is app
    assert wrapped.minimum_size == 10


def test_middleware_spec_repr_shows_the_call() -> None:
    spec = Middleware(RateLimitMiddleware, 10, window=1.0)
    assert repr(spec) == "Middleware(RateLimitMiddleware, 10, window=1.0)"


def test_middleware_in_an_app_wrap_its_routes() -> None:
    app = App(
        middleware=[
            Middleware(RequestIDMiddleware),
            Middleware(SessionMiddleware, secret_key="k"),
            Middleware(CompressionMiddleware),
        ]
    )

    @app.get("/visit")
    async def visit(request: Request) -> PlainTextResponse:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return PlainTextResponse(f"visit {request.session['visits']} " * 100)

    with TestClient(app) as client:
        client.get("/visit")
        response = client.get("/visit", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "x-request-id" in response.headers
    assert response.text.startswith("visit 2 ")


@pytest.mark.parametrize("spec", EVERY_MIDDLEWARE, ids=IDS)
def test_lifespan_passes_through_to_the_app(spec: Middleware) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    with TestClient(App(lifespan=lifespan, middleware=[spec])):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


@pytest.mark.parametrize("spec", EVERY_MIDDLEWARE, ids=IDS)
def test_unknown_scope_types_pass_through(spec: Middleware) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send(await receive())

    async def receive() -> dict[str, Any]:
        return {"type": "custom.ping"}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "custom", "path": "/"}
    asyncio.run(spec.wrap(app)(scope, receive, send))
    assert seen == [{"type": "custom", "path": "/"}]
    assert sent == [{"type": "custom.ping"}]


SHARED = PlainTextResponse("shared " * 100, headers={"vary": "Accept-Language"})


@pytest.mark.parametrize("spec", EVERY_MIDDLEWARE, ids=IDS)
def test_a_reused_response_object_is_never_edited(spec: Middleware) -> None:
    # A module-level response is sent for every request; headers added in place
    # would pile up on it.
    before = list(SHARED.raw_headers)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await SHARED(scope, receive, send)

    headers = {"origin": "https://site.example", "accept-encoding": "gzip"}
    with TestClient(spec.wrap(app), base_url="https://nowhere.example") as client:
        client.get("/", headers=headers)
        client.get("/", headers=headers)
    assert SHARED.raw_headers == before


def test_compressed_body_survives_the_other_middleware_around_it() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("z" * 1000)(scope, receive, send)

    wrapped = CompressionMiddleware(app)
    for spec in (Middleware(CORSMiddleware, allow_origins=["*"]), Middleware(RequestIDMiddleware)):
        wrapped = spec.wrap(wrapped)  # type: ignore[assignment]
    with TestClient(wrapped) as client:
        with client.stream("GET", "/", headers={"accept-encoding": "gzip"}) as response:
            raw = b"".join(response.iter_raw())
    assert gzip.decompress(raw) == b"z" * 1000
