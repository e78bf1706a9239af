"""The benchmark endpoint contract in Litestar, with msgspec Struct response models."""

import msgspec
from litestar import Litestar, MediaType, Request, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect

BYTES_64K = b"x" * 65536


class Message(msgspec.Struct):
    message: str


class Item(msgspec.Struct):
    item_id: int
    q: str
    limit: int


class Length(msgspec.Struct):
    length: int


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> str:
    return "Hello, World!"


@get("/json")
async def json_endpoint() -> Message:
    return Message(message="Hello, World!")


@get("/items/{item_id:int}")
async def items(item_id: int, q: str = "", limit: int = 10) -> Item:
    return Item(item_id=item_id, q=q, limit=limit)


@get("/bytes/64k", media_type="application/octet-stream")
async def bytes_64k() -> bytes:
    return BYTES_64K


@post("/upload", status_code=200)
async def upload(request: Request) -> Length:
    length = 0
    async for chunk in request.stream():
        length += len(chunk)
    return Length(length=length)


@websocket("/ws")
async def ws_echo(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await socket.send_text(message["text"])
            else:
                await socket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


app = Litestar(
    route_handlers=[plaintext, json_endpoint, items, bytes_64k, upload, ws_echo],
    openapi_config=None,
    logging_config=None,
)
