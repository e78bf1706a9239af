"""Handlers compiled into ASGI apps, and the app's exception handlers applied to them.

Each handler's signature is read once, when its route is made, into a `Plan`
(plans.py); per request the compiled app only fills it in, calls the handler and
sends what it returns, encoded as its declared type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.native import chained, mypyc_attr
from levante.web.background import BackgroundTasks
from levante.web.concurrency import is_async_callable, run_in_threadpool
from levante.web.exceptions import (
    HandlerResultError,
    HTTPException,
    RegistrationError,
    WebSocketDisconnect,
    WebSocketException,
)
from levante.web.plans import (
    MAX_BODY_SIZE,
    UNSET,
    Plan,
    Solved,
    close_stack,
    handler_name,
    make_plan,
    response_encoder,
    response_type,
    solve,
    solve_now,
)
from levante.web.requests import HTTPConnection, Request
from levante.web.responses import BODYLESS_STATUSES, JSONResponse, PlainTextResponse, Response
from levante.web.validation import (
    PROBLEM_JSON,
    ProblemException,
    RequestValidationError,
    validation_problem,
)
from levante.web.websockets import WebSocket, WebSocketState

#: The scope key where an `App` leaves its exception handlers for the routes.
HANDLERS_KEY: Final = "levante.exception_handlers"

ExceptionHandler = Callable[[Any, Exception], Any]
#: (handlers by status code, handlers by exception class)
HandlerTables = tuple[dict[int, ExceptionHandler], dict[type[BaseException], ExceptionHandler]]


# -- exception handlers ----------------------------------------------------------
#
# One place answers an exception with the app's handlers: `respond_to_exception`.
# Compiled handlers call it at once, inside any route middleware (as Starlette's
# `request_response` does), the router calls it for its 404/405, and
# `ExceptionMiddleware` calls it for everything else the routes raise (raw ASGI
# endpoints, mounted apps). `500` and `Exception` are not in these tables: they
# name the server-error handler, which `ServerErrorMiddleware` runs (errors.py).

_CONNECTING: Final = WebSocketState.CONNECTING
_OPEN: Final = (_CONNECTING, WebSocketState.CONNECTED)
#: RFC 6455 §7.4.1 close codes used here.
_NORMAL_CLOSURE: Final = 1000
_POLICY_VIOLATION: Final = 1008
_INTERNAL_ERROR: Final = 1011


async def default_http_exception_handler(conn: HTTPConnection, exc: HTTPException) -> Response:
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ProblemException):
        return JSONResponse(exc.problem(), exc.status_code, headers, media_type=PROBLEM_JSON)
    if exc.status_code in BODYLESS_STATUSES:
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(exc.detail, exc.status_code, headers)


async def default_validation_handler(conn: HTTPConnection, exc: RequestValidationError) -> Response:
    """422 with the errors as an RFC 9457 problem document."""
    return JSONResponse(validation_problem(exc.errors), 422, media_type=PROBLEM_JSON)


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
    if isinstance(exc, RequestValidationError):
        return default_validation_handler  # type: ignore[return-value]
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
        raise chained(HandlerResultError(_not_a_response(handler, result, exc, "a Response")), exc)
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
            raise chained(HandlerResultError(_not_a_response(handler, result, exc, expected)), exc)
        if websocket.application_state is WebSocketState.CONNECTING:
            await _deny(websocket, result)
            return
    # Nothing took it, or an HTTP answer came after accept(), too late for the
    # handshake: close as an internal error, and re-raise for the server to log.
    await _close(websocket, _INTERNAL_ERROR, "")
    raise exc


@mypyc_attr(allow_interpreted_subclasses=True)
class ExceptionMiddleware:
    """Answers what a raw ASGI endpoint, a mounted app or a route's middleware
    raises with the app's exception handlers (Starlette's `ExceptionMiddleware`).

    Routes put it around what they call unless that is a compiled handler alone,
    which answers its own exceptions: a handler route pays for no extra `send`
    wrapper. The tables are the ones in the scope when the request arrives (a
    mounted `App` puts its own there). An exception raised after the HTTP response
    started (or after a WebSocket was closed or denied) is re-raised: the client
    already has an answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        tables = scope.get(HANDLERS_KEY)
        progress = SendProgress(send)
        try:
            await self.app(scope, receive, progress)
        except Exception as exc:
            if progress.started:
                raise
            scope[HANDLERS_KEY] = tables
            websocket = progress.websocket(scope, receive, send)
            await respond_to_exception(scope, receive, send, exc, websocket)


