"""Apps that are still running when the server is told to stop (tests/test_shutdown.py).

Each prints a marker line to stdout once a request has reached it, so a test
knows when to send the signal.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tests.apps.basic import run_lifespan

STARTED = "test app: request started"


async def until_released(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 once the file named by $TEST_RELEASE_FILE exists (at most ~20 s)."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    print(STARTED, flush=True)
    release = Path(os.environ["TEST_RELEASE_FILE"])
    for _ in range(2000):
        if release.exists():
            break
        await asyncio.sleep(0.01)
    body = b"finished after release"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def never_finishes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Never answers; it only ends when cancelled."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    print(STARTED, flush=True)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        print("test app: cancelled", flush=True)
        raise
