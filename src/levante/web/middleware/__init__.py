"""Middleware: pure ASGI apps that wrap another app.

Each one is a class called with ``(app, **options)`` whose instances are ASGI
apps; they edit the ``send``/``receive`` messages as they pass and never buffer a
whole response. An app lists them with `Middleware`::

    App(middleware=[Middleware(CORSMiddleware, allow_origins=["https://example.com"])])

The first in the list is the outermost: it sees the request first and the
response last.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, Protocol

from levante.asgi import ASGIApp
from levante.web.middleware.compression import CompressionMiddleware, GZipMiddleware
from levante.web.middleware.cors import CORSMiddleware
from levante.web.middleware.csrf import CSRFMiddleware
from levante.web.middleware.httpsredirect import HTTPSRedirectMiddleware
from levante.web.middleware.ratelimit import (
    MemoryStore,
    RateLimitMiddleware,
    RateLimitResult,
    RateLimitStore,
)
from levante.web.middleware.requestid import RequestIDLogFilter, RequestIDMiddleware, request_id
from levante.web.middleware.sessions import SessionMiddleware
from levante.web.middleware.timing import ServerTimingMiddleware, add_server_timing, server_timing
from levante.web.middleware.trustedhost import TrustedHostMiddleware

__all__ = [
    "CORSMiddleware",
    "CSRFMiddleware",
    "CompressionMiddleware",
    "GZipMiddleware",
    "HTTPSRedirectMiddleware",
    "MemoryStore",
    "Middleware",
    "RateLimitMiddleware",
    "RateLimitResult",
    "RateLimitStore",
    "RequestIDLogFilter",
    "RequestIDMiddleware",
    "ServerTimingMiddleware",
    "SessionMiddleware",
    "TrustedHostMiddleware",
    "add_server_timing",
    "request_id",
    "server_timing",
]

_P = ParamSpec("_P")

# Permissive app type for the factory protocol, so that middleware typed with
# Starlette's or asgiref's app types are accepted as well as ours.
_AnyApp = Callable[[Any, Any, Any], Awaitable[None]]


class _MiddlewareFactory(Protocol[_P]):
    def __call__(self, app: _AnyApp, /, *args: _P.args, **kwargs: _P.kwargs) -> _AnyApp: ...


class Middleware:
    """One middleware of an app: the class (or factory) and its options.

    ``Middleware(CORSMiddleware, allow_origins=["*"])`` calls
    ``CORSMiddleware(app, allow_origins=["*"])`` when the app builds its stack. It
    unpacks as ``cls, args, kwargs``, as Starlette's does, so code written for
    Starlette's middleware lists works unchanged.
    """

    __slots__ = ("args", "cls", "kwargs")

    def __init__(self, cls: _MiddlewareFactory[_P], *args: _P.args, **kwargs: _P.kwargs) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` wrapped in this middleware."""
        wrapped: ASGIApp = self.cls(app, *self.args, **self.kwargs)
        return wrapped

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        name = getattr(self.cls, "__name__", repr(self.cls))
        args = [repr(value) for value in self.args]
        options = [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join([name, *args, *options])})"
