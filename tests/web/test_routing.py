"""Routing: the compiled table, converters, methods, mounts, hosts, url_path_for."""

from __future__ import annotations

import uuid

import pytest

from levante.testing import TestClient
from levante.web import (
    App,
    Host,
    Mount,
    PlainTextResponse,
    Request,
    Response,
    Route,
    RouteConflict,
    Router,
    WebSocket,
    WebSocketRoute,
)
from levante.web.convertors import TemplateError
from levante.web.exceptions import NoMatchFound
from levante.web.middleware import Middleware


def named(name: str):
    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {request.path_params}")

    handler.__name__ = name
    return handler


def client_for(*routes, **options) -> TestClient:
    return TestClient(App(list(routes), **options))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/items/7", "int {'item': 7}"),
        ("/items/2.5", "float {'item': 2.5}"),
        (
            "/items/0b8e3c5a-8d2d-4c55-9c56-2ad1c1d6b3f1",
            "uuid {'item': UUID('0b8e3c5a-8d2d-4c55-9c56-2ad1c1d6b3f1')}",
        ),
        ("/items/blue", "str {'item': 'blue'}"),
        ("/items/special", "static {}"),
        ("/files/a/b/c.txt", "path {'rest': 'a/b/c.txt'}"),
        ("/files/", "path {'rest': ''}"),
        ("/img/cat.png", "pattern {'stem': 'cat', 'ext': 'png'}"),
    ],
)
def test_converters_and_specificity_pick_the_narrowest_route(path, expected):
    client = client_for(
        Route("/items/{item}", named("str")),
        Route("/items/{item:int}", named("int")),
        Route("/items/{item:float}", named("float")),
        Route("/items/{item:uuid}", named("uuid")),
        Route("/items/special", named("static")),
        Route("/files/{rest:path}", named("path")),
        Route("/img/{stem}.{ext}", named("pattern")),
    )
    response = client.get(path)
    assert response.status_code == 200
    assert response.text == expected


def test_path_params_arrive_converted_as_handler_arguments():
    app = App()

    @app.get("/users/{user_id:int}/posts/{slug}")
    def post(user_id: int, slug: str) -> dict[str, object]:
        return {"user_id": user_id, "slug": slug, "type": type(user_id).__name__}

    assert TestClient(app).get("/users/42/posts/hello").json() == {
        "user_id": 42,
        "slug": "hello",
        "type": "int",
    }


def test_unknown_path_is_404():
    response = client_for(Route("/", named("home"))).get("/nope")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_wrong_method_is_405_with_allow():
    client = client_for(Route("/things", named("things"), methods=["GET", "POST"]))
    response = client.delete("/things")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST, OPTIONS"


def test_405_allow_lists_every_method_some_route_takes_for_the_path():
    client = client_for(
        Route("/i/{id:int}", named("read"), methods=["GET"]),
        Route("/i/{slug}", named("write"), methods=["POST"]),
        Route("/i/{rest:path}", named("erase"), methods=["DELETE"]),
    )
    assert client.post("/i/5").text == "write {'slug': '5'}"
    response = client.put("/i/5")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, POST, OPTIONS"
    assert client.options("/i/5").headers["allow"] == "DELETE, GET, HEAD, POST, OPTIONS"


def test_a_full_match_elsewhere_beats_a_405():
    client = client_for(
        Route("/users/me", named("me"), methods=["GET"]),
        Route("/users/{name}", named("by_name"), methods=["DELETE"]),
    )
    assert client.get("/users/me").text == "me {}"
    assert client.delete("/users/me").text == "by_name {'name': 'me'}"


def test_head_is_answered_by_get_routes_without_a_body():
    response = client_for(Route("/", named("home"))).head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len("home {}"))


def test_options_is_answered_automatically_with_allow():
    client = client_for(Route("/things", named("things"), methods=["GET", "PUT"]))
    response = client.options("/things")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, PUT, OPTIONS"


def test_explicit_options_route_wins_over_the_automatic_answer():
    client = client_for(
        Route("/x", named("get_x")),
        Route("/x", named("options_x"), methods=["OPTIONS"]),
    )
    assert client.options("/x").text == "options_x {}"


