"""Plain apps the CLI tests serve as ``tests.apps.basic:NAME``.

Every response is JSON describing what the app saw, so a test can check the
settings that reached it (root path, event loop, environment variables).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any


async def send_json(send: Any, data: dict[str, Any], status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def run_lifespan(receive: Any, send: Any) -> None:
    """Answer startup and shutdown with their complete messages."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await send_json(
        send,
        {
            "app": "basic",
            "path": scope["path"],
            "root_path": scope["root_path"],
            "loop": type(asyncio.get_running_loop()).__module__,
        },
    )


def create_app() -> Any:
    """A factory: ``levante tests.apps.basic:create_app --factory``."""

    async def made_by_factory(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        await send_json(send, {"app": "factory"})

    return made_by_factory


async def env_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``GET /NAME`` answers the value of the environment variable NAME (or null)."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    name = scope["path"].lstrip("/")
    await send_json(send, {"name": name, "value": os.environ.get(name)})


not_an_app = 42
