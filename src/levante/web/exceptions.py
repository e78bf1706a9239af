"""Exceptions of `levante.web`: one root, with what to answer carried on the error."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus


class WebError(Exception):
    """Root of every exception `levante.web` raises on purpose."""


class RegistrationError(WebError, TypeError):
    """A handler cannot be registered as written; the message names it and the parameter."""


class HandlerResultError(WebError, TypeError):
    """An exception handler returned what cannot be sent; the message names the handler."""


class HTTPException(WebError):
    """Raise in a handler to answer with `status_code` (and `detail` as the body).

    The app's exception handlers turn it into a response: by default a plain-text
    body with `detail`, or no body for statuses that forbid one.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = HTTPStatus(status_code).phrase
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(WebError):
    """Raise in a WebSocket handler to close the connection with `code` and `reason`."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class WebSocketDisconnect(WebError):
    """The peer closed the WebSocket (or it was closed); `code` is the close code."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""


class ClientDisconnect(WebError):
    """The client went away while the request body was being read."""


class RouteConflict(WebError):
    """Two routes claim the same path (and method); the message names both."""


class NoMatchFound(WebError):
    """`url_path_for` found no route with that name and those parameters."""


class MultiPartException(HTTPException):
    """A form body is malformed or breaks a limit: answered 400, or 413 for a file
    over its size limit, unless the app handles it."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message)
        self.message = message


class ASGIUsageError(WebError, RuntimeError):
    """The code used the ASGI connection wrongly; the message says what to do instead."""
