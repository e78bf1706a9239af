"""The app the multi-process tests serve: every answer names the worker's pid.

- ``/``: ``{"pid": ...}`` at once;
- ``/slow?seconds=S``: the same after S seconds (a request in flight);
- ``/block?seconds=S``: blocks the whole event loop for S seconds (a stuck worker).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from urllib.parse import parse_qs

from tests.apps.basic import run_lifespan, send_json


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    seconds = float(parse_qs(scope["query_string"].decode()).get("seconds", ["0"])[0])
    if scope["path"] == "/slow":
        marks = os.environ.get("LEVANTE_TEST_MARKS")
        if marks:  # tell the test this request is in flight
            with open(os.path.join(marks, f"{os.getpid()}-{id(scope)}"), "w"):
                pass
        await asyncio.sleep(seconds)
    elif scope["path"] == "/block":
        time.sleep(seconds)  # on purpose: the event loop stops beating
    await send_json(send, {"pid": os.getpid()})
