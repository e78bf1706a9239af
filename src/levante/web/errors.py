"""The outermost layer of an `App`: an error no handler took becomes a 500.

With ``debug=True`` the 500 is a page with the traceback and the source around
each frame (HTML for browsers, plain text for other clients). Without it the
client learns nothing about the code. The exception is re-raised afterwards so
that the server logs it.
"""

from __future__ import annotations

import html
import linecache
import traceback
from typing import Any

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.handlers import ExceptionHandler, call_handler
from levante.web.requests import Request
from levante.web.responses import HTMLResponse, PlainTextResponse, Response

#: Lines of source shown around each frame of the debug page.
CONTEXT_LINES = 5


class ServerErrorMiddleware:
    """Turns an unhandled exception before the response started into a 500."""

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
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if not started:
                response = await self._response(scope, receive, send, exc)
                await response(scope, receive, send)
            raise

    async def _response(self, scope: AnyScope, receive: Receive, send: Send, exc: Exception) -> Any:
        request = Request(scope, receive, send)
        if self.debug:
            return debug_response(request, exc)
        if self.handler is not None:
            result = await call_handler(self.handler, request, exc)
            if isinstance(result, Response):
                return result
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