def test_explicit_head_route_wins_over_the_automatic_one():
    app = App()

    @app.get("/h")
    def page() -> PlainTextResponse:
        return PlainTextResponse("page")

    @app.head("/h")
    def head() -> Response:
        return Response(headers={"x-head": "explicit"})

    client = TestClient(app)
    assert client.head("/h").headers["x-head"] == "explicit"
    assert client.get("/h").text == "page"


def test_explicit_head_route_wins_whatever_the_declaration_order():
    head = Route("/h", lambda: Response(headers={"x-head": "explicit"}), methods=["HEAD"])
    client = client_for(head, Route("/h", named("page")))
    assert client.head("/h").headers["x-head"] == "explicit"
    assert client.get("/h").text == "page {}"


def test_missing_or_extra_trailing_slash_redirects():
    client = client_for(Route("/a", named("a")), Route("/b/", named("b")))
    first = client.get("/a/", follow_redirects=False)
    assert first.status_code == 307
    assert first.headers["location"] == "http://testserver/a"
    second = client.get("/b", follow_redirects=False)
    assert second.headers["location"] == "http://testserver/b/"


def test_trailing_slash_redirect_in_a_mount_under_a_root_path_names_each_prefix_once():
    sub = App([Route("/thing/", named("thing"))])
    client = TestClient(App([Mount("/m", app=sub)]), root_path="/rp")
    response = client.get("/m/thing?x=1", follow_redirects=False)
    assert response.headers["location"] == "http://testserver/rp/m/thing/?x=1"


def test_redirect_slashes_can_be_turned_off():
    client = client_for(Route("/a", named("a")), redirect_slashes=False)
    assert client.get("/a/", follow_redirects=False).status_code == 404


def test_redirect_keeps_the_query_string():
    client = client_for(Route("/a", named("a")))
    response = client.get("/a/?x=1", follow_redirects=False)
    assert response.headers["location"] == "http://testserver/a?x=1"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (Route("/a/{x}", named("one")), Route("/a/{y}", named("two"))),
        (Route("/a", named("one")), Route("/a", named("two"), methods=["GET", "POST"])),
        (Route("/a/{x:int}", named("one")), Route("/a/{y:int}", named("two"))),
        (Route("/a", PlainTextResponse("any method")), Route("/a", named("two"), methods=["POST"])),
        (Mount("/m", app=PlainTextResponse("m")), Mount("/m", app=PlainTextResponse("n"))),
        (Route("/a", named("one"), methods=["HEAD"]), Route("/a", named("two"), methods=["HEAD"])),
        (Route("/a", named("one"), methods=["HEAD"]), Route("/a", PlainTextResponse("any"))),
        (Mount("/a", app=PlainTextResponse("m")), Route("/a/{rest:path}", named("rest"))),
        (Route("/a/{rest:path}", named("rest"), methods=["POST"]), Mount("/a", routes=[])),
    ],
)
def test_conflicting_routes_fail_at_startup_naming_both(first, second):
    router = Router([first, second])
    with pytest.raises(RouteConflict) as caught:
        router.compile()
    message = str(caught.value)
    assert first.describe() in message
    assert second.describe() in message


def test_conflicts_surface_when_the_app_starts():
    app = App([Route("/a", named("one")), Route("/a", named("two"))])
    with pytest.raises(Exception, match="conflicts with"), TestClient(app):
        pass


def test_same_path_with_disjoint_methods_is_fine():
    client = client_for(
        Route("/a", named("read"), methods=["GET"]),
        Route("/a", named("write"), methods=["POST"]),
    )
    assert client.get("/a").text == "read {}"
    assert client.post("/a").text == "write {}"


def test_http_and_websocket_routes_can_share_a_path():
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ws")
        await websocket.close()

    client = client_for(Route("/live", named("page")), WebSocketRoute("/live", ws))
    assert client.get("/live").text == "page {}"
    with client.websocket_connect("/live") as session:
        assert session.receive_text() == "ws"


@pytest.mark.parametrize(
    "template",
    ["items", "/a/{x:nope}", "/a/{x}/{x}", "/a/{rest:path}/b", "/a/{x"],
)
def test_bad_templates_are_refused(template):
    with pytest.raises(TemplateError):
        Route(template, named("bad"))


