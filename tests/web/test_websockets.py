"""WebSocket endpoints: accept, receive/send of each kind, iteration, close, denial."""

from __future__ import annotations

import pytest

from levante.testing import TestClient
from levante.web import (
    App,
    PlainTextResponse,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
)
from levante.web.websockets import WebSocketState


def app_with(handler, path: str = "/ws") -> TestClient:
    app = App()
    app.add_websocket_route(path, handler)
    return TestClient(app)


def test_text_bytes_and_json_round_trips():
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text((await websocket.receive_text()).upper())
        await websocket.send_bytes((await websocket.receive_bytes())[::-1])
        data = await websocket.receive_json()
        await websocket.send_json({"got": data})
        binary = await websocket.receive_json(mode="binary")
        await websocket.send_json(binary, mode="binary")
        await websocket.close()

    with app_with(echo).websocket_connect("/ws") as session:
        session.send_text("hi")
        assert session.receive_text() == "HI"
        session.send_bytes(b"abc")
        assert session.receive_bytes() == b"cba"
        session.send_json([1, 2])
        assert session.receive_json() == {"got": [1, 2]}
        session.send_json({"b": 1}, mode="binary")
        assert session.receive_json(mode="binary") == {"b": 1}


def test_path_params_and_subprotocol_selection():
    async def room(websocket: WebSocket, name: str) -> None:
        await websocket.accept(subprotocol=websocket.scope["subprotocols"][-1])
        await websocket.send_text(f"room {name}")
        await websocket.close()

    client = app_with(room, "/rooms/{name}")
    with client.websocket_connect("/rooms/blue", subprotocols=["v1", "v2"]) as session:
        assert session.accepted_subprotocol == "v2"
        assert session.receive_text() == "room blue"


def test_iter_text_ends_when_the_client_closes():
    seen: list[str] = []

    async def collect(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            seen.append(text)
        seen.append(f"state {websocket.client_state.name}")

    with app_with(collect).websocket_connect("/ws") as session:
        session.send_text("a")
        session.send_text("b")
    assert seen == ["a", "b", "state DISCONNECTED"]


def test_receive_after_client_close_raises_disconnect_with_its_code():
    codes: list[int] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            codes.append(exc.code)

    with app_with(handler).websocket_connect("/ws") as session:
        session.close(4001)
    assert codes == [4001]


def test_app_close_code_and_reason_reach_the_client():
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4100, "bye")

    with app_with(handler).websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert (caught.value.code, caught.value.reason) == (4100, "bye")


def test_websocket_exception_closes_with_its_code():
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4403, "not allowed")

    with app_with(handler).websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert caught.value.code == 4403


def test_close_before_accept_refuses_the_connection():
    async def handler(websocket: WebSocket) -> None:
        await websocket.close(4000)

    with pytest.raises(WebSocketDisconnect) as caught:
        app_with(handler).websocket_connect("/ws").__enter__()
    assert caught.value.code == 4000


def test_denial_with_an_http_response():
    from levante.testing import WebSocketDenialResponse

    async def handler(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("go away", status_code=401))

    with pytest.raises(WebSocketDenialResponse) as caught:
        app_with(handler).websocket_connect("/ws").__enter__()
    assert caught.value.status_code == 401
    assert caught.value.text == "go away"


def test_returning_a_response_from_a_plain_asgi_denial():
    from levante.testing import WebSocketDenialResponse

    async def handler(scope, receive, send) -> None:
        await PlainTextResponse("nope", status_code=403)(scope, receive, send)

    with pytest.raises(WebSocketDenialResponse) as caught:
        app_with(handler).websocket_connect("/ws").__enter__()
    assert caught.value.status_code == 403


def test_unhandled_error_closes_with_1011():
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise ValueError("bug")

    client = TestClient(App(), raise_server_exceptions=False)
    client.app.add_websocket_route("/ws", handler)  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as caught:
            session.receive_text()
    assert caught.value.code == 1011


def test_unknown_websocket_path_is_refused():
    client = TestClient(App())
    with pytest.raises(WebSocketDisconnect):
        client.websocket_connect("/nowhere").__enter__()


def test_sending_before_accept_is_a_named_error():
    errors: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        try:
            await websocket.send_text("too early")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        await websocket.close()

    with pytest.raises(WebSocketDisconnect):
        app_with(handler).websocket_connect("/ws").__enter__()
    assert errors and errors[0].startswith("ASGIUsageError") and "accept()" in errors[0]


def test_receive_text_on_a_binary_message_says_what_to_use():
    errors: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except Exception as exc:
            errors.append(str(exc))
        await websocket.close()

    with app_with(handler).websocket_connect("/ws") as session:
        session.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect):
            session.receive_text()
    assert errors == ["expected a text message, got binary: use receive_bytes()"]


def test_states_progress_through_the_handshake():
    states: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        states.append(websocket.application_state.name)
        await websocket.accept()
        states.append(websocket.application_state.name)
        await websocket.close()
        states.append(websocket.application_state.name)

    with app_with(handler).websocket_connect("/ws"):
        pass
    assert states == [
        WebSocketState.CONNECTING.name,
        WebSocketState.CONNECTED.name,
        WebSocketState.DISCONNECTED.name,
    ]
