"""WebSocket apps for tests/test_websocket_behaviour.py.

Each factory returns a fresh ASGI app together with what it records, so a test
can read (through ``server.call`` or after ``wait_for``) what the app saw from
inside the server. Nothing here knows which server runs it.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Module level: FastAPI resolves the handlers' (string) annotations in these globals.
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute

from tests.apps.basic import run_lifespan

Record = list[Any]


async def _plain_text(send: Any, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def recording_echo(record: Record) -> Any:
    """Echo every message; append the final ``websocket.disconnect`` message to `record`.

    Plain HTTP requests get ``ok``. ``record`` also receives ``("accepted", path)``
    once the handshake is done.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] == "http":
            await _plain_text(send, b"ok")
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        record.append(("accepted", scope["path"]))
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record.append(message)
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


def blaster(total: int, size: int, sent: list[int]) -> Any:
    """After accepting, send `total` binary messages of `size` bytes, then close 1000.

    Message ``i`` is ``size`` copies of byte ``i % 256``. ``sent[0]`` counts the
    ``websocket.send`` calls that have returned.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            await _plain_text(send, b"websocket only", 404)
            return
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(total):
            await send({"type": "websocket.send", "bytes": bytes([i % 256]) * size})
            sent[0] += 1
        await send({"type": "websocket.close", "code": 1000})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def gated_receiver(gate: asyncio.Event, expected: int, received: list[str]) -> Any:
    """Accept, then wait for `gate` before receiving `expected` text messages."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            await _plain_text(send, b"websocket only", 404)
            return
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while len(received) < expected:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            received.append(message["text"])
        await send({"type": "websocket.send", "text": f"got {len(received)}"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def scope_reporter(record: Record) -> Any:
    """Answer HTTP with the scope type as the body; record any websocket scope."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            record.append("websocket")
            await receive()
            await send({"type": "websocket.close"})
            return
        record.append(scope["type"])
        while (await receive()).get("more_body"):
            pass
        await _plain_text(send, f"type={scope['type']}".encode())

    return app


#: Misuse scenarios for `misuser`: the message the app tries at the wrong time.
MISUSES = ("send_before_accept", "send_after_close", "close_after_close", "accept_after_close")


def misuser(kind: str, record: Record) -> Any:
    """Send one ASGI message the protocol does not allow; record what ``send`` did.

    ``record`` gets the exception's type name, or ``"no exception"``.
    """

    async def attempt(send: Any, message: dict[str, Any]) -> None:
        try:
            await send(message)
        except Exception as exc:
            record.append(type(exc).__name__)
        else:
            record.append("no exception")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            await _plain_text(send, b"websocket only", 404)
            return
        await receive()
        if kind == "send_before_accept":
            await attempt(send, {"type": "websocket.send", "text": "too early"})
            await send({"type": "websocket.close"})  # deny: the client sees 403
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000, "reason": "done"})
        if kind == "send_after_close":
            await attempt(send, {"type": "websocket.send", "text": "too late"})
        elif kind == "close_after_close":
            await attempt(send, {"type": "websocket.close", "code": 1000})
        elif kind == "accept_after_close":
            await attempt(send, {"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def create_fastapi_app(record: Record) -> FastAPI:
    """A FastAPI app with WebSocket routes written as FastAPI's documentation shows."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_text(f"echo: {text}")
        except WebSocketDisconnect as exc:
            record.append(("disconnect", exc.code))

    @app.websocket("/deny")
    async def deny(websocket: WebSocket) -> None:
        await websocket.close(code=4400)

    return app


def create_starlette_app(record: Record) -> Starlette:
    """A Starlette app: a `WebSocketEndpoint` and a `websocket_route`-style function."""

    class Echo(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(f"endpoint: {data}")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            record.append(("endpoint disconnect", close_code))

    async def function_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_bytes():
                await websocket.send_bytes(data[::-1])
        except WebSocketDisconnect as exc:  # iter_bytes ends quietly; kept for safety
            record.append(("function disconnect", exc.code))
        else:
            record.append(("function done", None))

    return Starlette(
        routes=[WebSocketRoute("/endpoint", Echo), WebSocketRoute("/function", function_echo)]
    )
