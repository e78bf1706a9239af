"""`Depends`: sync, async and generator dependencies, nested and cached per request,
cleanup after the response, router and app dependencies, app-scoped values,
overrides."""

# No `from __future__ import annotations`: handlers and dependencies defined inside
# tests are read from their annotations at registration, which must be real objects.

import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from levante.testing import TestClient
from levante.web import App, BackgroundTasks, Depends, HTTPException, Query, Request, Router
from levante.web.plans import RegistrationError


def test_sync_async_and_nested_dependencies_with_their_own_parameters() -> None:
    app = App()

    def pagination(skip: int = 0, limit: Annotated[int, Query(le=100)] = 10) -> dict[str, int]:
        return {"skip": skip, "limit": limit}

    async def user(request: Request, page: Annotated[dict[str, int], Depends(pagination)]) -> str:
        return f"{request.headers.get('x-user', 'anon')}@{page['skip']}"

    @app.get("/")
    async def handler(
        who: Annotated[str, Depends(user)], page: Annotated[dict[str, int], Depends(pagination)]
    ) -> dict[str, Any]:
        return {"who": who, **page}

    client = TestClient(app)
    assert client.get("/?skip=5", headers={"x-user": "ana"}).json() == {
        "who": "ana@5",
        "skip": 5,
        "limit": 10,
    }
    response = client.get("/?limit=101")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]


def test_a_dependency_runs_once_per_request_unless_use_cache_is_false() -> None:
    calls: list[str] = []
    app = App()

    def counted() -> int:
        calls.append("x")
        return len(calls)

    def a(n: Annotated[int, Depends(counted)]) -> int:
        return n

    def b(n: Annotated[int, Depends(counted)]) -> int:
        return n

    @app.get("/cached")
    def cached(x: Annotated[int, Depends(a)], y: Annotated[int, Depends(b)]) -> list[int]:
        return [x, y]

    @app.get("/fresh")
    def fresh(
        x: Annotated[int, Depends(counted)], y: Annotated[int, Depends(counted, use_cache=False)]
    ) -> list[int]:
        return [x, y]

    client = TestClient(app)
    assert client.get("/cached").json() == [1, 1]
    assert client.get("/cached").json() == [2, 2]
    calls.clear()
    assert client.get("/fresh").json() == [1, 2]


def test_generator_cleanup_runs_after_the_response_is_sent() -> None:
    events: list[str] = []
    app = App()

    async def resource() -> AsyncIterator[str]:
        events.append("open")
        yield "res"
        events.append("close")

    def sync_resource() -> Iterator[str]:
        events.append("sync-open")
        yield "sync"
        events.append("sync-close")

    @app.get("/")
    async def handler(
        r: Annotated[str, Depends(resource)], s: Annotated[str, Depends(sync_resource)]
    ) -> str:
        events.append("handler")
        return r + s

    client = TestClient(app)
    assert client.get("/").json() == "ressync"
    assert events == ["open", "sync-open", "handler", "sync-close", "close"]


def test_generator_sees_the_handlers_exception_and_cleans_up() -> None:
    seen: list[str] = []
    app = App()

    async def transaction() -> AsyncIterator[None]:
        try:
            yield
        except HTTPException as exc:
            seen.append(f"rollback {exc.status_code}")
            raise
        else:
            seen.append("commit")

    @app.get("/fail")
    async def fail(_: Annotated[None, Depends(transaction)]) -> None:
        raise HTTPException(409, "conflict")

    @app.get("/ok")
    async def ok(_: Annotated[None, Depends(transaction)]) -> str:
        return "ok"

    client = TestClient(app)
    response = client.get("/fail")
    assert (response.status_code, response.text) == (409, "conflict")
    assert client.get("/ok").json() == "ok"
    assert seen == ["rollback 409", "commit"]


def test_a_dependency_may_refuse_the_request_with_an_http_exception() -> None:
    app = App()

    def token(x_token: Annotated[str | None, Query()] = None) -> str:
        if x_token != "secret":
            raise HTTPException(401, "bad token", headers={"www-authenticate": "Bearer"})
        return x_token

    @app.get("/")
    def handler(t: Annotated[str, Depends(token)]) -> str:
        return t

    client = TestClient(app)
    response = client.get("/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/?x_token=secret").json() == "secret"


def test_route_router_and_app_dependencies_run_for_their_effects() -> None:
    order: list[str] = []

    def app_level() -> None:
        order.append("app")

    def router_level() -> None:
        order.append("router")

    def route_level() -> None:
        order.append("route")

    app = App(dependencies=[Depends(app_level)])
    router = Router(dependencies=[Depends(router_level)])

    @router.get("/r", dependencies=[Depends(route_level)])
    def handler() -> str:
        order.append("handler")
        return "ok"

    app.include_router(router, prefix="/p")
    assert TestClient(app).get("/p/r").json() == "ok"
    assert order == ["app", "router", "route", "handler"]


def test_include_router_adds_dependencies_to_its_routes() -> None:
    hits: list[str] = []
    app = App()
    router = Router()

    @router.get("/x")
    def handler() -> str:
        return "x"

    app.include_router(router, prefix="/v1", dependencies=[Depends(lambda: hits.append("dep"))])
    assert TestClient(app).get("/v1/x").json() == "x"
    assert hits == ["dep"]


