"""Exception handlers: where they apply (compiled handlers, raw ASGI endpoints,
mounts, WebSockets), the server-error handler (`500` / `Exception`), and what a
handler must return."""

from __future__ import annotations

import pytest

from levante.testing import TestClient, WebSocketDenialResponse
from levante.web import (
    App,
    HTTPException,
    JSONResponse,
    Mount,
    PlainTextResponse,
    Request,
    Route,
    WebSocket,
    WebSocketDisconnect,
    WebSocketRoute,
)
from levante.web.handlers import HandlerResultError


class Teapot(Exception):
    pass


async def teapot_handler(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(f"teapot at {request.url.path}", 418, {"x-handled": "yes"})


async def raise_418(scope, receive, send) -> None:
    raise HTTPException(418)


async def raise_teapot(scope, receive, send) -> None:
    raise Teapot()


def assert_teapot(response, path: str) -> None:
    assert response.status_code == 418
    assert response.text == f"teapot at {path}"
    assert response.headers["x-handled"] == "yes"


# -- raw ASGI endpoints and mounted apps --------------------------------------------


def test_http_exception_from_a_raw_asgi_endpoint_goes_to_the_status_handler():
    app = App([Route("/raw", raise_418)], exception_handlers={418: teapot_handler})
    assert_teapot(TestClient(app).get("/raw"), "/raw")


def test_http_exception_from_a_mounted_app_goes_to_the_status_handler():
    app = App([Mount("/m", raise_418)], exception_handlers={418: teapot_handler})
    assert_teapot(TestClient(app).get("/m/deep/path"), "/m/deep/path")


@pytest.mark.parametrize("path", ["/raw", "/m/x"])
def test_class_handler_answers_errors_from_raw_endpoints_and_mounts(path):
    routes = [Route("/raw", raise_teapot), Mount("/m", raise_teapot)]
    app = App(routes, exception_handlers={Teapot: teapot_handler})
    assert_teapot(TestClient(app).get(path), path)


def test_http_exception_from_a_raw_endpoint_without_handler_gets_the_default_answer():
    app = App([Route("/raw", raise_418)])
    response = TestClient(app).get("/raw")
    assert (response.status_code, response.text) == (418, "I'm a Teapot")


def test_user_middleware_sees_the_handled_response_of_a_raw_endpoint():
    statuses: list[int] = []

    class Recorder:
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            async def recording_send(message) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                await send(message)

            await self.app(scope, receive, recording_send)

    app = App([Route("/raw", raise_418)], exception_handlers={418: teapot_handler})
    app.add_middleware(Recorder)
    assert TestClient(app).get("/raw").status_code == 418
    assert statuses == [418]


def test_error_after_a_raw_endpoint_started_its_response_is_reraised_not_answered():
    async def half_sent(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Teapot()

    app = App([Route("/raw", half_sent)], exception_handlers={Teapot: teapot_handler})
    with pytest.raises(Teapot):
        TestClient(app).get("/raw")


def test_a_compiled_handlers_error_is_answered_inside_its_route_middleware():
    seen: list[int] = []

    class RouteRecorder:
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            async def recording_send(message) -> None:
                if message["type"] == "http.response.start":
                    seen.append(message["status"])
                await send(message)

            await self.app(scope, receive, recording_send)

    async def handler() -> None:
        raise Teapot()

    from levante.web.middleware import Middleware

    route = Route("/h", handler, middleware=[Middleware(RouteRecorder)])
    app = App([route], exception_handlers={Teapot: teapot_handler})
    assert_teapot(TestClient(app).get("/h"), "/h")
    assert seen == [418]


# -- the server-error handler: 500 and Exception ----------------------------------


def failing_app(**options) -> App:
    app = App(**options)

    @app.get("/")
    def home() -> None:
        raise ValueError("boom")

    return app


async def sorry(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(f"sorry: {exc}", 500)


@pytest.mark.parametrize("key", [500, Exception], ids=["500", "Exception"])
def test_server_error_handler_answers_and_the_error_is_still_reraised(key):
    app = failing_app(exception_handlers={key: sorry})
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (500, "sorry: boom")
    with pytest.raises(ValueError, match="boom"):
        TestClient(app).get("/")


@pytest.mark.parametrize("key", [500, Exception], ids=["500", "Exception"])
def test_debug_page_wins_over_the_server_error_handler(key):
    app = failing_app(exception_handlers={key: sorry}, debug=True)
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert "Traceback" in response.text
    assert "ValueError: boom" in response.text


def test_a_class_handler_for_the_error_wins_over_the_server_error_handler():
    async def value_error(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("bad value", 400)

    app = failing_app(exception_handlers={Exception: sorry, ValueError: value_error})
    response = TestClient(app).get("/")
    assert (response.status_code, response.text) == (400, "bad value")


def test_http_exception_500_gets_the_default_answer_not_the_server_error_handler():
    app = App(exception_handlers={500: sorry})

    @app.get("/")
    def home() -> None:
        raise HTTPException(500)

    response = TestClient(app).get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


# -- what an exception handler must return -----------------------------------------


async def returns_dict(request: Request, exc: Exception) -> dict[str, str]:
    return {"error": "teapot"}


def test_handler_returning_a_dict_raises_a_named_error_naming_the_handler():
    app = App([Route("/raw", raise_418)], exception_handlers={418: returns_dict})
    with pytest.raises(HandlerResultError, match=r"returns_dict returned dict") as caught:
        TestClient(app).get("/raw")
    assert "must return a Response" in str(caught.value)
    assert isinstance(caught.value.__cause__, HTTPException)


def test_handler_returning_a_dict_gives_the_client_a_bare_500():
    app = App([Route("/raw", raise_418)], exception_handlers={418: returns_dict})
    response = TestClient(app, raise_server_exceptions=False).get("/raw")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


def test_server_error_handler_returning_a_dict_gives_500_and_the_named_error():
    app = failing_app(exception_handlers={Exception: returns_dict})
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    with pytest.raises(HandlerResultError, match="returns_dict") as caught:
        TestClient(app).get("/")
    assert isinstance(caught.value.__cause__, ValueError)


# -- WebSockets ---------------------------------------------------------------------


def connect(app, path: str = "/ws") -> None:
    with TestClient(app).websocket_connect(path):
        pass


def test_response_returned_before_accept_is_sent_as_the_denial():
    async def handler(websocket: WebSocket) -> PlainTextResponse:
        return PlainTextResponse("denied", 403, {"x-why": "policy"})

    with pytest.raises(WebSocketDenialResponse) as caught:
        connect(App([WebSocketRoute("/ws", handler)]))
    assert (caught.value.status_code, caught.value.text) == (403, "denied")
    assert caught.value.headers["x-why"] == "policy"


def test_response_returned_before_accept_closes_1008_without_the_denial_extension():
    async def handler(websocket: WebSocket) -> PlainTextResponse:
        return PlainTextResponse("denied", 403)

    app = App([WebSocketRoute("/ws", handler)])

    async def server_without_denials(scope, receive, send) -> None:
        scope["extensions"] = {}
        await app(scope, receive, send)

    with pytest.raises(WebSocketDisconnect) as caught:
        connect(server_without_denials)
    assert caught.value.code == 1008
    assert not isinstance(caught.value, WebSocketDenialResponse)


def test_response_returned_after_accept_closes_the_connection_normally():
    async def handler(websocket: WebSocket) -> PlainTextResponse:
        await websocket.accept()
        return PlainTextResponse("too late", 403)

    client = TestClient(App([WebSocketRoute("/ws", handler)]))
    with client.websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert caught.value.code == 1000


def test_http_exception_before_accept_is_denied_with_the_status_handlers_response():
    async def handler(websocket: WebSocket) -> None:
        raise HTTPException(418)

    app = App([WebSocketRoute("/ws", handler)], exception_handlers={418: teapot_handler})
    with pytest.raises(WebSocketDenialResponse) as caught:
        connect(app)
    assert (caught.value.status_code, caught.value.text) == (418, "teapot at /ws")


def test_http_exception_from_a_raw_websocket_app_is_denied_with_the_handlers_response():
    app = App([WebSocketRoute("/ws", raise_418)], exception_handlers={418: teapot_handler})
    with pytest.raises(WebSocketDenialResponse) as caught:
        connect(app)
    assert (caught.value.status_code, caught.value.text) == (418, "teapot at /ws")


def test_class_handler_can_close_an_accepted_websocket_with_its_own_code():
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Teapot()

    async def close_4018(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(4018, "teapot")

    app = App([WebSocketRoute("/ws", handler)], exception_handlers={Teapot: close_4018})
    with TestClient(app).websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert (caught.value.code, caught.value.reason) == (4018, "teapot")


def test_handler_response_after_accept_closes_1011_and_reraises():
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Teapot()

    async def json_answer(websocket: WebSocket, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "teapot"}, 418)

    app = App([WebSocketRoute("/ws", handler)], exception_handlers={Teapot: json_answer})
    client = TestClient(app, raise_server_exceptions=False)
    with client.websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert caught.value.code == 1011
    with pytest.raises(Teapot), TestClient(app).websocket_connect("/ws") as session:
        session.receive_text()


def test_websocket_handler_returning_a_dict_raises_the_named_error():
    async def handler(websocket: WebSocket) -> None:
        raise Teapot()

    app = App([WebSocketRoute("/ws", handler)], exception_handlers={Teapot: returns_dict})
    with pytest.raises(HandlerResultError, match="must return None or a Response"):
        connect(app)