#: WebSocket messages an app sends, and the state each leaves the connection in.
_WEBSOCKET_STATE_AFTER: Final = {
    "websocket.accept": WebSocketState.CONNECTED,
    "websocket.http.response.start": WebSocketState.RESPONSE,
    "websocket.close": WebSocketState.DISCONNECTED,
}


class SendProgress:
    """A `send` that notes what the app has sent so far: enough to tell whether an
    answer to an exception can still go out. A plain call handing back the inner
    `send`'s awaitable: no coroutine of its own per message."""

    __slots__ = ("_send", "http_started", "websocket_state")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.http_started = False
        self.websocket_state = _CONNECTING

    def __call__(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.start":
            self.http_started = True
        elif kind != "http.response.body":  # the common message changes nothing here
            self.websocket_state = _WEBSOCKET_STATE_AFTER.get(kind, self.websocket_state)
        return self._send(message)

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


def _attach(response: Response, tasks: BackgroundTasks | None) -> None:
    if tasks is None or not tasks.tasks:
        return
    if response.background is None:
        response.background = tasks
    else:
        response.background = BackgroundTasks([response.background, tasks])


#: Plans kept per handler for distinct `dependency_overrides` sets (a test suite
#: makes many; the oldest is dropped).
_OVERRIDE_PLANS: Final = 16


class Compiled:
    """A handler's plan, and the plans made for the app's `dependency_overrides`
    (tests set them after the routes exist; each distinct set is planned once)."""

    def __init__(
        self, func: Callable[..., Any], route: Any, connection: type[HTTPConnection]
    ) -> None:
        options: dict[str, Any] = getattr(route, "options", {}) or {}
        self.arguments = {
            "path_names": set(route.template.param_names) if route is not None else set(),
            "connection": connection,
            "dependencies": list(options.get("dependencies") or ()),
            "max_body_size": options.get("max_body_size", MAX_BODY_SIZE),
        }
        self.func = func
        self.plan = make_plan(func, **self.arguments)
        self._overridden: dict[tuple[tuple[Any, int], ...], Plan] = {}

    def plan_for(self, scope: AnyScope) -> Plan:
        return self.plan_with(getattr(scope.get("app"), "dependency_overrides", None))

    def plan_with(self, overrides: dict[Any, Any] | None) -> Plan:
        if not overrides:
            return self.plan
        # By identity: an override may be an unhashable callable object.
        key = tuple((original, id(fake)) for original, fake in overrides.items())
        plan = self._overridden.get(key)
        if plan is None:
            plan = make_plan(self.func, overrides=dict(overrides), **self.arguments)
            if len(self._overridden) >= _OVERRIDE_PLANS:
                self._overridden.pop(next(iter(self._overridden)))
            self._overridden[key] = plan
        return plan


def compile_http_handler(func: Callable[..., Any], route: Any) -> ASGIApp:
    """An ASGI app that calls `func` with what its signature asks for (validated;
    422 otherwise) and sends what it returns: a `Response` as is, anything else as
    JSON of the declared response type."""
    compiled = Compiled(func, route, Request)
    if route is not None:
        route.compiled = compiled  # for the lifespan: app-scoped dependencies start with the app
    options: dict[str, Any] = getattr(route, "options", {}) or {}
    status_code: int = getattr(route, "status_code", None) or 200
    encode = response_encoder(func, response_type(func, options.get("response_model", UNSET)))
    call = _caller(func)

    async def app(scope: AnyScope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        solved = None
        try:
            plan = compiled.plan_for(scope)
            solved = solve_now(plan, request) if plan.immediate else await solve(plan, request)
            result = await call(solved.kwargs)
            response = _as_response(result, status_code, encode, solved)
        except Exception as exc:
            error = await _unwind(solved, exc)
            await respond_to_exception(scope, receive, send, error, request)
            return
        if solved.stack is None:
            await response(scope, receive, send)
            return
        # Generator dependencies clean up once the response is sent, before the
        # background tasks run (so a task does not hold a request's resources).
        background, response.background = response.background, None
        try:
            await response(scope, receive, send)
        except BaseException as exc:
            await close_stack(solved.stack, exc)  # the client left: roll back, not commit
            raise
        await close_stack(solved.stack, None)
        if background is not None:
            await background()

    return app


def _as_response(
    result: Any, status_code: int, encode: Callable[[Any], Any] | None, solved: Solved
) -> Response:
    if isinstance(result, Response):
        response = result
    elif status_code in BODYLESS_STATUSES:
        response = Response(status_code=status_code)  # 204/304: no body, whatever was returned
    else:
        content = encode(result) if encode is not None else result
        response = JSONResponse(content, status_code)
    if solved.response is not None:
        _merge_parameter_response(response, solved.response)
    _attach(response, solved.tasks)
    return response


def _merge_parameter_response(response: Response, given: Response) -> None:
    """What the handler set on its `response: Response` parameter: status, cookies,
    headers (FastAPI's rule: they apply to the response it returns)."""
    if given.status_code is not None:
        response.status_code = given.status_code
        if given.status_code in BODYLESS_STATUSES:  # RFC 9110 §15.3.5: no content
            response.body = b""
            response.raw_headers = [
                h for h in response.raw_headers if h[0] not in (b"content-length", b"content-type")
            ]
    framing = (b"content-length", b"content-type")
    response.raw_headers.extend(h for h in given.raw_headers if h[0] not in framing)


async def _unwind(solved: Solved | None, exc: Exception) -> Exception:
    """Let generator dependencies see the handler's exception; what they raise
    instead (an `HTTPException` for a failed transaction, say) is what is answered."""
    if solved is None or solved.stack is None:
        return exc
    try:
        await close_stack(solved.stack, exc)
    except Exception as raised:
        return raised
    return exc


def _caller(func: Callable[..., Any]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    if is_async_callable(func):

        def call_async(kwargs: dict[str, Any]) -> Awaitable[Any]:
            return func(**kwargs)  # type: ignore[no-any-return]  # the coroutine, awaited by the caller

        return call_async

    async def call_sync(kwargs: dict[str, Any]) -> Any:
        return await run_in_threadpool(func, **kwargs)

    return call_sync


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
    compiled = Compiled(func, route, WebSocket)
    if route is not None:
        route.compiled = compiled

    async def app(scope: AnyScope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        solved = None
        try:
            solved = await solve(compiled.plan_for(scope), websocket)
            result = await func(**solved.kwargs)
        except WebSocketDisconnect:
            await _unwind(solved, WebSocketDisconnect())
            return
        except RequestValidationError as exc:
            # FastAPI's answer: refuse the handshake with 1008 (policy violation).
            await _unwind(solved, exc)
            await _close(websocket, _POLICY_VIOLATION, _reason(exc))
            return
        except Exception as exc:
            error = await _unwind(solved, exc)
            await respond_to_exception(scope, receive, send, error, websocket)
            return
        if solved.stack is not None:
            await solved.stack.aclose()
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


def _reason(exc: RequestValidationError) -> str:
    # A close reason fits in 123 bytes (RFC 6455 §5.5: 125 less the code).
    first = exc.errors[0]
    text = f"invalid {'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return text.encode()[:123].decode(errors="ignore")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state in _OPEN:
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(code, reason)
