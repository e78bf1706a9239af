"""Handlers compiled into ASGI apps, and the app's exception handlers applied to them.

Each handler's signature is read once, when its route is made, into a list of
what to pass it; per request the compiled app only fills that list in.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.background import BackgroundTasks
from levante.web.concurrency import is_async_callable, run_in_threadpool
from levante.web.exceptions import (
    HTTPException,
    WebError,
    WebSocketDisconnect,
    WebSocketException,
)
from levante.web.requests import HTTPConnection, Request
from levante.web.responses import BODYLESS_STATUSES, JSONResponse, PlainTextResponse, Response
from levante.web.websockets import WebSocket, WebSocketState

#: The scope key where an `App` leaves its exception handlers for the routes.
HANDLERS_KEY = "levante.exception_handlers"

ExceptionHandler = Callable[[Any, Exception], Any]
#: (handlers by status code, handlers by exception class)
HandlerTables = tuple[dict[int, ExceptionHandler], dict[type[BaseException], ExceptionHandler]]


class RegistrationError(WebError, TypeError):
    """A handler cannot be registered as written; the message names it and the parameter."""


def handler_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", "?")
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


# -- reading signatures --------------------------------------------------------

_REQUEST = "request"
_WEBSOCKET = "websocket"
_TASKS = "tasks"
_PATH = "path"


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(func, eval_str=True)
    except (NameError, TypeError) as exc:
        raise RegistrationError(
            f"cannot read the annotations of handler {handler_name(func)}: {exc}"
        ) from None


def _kind(param: inspect.Parameter, path_names: set[str], connection: type[Any]) -> str | None:
    annotation = param.annotation
    if isinstance(annotation, type):
        if issubclass(annotation, BackgroundTasks):
            return _TASKS
        if issubclass(annotation, HTTPConnection):
            return _WEBSOCKET if issubclass(annotation, WebSocket) else _REQUEST
    if param.name in path_names:
        return _PATH
    if param.name in ("request", "websocket") and annotation is inspect.Parameter.empty:
        return _WEBSOCKET if connection is WebSocket else _REQUEST
    return None


def read_plan(
    func: Callable[..., Any], path_names: set[str], connection: type[Any]
) -> list[tuple[str, str]]:
    """[(parameter name, what to pass)] for `func`, or RegistrationError."""
    plan = []
    for param in _signature(func).parameters.values():
        kind = _kind(param, path_names, connection)
        if kind is None:
            if param.default is not inspect.Parameter.empty or param.kind in (
                param.VAR_KEYWORD,
                param.VAR_POSITIONAL,
            ):
                continue
            raise RegistrationError(
                f"handler {handler_name(func)}: cannot tell what to pass for parameter "
                f"{param.name!r}. Name it after a path parameter {sorted(path_names)}, or "
                f"annotate it as Request, WebSocket or BackgroundTasks."
            )
        plan.append((param.name, kind))
    return plan


# -- exception handlers ----------------------------------------------------------
#
# One place answers an exception with the app's handlers: `respond_to_exception`.
# Compiled handlers call it at once, inside any route middleware (as Starlette's
# `request_response` does), the router calls it for its 404/405, and
# `ExceptionMiddleware` calls it for everything else the routes raise (raw ASGI
# endpoints, mounted apps). `500` and `Exception` are not in these tables: they
# name the server-error handler, which `ServerErrorMiddleware` runs (errors.py).

_OPEN = (WebSocketState.CONNECTING, WebSocketState.CONNECTED)
#: RFC 6455 §7.4.1 close codes used here.
_NORMAL_CLOSURE = 1000
_INTERNAL_ERROR = 1011


class HandlerResultError(WebError, TypeError):
    """An exception handler returned what cannot be sent; the message names the handler."""


async def default_http_exception_handler(conn: HTTPConnection, exc: HTTPException) -> Response:
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in BODYLESS_STATUSES:
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(exc.detail, exc.status_code, headers)


async def default_websocket_exception_handler(
    websocket: WebSocket, exc: WebSocketException
) -> None:
    await _close(websocket, exc.code, exc.reason)


def find_handler(tables: HandlerTables | None, exc: Exception) -> ExceptionHandler | None:
    """The handler for `exc`: by status, then by class (nearest base first), then
    the defaults for `HTTPException` and `WebSocketException`; None if none."""
    if tables is not None:
        by_status, by_class = tables
        if isinstance(exc, HTTPException) and exc.status_code in by_status:
            return by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in by_class:
                return by_class[cls]
    if isinstance(exc, HTTPException):
        return default_http_exception_handler  # type: ignore[return-value]
    if isinstance(exc, WebSocketException):
        return default_websocket_exception_handler  # type: ignore[return-value]
    return None


async def call_handler(handler: ExceptionHandler, conn: HTTPConnection, exc: Exception) -> Any:
    if is_async_callable(handler):
        return await handler(conn, exc)
    return await run_in_threadpool(handler, conn, exc)


async def handler_response(handler: ExceptionHandler, request: Request, exc: Exception) -> Response:
    """What `handler` answers `exc` with; `HandlerResultError` (from `exc`) unless a Response.

    A dict is not JSON-encoded, as a route's return value would be: an exception
    handler chooses the status, and a silent 200 would hide the error.
    """
    result = await call_handler(handler, request, exc)
    if not isinstance(result, Response):
        raise HandlerResultError(_not_a_response(handler, result, exc, "a Response")) from exc
    return result


def _not_a_response(handler: ExceptionHandler, result: Any, exc: Exception, expected: str) -> str:
    return (
        f"exception handler {handler_name(handler)} returned {type(result).__name__} for "
        f"{type(exc).__name__}: it must return {expected}, such as "
        "JSONResponse(content, status_code=...)"
    )


async def respond_to_exception(
    scope: AnyScope,
    receive: Receive,
    send: Send,
    exc: Exception,
    conn: HTTPConnection | None = None,
) -> None:
    """Answer `exc` with the app's handler for it (``scope[HANDLERS_KEY]``), or re-raise it.

    `conn` is the handler's own `Request` or `WebSocket`, if there is one: the
    exception handler then sees what the handler saw (a body already read, the
    WebSocket's state). The caller makes sure an HTTP response has not started.
    """
    handler = find_handler(scope.get(HANDLERS_KEY), exc)
    if scope["type"] == "websocket":
        websocket = conn if isinstance(conn, WebSocket) else WebSocket(scope, receive, send)
        await _answer_websocket(websocket, handler, exc)
        return
    if handler is None:
        raise exc
    request = conn if isinstance(conn, Request) else Request(scope, receive, send)
    response = await handler_response(handler, request, exc)
    await response(scope, receive, send)


async def _answer_websocket(
    websocket: WebSocket, handler: ExceptionHandler | None, exc: Exception
) -> None:
    # A handler may act on the WebSocket itself (close it with a code) and return
    # None, or return a Response: the handshake's denial, while there is one to deny.
    if handler is not None and websocket.application_state in _OPEN:
        result = await call_handler(handler, websocket, exc)
        if result is None:
            return
        if not isinstance(result, Response):
            expected = "None or a Response"
            raise HandlerResultError(_not_a_response(handler, result, exc, expected)) from exc
        if websocket.application_state is WebSocketState.CONNECTING:
            await _deny(websocket, result)
            return
    # Nothing took it, or an HTTP answer came after accept(), too late for the
    # handshake: close as an internal error, and re-raise for the server to log.
    await _close(websocket, _INTERNAL_ERROR, "")
    raise exc


class ExceptionMiddleware:
    """Answers what the routes raise with the app's exception handlers.

    Starlette's `ExceptionMiddleware`: `App` puts it inside the user middleware,
    around the router, so that raw ASGI endpoints and mounted apps get the same
    handlers as compiled handlers, and the user middleware see the answer. An
    exception raised after the HTTP response started (or after a WebSocket was
    closed or denied) is re-raised: the client already has an answer.
    """

    def __init__(self, app: ASGIApp, tables: HandlerTables) -> None:
        self.app = app
        self.tables = tables

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[HANDLERS_KEY] = self.tables
        progress = _Progress(send)
        try:
            await self.app(scope, receive, progress.send)
        except Exception as exc:
            if progress.started:
                raise
            scope[HANDLERS_KEY] = self.tables  # a mounted App left its own in the shared scope
            websocket = progress.websocket(scope, receive, send)
            await respond_to_exception(scope, receive, send, exc, websocket)


#: WebSocket messages an app sends, and the state each leaves the connection in.
_WEBSOCKET_STATE_AFTER = {
    "websocket.accept": WebSocketState.CONNECTED,
    "websocket.http.response.start": WebSocketState.RESPONSE,
    "websocket.close": WebSocketState.DISCONNECTED,
}


class _Progress:
    """What the app has sent so far: enough to tell whether an answer can still go out."""

    __slots__ = ("_send", "http_started", "websocket_state")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.http_started = False
        self.websocket_state = WebSocketState.CONNECTING

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.http_started = True
        else:
            self.websocket_state = _WEBSOCKET_STATE_AFTER.get(kind, self.websocket_state)
        await self._send(message)

    @property
    def started(self) -> bool:
        return self.http_started or self.websocket_state not in _OPEN

    def websocket(self, scope: AnyScope, receive: Receive, send: Send) -> WebSocket | None:
        """A `WebSocket` in the state the app left the connection in (None for HTTP)."""
        if scope["type"] != "websocket":
            return None
        websocket = WebSocket(scope, receive, send)
        websocket.application_state = self.websocket_state
        return websocket


# -- HTTP ----------------------------------------------------------------------


def _as_response(result: Any, status_code: int | None) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result, status_code or 200)


def _attach(response: Response, tasks: BackgroundTasks | None) -> None:
    if tasks is None or not tasks.tasks:
        return
    if response.background is None:
        response.background = tasks
    else:
        response.background = BackgroundTasks([response.background, tasks])


def compile_http_handler(func: Callable[..., Any], route: Any) -> ASGIApp:
    """An ASGI app that calls `func` with what its signature asks for and sends
    what it returns."""
    path_names = set(route.template.param_names) if route is not None else set()
    plan = read_plan(func, path_names, Request)
    status_code: int | None = getattr(route, "status_code", None)
    call = _caller(func)
    takes_tasks = any(kind == _TASKS for _, kind in plan)
    only_request = len(plan) == 1 and plan[0][1] == _REQUEST
    request_name = plan[0][0] if only_request else ""

    async def app(scope: AnyScope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        tasks = BackgroundTasks() if takes_tasks else None
        try:
            if only_request:
                result = await call({request_name: request})
            else:
                result = await call(_arguments(plan, request, tasks))
        except Exception as exc:
            await respond_to_exception(scope, receive, send, exc, request)
            return
        response = _as_response(result, status_code)
        _attach(response, tasks)
        await response(scope, receive, send)

    return app


def _caller(func: Callable[..., Any]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    if is_async_callable(func):

        async def call_async(kwargs: dict[str, Any]) -> Any:
            return await func(**kwargs)

        return call_async

    async def call_sync(kwargs: dict[str, Any]) -> Any:
        return await run_in_threadpool(func, **kwargs)

    return call_sync


def _arguments(
    plan: list[tuple[str, str]], conn: HTTPConnection, tasks: BackgroundTasks | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    path_params = conn.scope.get("path_params", {})
    for name, kind in plan:
        if kind == _PATH:
            kwargs[name] = path_params[name]
        elif kind == _TASKS:
            kwargs[name] = tasks
        else:
            kwargs[name] = conn
    return kwargs


# -- WebSocket -----------------------------------------------------------------


def compile_websocket_handler(func: Callable[..., Any], route: Any) -> ASGIApp:
    """An ASGI app running `async def func(websocket, ...)`.

    An exception goes to the app's exception handlers (`respond_to_exception`): a
    `WebSocketException` closes with its code; one nothing handles closes with
    1011 and is re-raised for the server to log. A `Response` returned before
    `accept()` is sent as the handshake's denial (``websocket.http.response``;
    where the server lacks it, a close with 1008, which it answers 403, as the
    ASGI spec says). Returned after `accept()` it can no longer be sent: the
    connection is closed normally (1000), as it would be for a handler that
    returns None, without a warning.
    """
    if not is_async_callable(func):
        raise RegistrationError(
            f"WebSocket handler {handler_name(func)} must be 'async def': it awaits messages"
        )
    path_names = set(route.template.param_names) if route is not None else set()
    plan = read_plan(func, path_names, WebSocket)

    async def app(scope: AnyScope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        try:
            result = await func(**_arguments(plan, websocket, None))
        except WebSocketDisconnect:
            return
        except Exception as exc:
            await respond_to_exception(scope, receive, send, exc, websocket)
            return
        if isinstance(result, Response):
            await _send_returned(websocket, result)

    return app


async def _send_returned(websocket: WebSocket, response: Response) -> None:
    if websocket.application_state is WebSocketState.CONNECTING:
        await _deny(websocket, response)
    else:
        await _close(websocket, _NORMAL_CLOSURE, "")


async def _deny(websocket: WebSocket, response: Response) -> None:
    # A client gone mid-handshake has nothing left to be told.
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.send_denial_response(response)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state in _OPEN:
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(code, reason)
