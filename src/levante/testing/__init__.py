"""In-process testing of any ASGI 3 app with httpx: `TestClient` (sync) and `AppTransport` (async).

``TestClient`` follows Starlette's and FastAPI's ``TestClient``: an `httpx.Client`
that runs the app's lifespan when used with ``with``, streams responses, and
opens WebSockets with `TestClient.websocket_connect`. ``AppTransport`` is the
async engine underneath; pass it to `httpx.AsyncClient` in async tests, with
`LifespanManager` for the lifespan. See ``docs/testing.md``.

This package never imports `levante.server`: it tests apps, not the server.
"""

from __future__ import annotations

from levante.testing.client import TestClient
from levante.testing.errors import (
    AppTimeoutError,
    ASGIAppError,
    ClientDisconnected,
    LifespanFailure,
    TestingError,
    UnexpectedMessage,
)
from levante.testing.lifespan import LifespanManager
from levante.testing.transport import AppTransport
from levante.testing.websocket import WebSocketDenialResponse, WebSocketTestSession
from levante.web.exceptions import WebSocketDisconnect

__all__ = [
    "ASGIAppError",
    "AppTimeoutError",
    "AppTransport",
    "ClientDisconnected",
    "LifespanFailure",
    "LifespanManager",
    "TestClient",
    "TestingError",
    "UnexpectedMessage",
    "WebSocketDenialResponse",
    "WebSocketDisconnect",
    "WebSocketTestSession",
]
