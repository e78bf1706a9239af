"""The benchmark endpoint contract (../shared/bench/README.md) with typed handlers:
declared path and query parameters (validated: 422 otherwise), msgspec Struct
responses, a Struct-free upload that streams the body. Served by uvicorn::

    python -m uvicorn levante_typed:app --app-dir bench/apps --http httptools --loop uvloop
"""

# No `from __future__ import annotations`: the handlers' annotations are read at start-up.

import msgspec

from levante.web import App, PlainTextResponse, Request, Response, WebSocket

BYTES_64K = b"x" * 65536

app = App(openapi_url=None, asyncapi_url=None)


class Message(msgspec.Struct):
    message: str


class ItemOut(msgspec.Struct):
    item_id: int
    q: str
    limit: int


class Length(msgspec.Struct):
    length: int


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/json")
async def json_endpoint() -> Message:
    return Message(message="Hello, World!")


@app.get("/items/{item_id}")
async def items(item_id: int, q: str = "", limit: int = 10) -> ItemOut:
    return ItemOut(item_id=item_id, q=q, limit=limit)


@app.get("/bytes/64k")
async def bytes_64k() -> Response:
    return Response(BYTES_64K, media_type="application/octet-stream")


@app.post("/upload")
async def upload(request: Request) -> Length:
    length = 0
    async for chunk in request.stream():
        length += len(chunk)
    return Length(length=length)


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])
