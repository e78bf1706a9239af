"""The benchmark endpoint contract (../shared/bench/README.md) in `levante.web`.

Written as a user would write it: decorators, path parameters by name, dicts
returned as JSON (msgspec encodes them), a request only where a handler needs
the query string or the body. Served by uvicorn in the benchmark::

    python -m uvicorn levante_web:app --app-dir bench/apps --http httptools --loop uvloop
"""

from __future__ import annotations

from typing import Any

from levante.web import App, PlainTextResponse, Request, Response, WebSocket

BYTES_64K = b"x" * 65536

app: App[Any] = App()


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/items/{item_id:int}")
async def items(item_id: int, request: Request) -> Any:
    query = request.query_params
    try:
        limit = int(query.get("limit", 10))
    except ValueError:
        return PlainTextResponse("invalid parameters", 422)
    return {"item_id": item_id, "q": query.get("q", ""), "limit": limit}


@app.get("/bytes/64k")
async def bytes_64k() -> Response:
    return Response(BYTES_64K, media_type="application/octet-stream")


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    length = 0
    async for chunk in request.stream():
        length += len(chunk)
    return {"length": length}


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