def test_app_scoped_dependency_is_created_at_startup_and_closed_at_shutdown() -> None:
    events: list[str] = []

    async def pool() -> AsyncIterator[dict[str, int]]:
        events.append("pool open")
        yield {"connections": 4}
        events.append("pool close")

    app = App()

    @app.get("/")
    async def handler(p: Annotated[dict[str, int], Depends(pool, scope="app")]) -> int:
        return p["connections"]

    with TestClient(app) as client:
        assert events == ["pool open"]
        assert client.get("/").json() == 4
        assert client.get("/").json() == 4
        assert events == ["pool open"]
    assert events == ["pool open", "pool close"]


def test_app_scoped_dependency_cannot_read_the_request() -> None:
    def per_request(request: Request) -> str:
        return request.url.path

    async def handler(x: Annotated[str, Depends(per_request, scope="app")]) -> str:
        return x

    with pytest.raises(RegistrationError, match=r"per_request.*'request'.*app-scoped"):
        App().add_route("/", handler)


def test_dependency_overrides_replace_a_dependency_for_tests() -> None:
    app = App()

    def real_db() -> str:
        return "production"

    def inner(db: Annotated[str, Depends(real_db)]) -> str:
        return f"inner:{db}"

    @app.get("/")
    def handler(value: Annotated[str, Depends(inner)]) -> str:
        return value

    client = TestClient(app)
    assert client.get("/").json() == "inner:production"
    app.dependency_overrides[real_db] = lambda: "test"
    assert client.get("/").json() == "inner:test"
    app.dependency_overrides.clear()
    assert client.get("/").json() == "inner:production"


def test_sync_dependencies_run_off_the_event_loop() -> None:
    app = App()
    loop_thread = threading.get_ident()

    def blocking() -> bool:
        return threading.get_ident() != loop_thread

    @app.get("/")
    async def handler(off_loop: Annotated[bool, Depends(blocking)]) -> bool:
        return off_loop

    assert TestClient(app).get("/").json() is True


def test_background_tasks_from_a_dependency_and_the_handler_share_one_list() -> None:
    done: list[str] = []
    app = App()

    def audit(tasks: BackgroundTasks) -> None:
        tasks.add_task(done.append, "audit")

    @app.get("/")
    def handler(tasks: BackgroundTasks, _: Annotated[None, Depends(audit)]) -> str:
        tasks.add_task(done.append, "handler")
        return "ok"

    assert TestClient(app).get("/").json() == "ok"
    assert done == ["audit", "handler"]


def test_dependency_cycles_are_registration_errors() -> None:
    def one(x: int = 0) -> int:
        return x

    def two(y: Annotated[int, Depends(one)]) -> int:
        return y

    # `one` now depends on `two`, which depends on `one`.
    one.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY, default=Depends(two))]
    )

    async def handler(v: Annotated[int, Depends(two)]) -> int:
        return v

    with pytest.raises(RegistrationError, match=r"dependency cycle: .*two -> .*one -> .*two"):
        App().add_route("/", handler)


def test_a_failing_dependency_rolls_back_the_generators_before_it() -> None:
    log: list[str] = []
    app = App()

    async def db() -> AsyncIterator[str]:
        try:
            yield "db"
        except HTTPException:
            log.append("rollback")
            raise
        else:
            log.append("commit")

    async def auth(d: Annotated[str, Depends(db)]) -> None:
        raise HTTPException(401, "who are you")

    @app.get("/")
    async def handler(d: Annotated[str, Depends(db)], u: Annotated[None, Depends(auth)]) -> str:
        return d

    assert TestClient(app).get("/").status_code == 401
    assert log == ["rollback"]


def test_a_value_asked_for_with_different_defaults_keeps_each_default() -> None:
    app = App()

    def five(q: int = 5) -> int:
        return q

    def seven(q: int = 7) -> int:
        return q

    @app.get("/")
    def handler(a: Annotated[int, Depends(five)], b: Annotated[int, Depends(seven)]) -> list[int]:
        return [a, b]

    @app.get("/required")
    def required(a: Annotated[int, Depends(five)], q: int) -> list[int]:
        return [a, q]

    client = TestClient(app)
    assert client.get("/").json() == [5, 7]
    assert client.get("/?q=1").json() == [1, 1]
    assert client.get("/required").status_code == 422


def test_partial_of_an_async_function_is_awaited() -> None:
    import functools

    app = App()

    async def scaled(factor: int, n: int = 2) -> int:
        return n * factor

    @app.get("/")
    def handler(v: Annotated[int, Depends(functools.partial(scaled, factor=10))]) -> int:
        return v

    assert TestClient(app).get("/?n=3").json() == 30


def test_app_scoped_values_without_a_lifespan_belong_to_each_app() -> None:
    made: list[str] = []

    def pool() -> str:
        made.append("pool")
        return f"pool-{len(made)}"

    def make_app() -> App:
        app = App()

        @app.get("/")
        def handler(p: Annotated[str, Depends(pool, scope="app")]) -> str:
            return p

        return app

    first, second = make_app(), make_app()
    assert TestClient(first).get("/").json() == "pool-1"  # no `with`: made at first use
    assert TestClient(first).get("/").json() == "pool-1"
    assert TestClient(second).get("/").json() == "pool-2"


def test_an_unhashable_override_is_used() -> None:
    import dataclasses

    app = App()

    def real() -> str:
        return "real"

    @dataclasses.dataclass
    class Fake:
        value: str

        def __call__(self) -> str:
            return self.value

    @app.get("/")
    def handler(v: Annotated[str, Depends(real)]) -> str:
        return v

    app.dependency_overrides[real] = Fake("fake")
    assert TestClient(app).get("/").json() == "fake"