def test_mount_passes_the_prefix_in_root_path():
    async def sub(scope, receive, send):
        text = f"{scope['root_path']}|{scope['path']}"
        await PlainTextResponse(text)(scope, receive, send)

    client = client_for(Mount("/api/v1", app=sub))
    assert client.get("/api/v1/users/3").text == "/api/v1|/api/v1/users/3"
    assert client.get("/api/v1").text == "/api/v1|/api/v1"
    assert client.get("/api/v1x").status_code == 404


def test_mount_with_routes_and_path_params():
    client = client_for(
        Mount("/orgs/{org}", routes=[Route("/members/{member:int}", named("member"))])
    )
    assert client.get("/orgs/acme/members/5").text == "member {'org': 'acme', 'member': 5}"


def test_routes_beat_a_mount_on_the_same_prefix():
    client = client_for(
        Mount("/static", app=PlainTextResponse("mounted")),
        Route("/static/special", named("special")),
    )
    assert client.get("/static/special").text == "special {}"
    assert client.get("/static/other").text == "mounted"


def test_root_mount_catches_what_nothing_else_matched():
    client = client_for(Route("/known", named("known")), Mount("", app=PlainTextResponse("rest")))
    assert client.get("/known").text == "known {}"
    assert client.get("/anything/else").text == "rest"


def test_nested_apps_route_relative_to_their_mount():
    inner = App([Route("/ping", named("ping"))])
    outer = App([Mount("/inner", app=inner)])
    assert TestClient(outer).get("/inner/ping").text == "ping {}"
    assert TestClient(outer).get("/inner/pong").status_code == 404


def test_include_router_under_a_prefix():
    users = Router()

    @users.get("/{user_id:int}")
    def user(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    @users.post("")
    def create() -> dict[str, str]:
        return {"created": "yes"}

    app = App()
    app.include_router(users, prefix="/users")
    client = TestClient(app)
    assert client.get("/users/3").json() == {"user": 3}
    assert client.post("/users").json() == {"created": "yes"}


def tag(name: str) -> Middleware:
    class Tag:
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send):
            async def tagged(message):
                if message["type"] in ("http.response.start", "websocket.accept"):
                    message.setdefault("headers", []).append((b"x-tag", name.encode()))
                await send(message)

            await self.app(scope, receive, tagged)

    return Middleware(Tag)


@pytest.mark.parametrize("options", [{"prefix": "/v1"}, {"include_in_schema": False}])
def test_include_router_keeps_route_and_mount_middleware(options):
    router = Router(
        [
            Route("/r", named("r"), middleware=[tag("route")]),
            Mount("/m", app=PlainTextResponse("mounted"), middleware=[tag("mount")]),
        ]
    )
    app = App()
    app.include_router(router, **{"prefix": "", **options})
    client = TestClient(app)
    prefix = options.get("prefix", "")
    assert client.get(f"{prefix}/r").headers["x-tag"] == "route"
    assert client.get(f"{prefix}/m/x").headers["x-tag"] == "mount"


def test_include_router_keeps_websocket_route_middleware():
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    router = Router([WebSocketRoute("/feed", feed, middleware=[tag("ws")])])
    app = App()
    app.include_router(router, prefix="/v1")
    with TestClient(app).websocket_connect("/v1/feed") as session:
        assert (b"x-tag", b"ws") in session.extra_headers


def test_include_router_keeps_the_automatic_head_overridable():
    router = Router([Route("/h", named("page"))])
    app = App()
    app.include_router(router, prefix="/v1")
    app.add_route("/v1/h", lambda: Response(headers={"x-head": "explicit"}), methods=["HEAD"])
    assert TestClient(app).head("/v1/h").headers["x-head"] == "explicit"


def test_include_router_puts_host_routes_under_the_prefix():
    api = App([Route("/u", named("u"))])
    router = Router([Host("api.example.com", app=api, name="api")])
    app = App()
    app.include_router(router, prefix="/v1")
    client = TestClient(app)
    assert client.get("http://api.example.com/v1/u").text == "u {}"
    assert client.get("http://api.example.com/u").status_code == 404
    assert app.url_path_for("api:u") == "/v1/u"


