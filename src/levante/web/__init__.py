"""`levante.web`: a small, fast, typed ASGI framework that runs on any ASGI server.

Import what you need from here::

    from levante.web import App, Request, JSONResponse

    app = App()

    @app.get("/items/{item_id:int}")
    async def item(item_id: int):
        return {"id": item_id}
"""

from __future__ import annotations

from typing import Any

from levante.web.app import App
from levante.web.background import BackgroundTask, BackgroundTasks
from levante.web.datastructures import URL, Address, Headers, MutableHeaders, QueryParams
from levante.web.dependencies import Depends, Security, SecurityScopes
from levante.web.exceptions import (
    ClientDisconnect,
    HTTPException,
    RegistrationError,
    RouteConflict,
    WebError,
    WebSocketDisconnect,
    WebSocketException,
)
from levante.web.params import Body, Cookie, File, Form, Header, Path, Query
from levante.web.plain import State
from levante.web.requests import HTTPConnection, Request
from levante.web.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from levante.web.routing import Host, Mount, Route, Router, WebSocketRoute
from levante.web.validation import RequestValidationError, ResponseValidationError
from levante.web.websockets import WebSocket, WebSocketState

__all__ = [
    "URL",
    "Address",
    "App",
    "BackgroundTask",
    "BackgroundTasks",
    "Body",
    "ClientDisconnect",
    "Cookie",
    "Depends",
    "EventSourceResponse",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPConnection",
    "HTTPException",
    "Header",
    "Headers",
    "Host",
    "JSONResponse",
    "Mount",
    "MutableHeaders",
    "Path",
    "PlainTextResponse",
    "Query",
    "QueryParams",
    "RedirectResponse",
    "RegistrationError",
    "Request",
    "RequestValidationError",
    "Response",
    "ResponseValidationError",
    "Route",
    "RouteConflict",
    "Router",
    "Security",
    "SecurityScopes",
    "ServerSentEvent",
    "State",
    "StaticFiles",
    "StreamingResponse",
    "UploadFile",
    "WebError",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
    "WebSocketRoute",
    "WebSocketState",
]

_LAZY = {
    "FileResponse": "levante.web.files",
    "StaticFiles": "levante.web.files",
    "UploadFile": "levante.web.forms",
    "EventSourceResponse": "levante.web.sse",
    "ServerSentEvent": "levante.web.sse",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'levante.web' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
