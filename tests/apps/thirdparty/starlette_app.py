"""A plain Starlette app (routes, JSON, multipart upload, streaming, static files, gzip)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles


def create_app(static_dir: Path) -> Starlette:
    # What the app observed, for the tests to check from outside the server.
    disconnects: list[str] = []

    async def homepage(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.path_params.get('name', 'world')}")

    async def echo_json(request: Request) -> Response:
        data = await request.json()
        return JSONResponse({"received": data, "keys": sorted(data)})

    async def upload(request: Request) -> Response:
        async with request.form() as form:
            upload = form["file"]
            assert isinstance(upload, UploadFile)
            content = await upload.read()
            return JSONResponse(
                {
                    "field": form["comment"],
                    "filename": upload.filename,
                    "content_type": upload.content_type,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            )

    async def stream(request: Request) -> Response:
        count = int(request.query_params.get("count", "4"))

        async def numbers() -> AsyncIterator[str]:
            for i in range(count):
                yield f"line {i}\n"
                await anyio.sleep(0)

        return StreamingResponse(numbers(), media_type="text/plain")

    async def big_text(request: Request) -> Response:
        return PlainTextResponse("compress me please " * 500)

    async def wait_for_client(request: Request) -> Response:
        # A long poll that stops as soon as the client goes away (bounded).
        tag = request.query_params["tag"]
        with anyio.move_on_after(20):
            while not await request.is_disconnected():
                await anyio.sleep(0.01)
            disconnects.append(tag)
        return PlainTextResponse("nobody will read this")

    routes = [
        Route("/", homepage),
        Route("/hello/{name}", homepage),
        Route("/json", echo_json, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/big", big_text),
        Route("/wait", wait_for_client),
        Mount("/static", StaticFiles(directory=static_dir), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=500)])
    app.state.disconnects = disconnects
    return app