def test_host_routing_by_subdomain():
    api = App([Route("/", named("api"))])
    site = App([Route("/", named("site"))])
    client = client_for(Host("{tenant}.api.example.com", app=api), Mount("", app=site))
    response = client.get("/", headers={"host": "acme.api.example.com:8000"})
    assert response.text == "api {'tenant': 'acme'}"
    assert client.get("/", headers={"host": "example.com"}).text == "site {}"


def test_host_parameters_are_converted_and_refused_values_do_not_match():
    sub = App([Route("/", named("tenant"))])
    client = client_for(Host("{id:int}.example.com", app=sub))
    assert client.get("http://42.example.com/").text == "tenant {'id': 42}"
    assert client.get("http://abc.example.com/").status_code == 404


def test_route_table_does_not_depend_on_declaration_order():
    routes = [Route("/x/{a}", named("param")), Route("/x/fixed", named("fixed"))]
    for order in (routes, list(reversed(routes))):
        client = client_for(*order)
        assert client.get("/x/fixed").text == "fixed {}"
        assert client.get("/x/other").text == "param {'a': 'other'}"


def test_routes_added_after_a_request_are_served():
    app = App([Route("/a", named("a"))])
    client = TestClient(app)
    assert client.get("/b").status_code == 404
    app.add_route("/b", named("b"))
    assert client.get("/b").text == "b {}"


# -- url_path_for ---------------------------------------------------------------


def test_url_path_for_fills_and_converts_parameters():
    router = Router(
        [
            Route("/users/{user_id:int}", named("user")),
            Route("/files/{rest:path}", named("file")),
            Route("/ids/{key:uuid}", named("by_id")),
            WebSocketRoute("/ws/{room}", named("room")),
        ]
    )
    assert router.url_path_for("user", user_id=5) == "/users/5"
    assert router.url_path_for("file", rest="a/b.txt") == "/files/a/b.txt"
    key = uuid.UUID("0b8e3c5a-8d2d-4c55-9c56-2ad1c1d6b3f1")
    assert router.url_path_for("by_id", key=key) == f"/ids/{key}"
    assert router.url_path_for("room", room="lobby") == "/ws/lobby"


def test_url_path_for_an_explicit_str_parameter():
    app = App()

    @app.get("/u/{name:str}/{file}.{ext:str}", name="user")
    def user(name: str, file: str, ext: str) -> str:
        return name

    assert app.url_path_for("user", name="bob", file="cv", ext="pdf") == "/u/bob/cv.pdf"


def test_url_path_for_through_named_mounts():
    api = Router([Route("/users/{user_id:int}", named("user"))])
    router = Router([Mount("/api", app=api, name="api")])
    assert router.url_path_for("api:user", user_id=1) == "/api/users/1"


@pytest.mark.parametrize(
    ("name", "params"),
    [("nope", {}), ("user", {}), ("user", {"user_id": 1, "extra": 2}), ("user", {"user_id": -1})],
)
def test_url_path_for_refuses_unknown_names_and_wrong_params(name, params):
    router = Router([Route("/users/{user_id:int}", named("user"))])
    with pytest.raises(NoMatchFound):
        router.url_path_for(name, **params)


def test_request_url_for_is_absolute_and_respects_mounts():
    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.url_for("api:user", user_id=9)))

    api = Router([Route("/users/{user_id:int}", handler, name="user")])
    client = client_for(Mount("/api", app=api, name="api"))
    assert client.get("/api/users/1").text == "http://testserver/api/users/9"


def test_url_for_websocket_routes_gives_ws_scheme():
    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.url_for("feed")))

    async def feed(websocket: WebSocket) -> None:
        await websocket.close()

    client = client_for(Route("/", handler), WebSocketRoute("/feed", feed))
    assert client.get("/").text == "ws://testserver/feed"


def test_url_for_a_route_under_a_host_is_absolute_on_that_host():
    async def handler(request: Request) -> PlainTextResponse:
        urls = [request.url_for("api:u"), request.url_for("tenant:u", id=7)]
        return PlainTextResponse(" ".join(str(url) for url in urls))

    api = Router([Route("/u", handler, name="u")])
    client = client_for(
        Host("api.example.com", app=api, name="api"),
        Host("{id:int}.example.com", app=api, name="tenant"),
    )
    response = client.get("http://api.example.com/u")
    assert response.text == "http://api.example.com/u http://7.example.com/u"
