"""App: lifespan and its state, mounted apps' lifespans, exception handlers, debug."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse as StarlettePlain
from starlette.routing import Route as StarletteRoute

from levante.testing import TestClient
from levante.web import (
    App,
    BackgroundTasks,
    HTTPException,
    JSONResponse,
    Mount,
    PlainTextResponse,
    Request,
    Route,
    Router,
)


@dataclass
class Resources:
    pool: str
    events: list[str]


def test_lifespan_yielding_an_object_gives_typed_state_to_handlers():
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App[Resources]) -> AsyncIterator[Resources]:
        events.append("start")
        yield Resources(pool="db-pool", events=events)
        events.append("stop")

    app: App[Resources] = App(lifespan=lifespan)

    @app.get("/")
    async def home(request: Request) -> dict[str, str]:
        resources: Resources = request.lifespan_state
        return {"typed": resources.pool, "attr": request.state.pool}

    with TestClient(app) as client:
        assert events == ["start"]
        assert client.get("/").json() == {"typed": "db-pool", "attr": "db-pool"}
    assert events == ["start", "stop"]


def test_lifespan_yielding_a_mapping_merges_into_state():
    @asynccontextmanager
    async def lifespan(app: App[dict[str, int]]) -> AsyncIterator[dict[str, int]]:
        yield {"counter": 41}

    app: App[dict[str, int]] = App(lifespan=lifespan)

    @app.get("/")
    async def home(request: Request) -> dict[str, int]:
        return {"counter": request.state.counter + 1}

    with TestClient(app) as client:
        assert client.get("/").json() == {"counter": 42}


def test_lifespan_receives_the_app():
    seen: list[object] = []

    @asynccontextmanager
    async def lifespan(app: App[None]) -> AsyncIterator[None]:
        seen.append(app)
        yield

    app: App[None] = App(lifespan=lifespan)
    with TestClient(app):
        pass
    assert seen == [app]


def test_request_state_is_per_request():
    app = App()

    @app.get("/")
    async def home(request: Request) -> dict[str, bool]:
        had = "mark" in request.state
        request.state.mark = True
        return {"had": had}

    with TestClient(app) as client:
        assert client.get("/").json() == {"had": False}
        assert client.get("/").json() == {"had": False}


def test_startup_failure_is_reported_with_the_apps_message():
    @asynccontextmanager
    async def lifespan(app: App[None]) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    app: App[None] = App(lifespan=lifespan)
    with pytest.raises(Exception, match="database unreachable"), TestClient(app):
        pass


def test_mounted_apps_lifespans_run_inside_the_parents():
    events: list[str] = []

    def tracked(name: str):
        @asynccontextmanager
        async def lifespan(app: object) -> AsyncIterator[dict[str, str]]:
            events.append(f"{name} start")
            yield {name: "ready"}
            events.append(f"{name} stop")

        return lifespan

    inner = App(lifespan=tracked("inner"))

    @inner.get("/")
    async def inner_home(request: Request) -> dict[str, str]:
        return {"inner": request.state.inner, "outer": request.state.outer}

    router = Router(lifespan=tracked("router"))
    outer = App([Mount("/inner", app=inner), Mount("/r", app=router)], lifespan=tracked("outer"))
    with TestClient(outer) as client:
        assert client.get("/inner/").json() == {"inner": "ready", "outer": "ready"}
    assert events == [
        "outer start",
        "inner start",
        "router start",
        "router stop",
        "inner stop",
        "outer stop",
    ]


@dataclass
class Outer:
    name: str = "outer"


@dataclass
class Inner:
    name: str = "inner"


def yielding(value: object):
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[object]:
        yield value

    return lifespan


def report(request: Request) -> dict[str, object]:
    state = request.lifespan_state
    return {"type": type(state).__name__, "name": request.state.name}


def test_each_app_sees_its_own_lifespan_object():
    inner: App[Inner] = App(lifespan=yielding(Inner()))
    inner.add_route("/", report)
    outer: App[Outer] = App([Mount("/inner", app=inner)], lifespan=yielding(Outer()))
    outer.add_route("/", report)
    with TestClient(outer) as client:
        assert client.get("/").json() == {"type": "Outer", "name": "outer"}
        assert client.get("/inner/").json() == {"type": "Inner", "name": "inner"}


def test_a_mounted_app_without_lifespan_does_not_see_its_parents_object():
    inner = App()

    @inner.get("/")
    def home(request: Request) -> dict[str, object]:
        return {"state": request.lifespan_state, "has_name": hasattr(request.state, "name")}

    outer: App[Outer] = App([Mount("/inner", app=inner)], lifespan=yielding(Outer()))
    with TestClient(outer) as client:
        assert client.get("/inner/").json() == {"state": None, "has_name": False}


def test_a_mounted_routers_lifespan_object_belongs_to_the_app_around_it():
    router = Router([Route("/", report)], lifespan=yielding(Inner()))
    app = App([Mount("/r", app=router)])
    with TestClient(app) as client:
        assert client.get("/r/").json() == {"type": "Inner", "name": "inner"}


def test_an_apps_own_lifespan_object_wins_over_its_routers():
    router = Router([Route("/", report)], lifespan=yielding(Inner()))
    app: App[Outer] = App([Mount("/r", app=router)], lifespan=yielding(Outer()))
    app.include_router(Router(lifespan=yielding(Inner())))
    with TestClient(app) as client:
        assert client.get("/r/").json() == {"type": "Outer", "name": "outer"}


def test_a_mounted_starlette_apps_lifespan_runs_too():
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("starlette start")
        yield
        events.append("starlette stop")

    async def hello(request: object) -> StarlettePlain:
        return StarlettePlain("from starlette")

    sub = Starlette(routes=[StarletteRoute("/", hello)], lifespan=lifespan)
    app = App([Mount("/legacy", app=sub)])
    with TestClient(app) as client:
        assert client.get("/legacy/").text == "from starlette"
        assert events == ["starlette start"]
    assert events == ["starlette start", "starlette stop"]


def test_mounted_apps_without_lifespan_support_are_skipped():
    async def plain_http_only(scope, receive, send):
        if scope["type"] != "http":
            raise ValueError("only http")
        await PlainTextResponse("plain")(scope, receive, send)

    app = App([Mount("/p", app=plain_http_only)])
    with TestClient(app) as client:
        assert client.get("/p").text == "plain"


def test_included_routers_lifespans_run():
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    router = Router(lifespan=lifespan)
    app = App()
    app.include_router(router, prefix="/r")
    with TestClient(app):
        assert events == ["start"]
    assert events == ["start", "stop"]


# -- exception handlers -----------------------------------------------------------


class Forbidden(Exception):
    pass


class SubForbidden(Forbidden):
    pass


def test_http_exception_gives_its_status_detail_and_headers():
    app = App()

    @app.get("/")
    async def home() -> None:
        raise HTTPException(401, "who are you", headers={"www-authenticate": "Bearer"})

    response = TestClient(app).get("/")
    assert response.status_code == 401
    assert response.text == "who are you"
    assert response.headers["www-authenticate"] == "Bearer"


def test_handlers_by_status_and_by_class_including_subclasses():
    async def by_status(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"missing": request.url.path}, status_code=404)

    def by_class(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"handled {type(exc).__name__}", status_code=403)

    app = App(exception_handlers={404: by_status, Forbidden: by_class})

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise SubForbidden()

    client = TestClient(app)
    assert client.get("/nowhere").json() == {"missing": "/nowhere"}
    response = client.get("/forbidden")
    assert (response.status_code, response.text) == (403, "handled SubForbidden")


def test_405_goes_through_the_status_handler():
    app = App()
    app.add_exception_handler(
        405, lambda request, exc: PlainTextResponse("no such method", 405, exc.headers)
    )
    app.add_route("/", lambda request: PlainTextResponse("ok"))
    response = TestClient(app).post("/")
    assert (response.status_code, response.text) == (405, "no such method")
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_unhandled_error_is_a_bare_500_without_debug():
    app = App()

    @app.get("/")
    async def home() -> None:
        raise ValueError("secret detail")

    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "secret" not in response.text


def test_unhandled_error_is_reraised_for_the_server_to_log():
    app = App()

    @app.get("/")
    async def home() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        TestClient(app).get("/")


def test_500_handler_answers_unhandled_errors():
    app = App(exception_handlers={500: lambda request, exc: PlainTextResponse("sorry", 500)})

    @app.get("/")
    async def home() -> None:
        raise KeyError("x")

    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (500, "sorry")


def test_debug_page_shows_the_traceback_and_source_as_html():
    app = App(debug=True)

    @app.get("/")
    async def home() -> None:
        marker = "<script>"
        raise ValueError(f"broken {marker}")

    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "ValueError: broken &lt;script&gt;" in page.text
    assert "test_app.py" in page.text
    assert "marker = " in page.text  # the source line around the frame
    text = client.get("/", headers={"accept": "*/*"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "Traceback" in text.text


def test_error_after_the_response_started_is_not_masked():
    app = App()

    async def body():
        yield b"partial"
        raise RuntimeError("mid-stream")

    @app.get("/")
    async def home():
        from levante.web import StreamingResponse

        return StreamingResponse(body())

    with pytest.raises(RuntimeError, match="mid-stream"):
        TestClient(app).get("/")


# -- handlers -----------------------------------------------------------------------


def test_def_handlers_run_in_worker_threads_and_async_ones_on_the_loop():
    app = App()
    main = threading.get_ident()

    @app.get("/sync")
    def sync_handler() -> dict[str, bool]:
        return {"on_loop": threading.get_ident() == loop_thread[0]}

    @app.get("/async")
    async def async_handler() -> dict[str, bool]:
        loop_thread.append(threading.get_ident())
        return {"on_loop": True}

    loop_thread: list[int] = []
    with TestClient(app) as client:
        assert client.get("/async").json() == {"on_loop": True}
        assert client.get("/sync").json() == {"on_loop": False}
    assert loop_thread and loop_thread[0] != main


def test_a_blocking_def_handler_does_not_block_the_event_loop():
    app = App()
    release = threading.Event()

    @app.get("/block")
    def block() -> str:
        release.wait(10)
        return "released"

    @app.get("/free")
    async def free() -> str:
        release.set()
        return "free"

    with TestClient(app) as client:
        results: list[str] = []
        worker = threading.Thread(target=lambda: results.append(client.get("/block").json()))
        worker.start()
        assert client.get("/free").json() == "free"
        worker.join(10)
    assert results == ["released"]


def test_background_tasks_run_after_the_response_sync_and_async():
    app = App()
    done: list[str] = []

    def sync_task(name: str) -> None:
        done.append(f"sync {name}")

    async def async_task(name: str) -> None:
        done.append(f"async {name}")

    @app.post("/signup")
    async def signup(tasks: BackgroundTasks) -> dict[str, list[str]]:
        tasks.add_task(sync_task, "mail")
        tasks.add_task(async_task, name="audit")
        return {"done_before_response": list(done)}

    with TestClient(app) as client:
        assert client.post("/signup").json() == {"done_before_response": []}
        assert done == ["sync mail", "async audit"]


def test_background_tasks_combine_with_a_responses_own_task():
    from levante.web import BackgroundTask

    app = App()
    done: list[str] = []

    @app.get("/")
    async def home(tasks: BackgroundTasks) -> PlainTextResponse:
        tasks.add_task(done.append, "declared")
        return PlainTextResponse("ok", background=BackgroundTask(done.append, "own"))

    TestClient(app).get("/")
    assert done == ["own", "declared"]


def test_non_response_return_values_are_json():
    app = App()

    @app.get("/none")
    def none() -> None:
        return None

    @app.get("/list")
    def items() -> list[int]:
        return [1, 2]

    @app.post("/created", status_code=201)
    def created() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(app)
    assert client.get("/none").json() is None
    assert client.get("/list").json() == [1, 2]
    response = client.post("/created")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"


def test_registration_names_handler_and_parameter():
    from levante.web.plans import RegistrationError

    app = App()
    with pytest.raises(RegistrationError, match=r"mystery.*'what'"):

        @app.get("/")
        def mystery(what) -> None:  # type: ignore[no-untyped-def]
            return None


def test_sync_websocket_handlers_are_refused_at_registration():
    from levante.web.plans import RegistrationError

    app = App()
    with pytest.raises(RegistrationError, match="async def"):

        @app.websocket("/ws")
        def socket(websocket) -> None:  # type: ignore[no-untyped-def]
            return None


def test_middleware_wraps_in_declaration_order():
    from levante.web.middleware import Middleware

    calls: list[str] = []

    class Tag:
        def __init__(self, app, name: str) -> None:
            self.app = app
            self.name = name

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                calls.append(self.name)
            await self.app(scope, receive, send)

    app = App(middleware=[Middleware(Tag, name="outer"), Middleware(Tag, name="inner")])
    app.add_route("/", lambda request: PlainTextResponse("ok"))
    assert TestClient(app).get("/").text == "ok"
    assert calls == ["outer", "inner"]
