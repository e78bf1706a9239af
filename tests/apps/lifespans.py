"""Apps with interesting lifespan behaviour, for tests/test_lifespan.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.apps.basic import run_lifespan, send_json


async def fail_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reports ``lifespan.startup.failed`` with the message ``db down``."""
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "db down"})
        return
    await send_json(send, {"app": "fail_startup"})


async def raise_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raises on the lifespan scope, as apps without lifespan support do."""
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan in this app: cache init exploded")
    await send_json(send, {"app": "raise_on_lifespan"})


async def shutdown_marker(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Writes the file named by $TEST_SHUTDOWN_MARKER during lifespan shutdown."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                Path(os.environ["TEST_SHUTDOWN_MARKER"]).write_text("shutdown ran\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send_json(send, {"app": "shutdown_marker"})


async def basic_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await send_json(send, {"app": "basic_lifespan"})
