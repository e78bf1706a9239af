"""The benchmark endpoint contract in BlackSheep."""

from blacksheep import (
    Application,
    Content,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnectError,
    json,
    text,
)

BYTES_64K = b"x" * 65536

app = Application(show_error_details=False)
get = app.router.get
post = app.router.post


@get("/plaintext")
async def plaintext() -> Response:
    return text("Hello, World!")


@get("/json")
async def json_endpoint() -> Response:
    return json({"message": "Hello, World!"})


@get("/items/{item_id}")
async def items(item_id: int, q: str = "", limit: int = 10) -> Response:
    return json({"item_id": item_id, "q": q, "limit": limit})


@get("/bytes/64k")
async def bytes_64k() -> Response:
    return Response(200, content=Content(b"application/octet-stream", BYTES_64K))


@post("/upload")
async def upload(request: Request) -> Response:
    length = 0
    async for chunk in request.stream():
        length += len(chunk)
    return json({"length": length})


@app.router.ws("/ws")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnectError:
        return
