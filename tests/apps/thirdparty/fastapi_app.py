"""A plain FastAPI app, built the way FastAPI's documentation shows, for Levante to serve.

`create_app(files_dir)` returns a fresh app (with its own records) so every test
starts clean; nothing in it knows which server runs it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


class Boom(Exception):
    """Raised by a handler on purpose; nothing handles it."""


def create_app(files_dir: Path) -> FastAPI:
    # What the app did that a test checks from outside the server.
    events: list[str] = []
    lifespan_events: list[str] = []
    release = asyncio.Event()
    # Set by the test once it holds the response: the background task waits for it.
    gate = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lifespan_events.append("startup")
        yield {"greeting": "hello from lifespan"}
        lifespan_events.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    app.state.events = events
    app.state.lifespan_events = lifespan_events
    app.state.gate = gate

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, Any]:
        return {"user_id": user_id, "double": user_id * 2}

    @app.get("/search")
    async def search(q: str, limit: int = 10, exact: bool = False) -> dict[str, Any]:
        return {"q": q, "limit": limit, "exact": exact}

    @app.post("/items", status_code=201)
    async def create_item(item: Item) -> dict[str, Any]:
        return {"created": item.model_dump(), "total": item.price * 2}

    @app.get("/stream")
    async def stream(parts: int = 5) -> StreamingResponse:
        async def generate() -> AsyncIterator[bytes]:
            for i in range(parts):
                yield f"chunk-{i};".encode()
                await asyncio.sleep(0)

        return StreamingResponse(generate(), media_type="text/plain")

    @app.get("/stream-held")
    async def stream_held() -> StreamingResponse:
        # Sends a first chunk, then waits for /release: the client sees the
        # first chunk only if the server streams instead of buffering.
        async def generate() -> AsyncIterator[bytes]:
            yield b"first;"
            await asyncio.wait_for(release.wait(), 20)
            yield b"second;"

        return StreamingResponse(generate(), media_type="text/plain")

    @app.post("/release")
    async def do_release() -> dict[str, bool]:
        release.set()
        return {"released": True}

    @app.post("/tasks/{token}")
    async def with_task(token: str, background_tasks: BackgroundTasks) -> dict[str, str]:
        def record(value: str) -> None:
            # A sync task runs in a worker thread; it can only be released once
            # the client has the response, so it proves it ran afterwards.
            released = gate.wait(20)
            events.append(f"task:{value}:{'after-response' if released else 'timed-out'}")

        background_tasks.add_task(record, token)
        return {"queued": token}

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    @app.api_route("/files/{name}", methods=["GET", "HEAD"])
    async def get_file(name: str) -> FileResponse:
        path = files_dir / name
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"no file {name}")
        return FileResponse(path)

    @app.get("/extensions")
    async def extensions(request: Request) -> dict[str, list[str]]:
        return {"extensions": sorted(request.scope.get("extensions") or {})}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        if item_id != 1:
            raise HTTPException(status_code=404, detail="Item not found")
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise Boom("unhandled on purpose")

    return app
