"""The benchmark endpoint contract in FastAPI, with pydantic response models."""

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

BYTES_64K = b"x" * 65536


class Message(BaseModel):
    message: str


class Item(BaseModel):
    item_id: int
    q: str
    limit: int


class Length(BaseModel):
    length: int


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/json", response_model=Message)
async def json_endpoint() -> Message:
    return Message(message="Hello, World!")


@app.get("/items/{item_id}", response_model=Item)
async def items(item_id: int, q: str = "", limit: int = 10) -> Item:
    return Item(item_id=item_id, q=q, limit=limit)


@app.get("/bytes/64k")
async def bytes_64k() -> Response:
    return Response(BYTES_64K, media_type="application/octet-stream")


@app.post("/upload", response_model=Length)
async def upload(request: Request) -> Length:
    length = 0
    async for chunk in request.stream():
        length += len(chunk)
    return Length(length=length)


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return
