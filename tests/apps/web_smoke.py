"""One `levante.web` app that tests/web/test_servers.py serves on every ASGI server.

It is written as a user would write it: decorators, path parameters by name,
dicts returned as JSON, a lifespan that yields state. Serve it with any server
as ``tests.apps.web_smoke:app`` (with /work/main on ``PYTHONPATH``).

If ``$SMOKE_SHUTDOWN_MARKER`` names a file, the lifespan writes it on shutdown,
so a test can see that the server ran the shutdown half.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from levante.web import App, PlainTextResponse, Request, StreamingResponse, WebSocket

STREAM_CHUNKS = [f"chunk {i}\n" for i in range(5)]


@asynccontextmanager
async def lifespan(app: App[Any]) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from the lifespan", "started": True}
    marker = os.environ.get("SMOKE_SHUTDOWN_MARKER")
    if marker:
        Path(marker).write_text("lifespan shutdown ran\n")


app: App[Any] = App(lifespan=lifespan)


@app.get("/")
async def home() -> PlainTextResponse:
    return PlainTextResponse("Hello from levante.web")


@app.get("/items/{item_id:int}")
async def item(item_id: int, request: Request) -> dict[str, Any]:
    return {"item_id": item_id, "q": request.query_params.get("q")}


@app.post("/echo")
async def echo(request: Request) -> Any:
    return await request.json()


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[str]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    # A server without the lifespan protocol (daphne) never runs the lifespan,
    # so there is nothing to read: the attribute is missing, not an error page.
    return {
        "greeting": getattr(request.state, "greeting", None),
        "started": getattr(request.state, "started", False),
    }


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket) -> None:
    """Echo one text message, then one JSON message, then close with 4000 "done"."""
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.send_json(await websocket.receive_json())
    await websocket.close(4000, "done")
