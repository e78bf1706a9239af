"""The outermost layer of an `App`: an error no handler took becomes a 500.

With ``debug=True`` the 500 is a page with the traceback and the source around
each frame (HTML for browsers, plain text for other clients). Without it the
answer is the app's server-error handler's (registered for `500` or
`Exception`), or a bare 500 that tells the client nothing about the code.
Either way the exception is re-raised afterwards so that the server logs it.
"""

from __future__ import annotations

import html
import linecache
import traceback
from typing import Final

from levante.asgi import AnyScope, ASGIApp, Receive, Send
from levante.native import mypyc_attr
from levante.web.handlers import ExceptionHandler, SendProgress, handler_response
from levante.web.requests import Request
from levante.web.responses import HTMLResponse, PlainTextResponse, Response

#: Lines of source shown around each frame of the debug page.
CONTEXT_LINES: Final = 5


@mypyc_attr(allow_interpreted_subclasses=True)
class ServerErrorMiddleware:
    """Turns an unhandled exception before the response started into a 500.

    `handler(request, exc)` (the app's for `500` / `Exception`) answers it unless
    `debug` is on; it must return a `Response`. The exception is re-raised in
    every case, for the server to log.
    """

    def __init__(
        self, app: ASGIApp, handler: ExceptionHandler | None = None, debug: bool = False
    ) -> None:
        self.app = app
        self.handler = handler
        self.debug = debug

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        progress = SendProgress(send)
        try:
            await self.app(scope, receive, progress)
        except Exception as exc:
            if not progress.http_started:
                await self._answer(scope, receive, send, exc)
            raise

    async def _answer(self, scope: AnyScope, receive: Receive, send: Send, exc: Exception) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self._response(request, exc)
        except Exception:
            # The handler failed as well: the client still gets its 500, and the
            # server logs the handler's error, chained to `exc`.
            await _bare_500()(scope, receive, send)
            raise
        await response(scope, receive, send)

    async def _response(self, request: Request, exc: Exception) -> Response:
        # Debug mode wins over the handler, as in Starlette: the page is the point.
        if self.debug:
            return debug_response(request, exc)
        if self.handler is None:
            return _bare_500()
        return await handler_response(self.handler, request, exc)


def _bare_500() -> Response:
    return PlainTextResponse("Internal Server Error", 500)


def debug_response(request: Request, exc: BaseException) -> Response:
    """A 500 showing the traceback: HTML when the client accepts it, else text."""
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(debug_page(exc), 500)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return PlainTextResponse(text, 500)


def _frame_html(frame: traceback.FrameSummary) -> str:
    lineno = frame.lineno or 0
    first = max(lineno - CONTEXT_LINES, 1)
    rows = []
    for number in range(first, lineno + CONTEXT_LINES + 1):
        line = linecache.getline(frame.filename, number)
        if not line and number > lineno:
            break
        mark = ' class="here"' if number == lineno else ""
        rows.append(
            f"<tr{mark}><td>{number}</td><td><pre>{html.escape(line.rstrip())}</pre></td></tr>"
        )
    return (
        f"<details open><summary><code>{html.escape(frame.filename)}</code>, line {lineno},"
        f" in <code>{html.escape(frame.name)}</code></summary><table>{''.join(rows)}</table>"
        "</details>"
    )


def debug_page(exc: BaseException) -> str:
    """The HTML debug page: the exception, then each frame, innermost last."""
    frames = traceback.extract_tb(exc.__traceback__)
    title = html.escape(f"{type(exc).__name__}: {exc}")
    body = "".join(_frame_html(frame) for frame in frames)
    full = html.escape("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>500: "
        f"{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "pre{margin:0}td{padding:0 .5em;vertical-align:top}.here{background:#fdd}"
        "details{margin:1em 0;border:1px solid #ccc;padding:.5em}</style></head><body>"
        f"<h1>500 Internal Server Error</h1><h2>{title}</h2>{body}"
        f"<h3>Traceback</h3><pre>{full}</pre></body></html>"
    )
