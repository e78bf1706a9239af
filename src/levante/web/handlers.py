"""Handlers compiled into ASGI apps, and the app's exception handlers applied to them.

Each handler's signature is read once, when its route is made, into a list of
what to pass it; per request the compiled app only fills that list in.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from levante.asgi import AnyScope, ASGIApp, Receive, Send
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


async def default_http_exception_handler(conn: HTTPConnection, exc: HTTPException) -> Response:
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in BODYLESS_STATUSES:
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(exc.detail, exc.status_code, headers)


def find_handler(scope: AnyScope, exc: Exception) -> ExceptionHandler | None:
    tables: HandlerTables | None = scope.get(HANDLERS_KEY)
    if tables is not None:
        by_status, by_class = tables
        if isinstance(exc, HTTPException) and exc.status_code in by_status:
            return by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in by_class:
                return by_class[cls]
    if isinstance(exc, HTTPException):
        return default_http_exception_handler  # type: ignore[return-value]
    return None


async def call_handler(handler: ExceptionHandler, conn: HTTPConnection, exc: Exception) -> Any:
    if is_async_callable(handler):
        return await handler(conn, exc)
    return await run_in_threadpool(handler, conn, exc)


async def respond_to_exception(
    scope: AnyScope, receive: Receive, send: Send, exc: Exception
) -> None:
    """Answer `exc` with the app's handler for it, or re-raise it."""
    handler = find_handler(scope, exc)
    if handler is None:
        raise exc
    request = Request(scope, receive, send)
    response = await call_handler(handler, request, exc)
    if response is not None:
        await response(scope, receive, send)


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
            await respond_to_exception(scope, receive, send, exc)
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
    """An ASGI app running `async def func(websocket, ...)`: a `WebSocketException`
    closes with its code; any other error closes with 1011 and is re-raised
    for the server to log."""
    if not is_async_callable(func):
        raise RegistrationError(
            f"WebSocket handler {handler_name(func)} must be 'async def': it awaits messages"
        )
    path_names = set(route.template.param_names) if route is not None else set()
    plan = read_plan(func, path_names, WebSocket)

    async def app(scope: AnyScope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        try:
            await func(**_arguments(plan, websocket, None))
        except WebSocketDisconnect:
            pass
        except WebSocketException as exc:
            await _close(websocket, exc.code, exc.reason)
        except Exception as exc:
            await _websocket_error(websocket, exc)

    return app


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state in (WebSocketState.CONNECTING, WebSocketState.CONNECTED):
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(code, reason)


async def _websocket_error(websocket: WebSocket, exc: Exception) -> None:
    handler = find_handler(websocket.scope, exc)
    if handler is not None and not isinstance(exc, HTTPException):
        await call_handler(handler, websocket, exc)
        return
    if isinstance(exc, HTTPException) and websocket.application_state is WebSocketState.CONNECTING:
        response = await default_http_exception_handler(websocket, exc)
        await websocket.send_denial_response(response)
        return
    await _close(websocket, 1011, "")
    raise exc
