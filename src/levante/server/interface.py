"""``--interface``: which calling convention the app speaks. ASGI 3 apps are called
as they are; WSGI apps (Flask, classic Django) run through a2wsgi's adapter, which
calls them in a bounded thread pool and streams request and response bodies."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from levante.server.errors import ConfigError

if TYPE_CHECKING:
    from levante.server.config import Config

#: PEP 3333's names, and Falcon's (``env``).
_WSGI_NAMES = (("environ", "start_response"), ("env", "start_response"))


def detect(app: Any) -> str:
    """'asgi3' or 'wsgi' from the app's call signature; 'asgi3' when it cannot tell.

    Unambiguous cases only: an ``async def`` (or an object whose ``__call__`` is
    one) is ASGI; a callable taking exactly ``(environ, start_response)``, the
    names PEP 3333 uses and Flask and Django keep, is WSGI."""
    plain = inspect.isfunction(app) or inspect.ismethod(app) or inspect.isclass(app)
    call = app if plain else type(app).__call__  # an object: its class's __call__ says
    if inspect.iscoroutinefunction(call):
        return "asgi3"
    try:
        parameters = list(inspect.signature(app).parameters)
    except (TypeError, ValueError):
        return "asgi3"
    return "wsgi" if tuple(parameters) in _WSGI_NAMES else "asgi3"


def adapt(app: Any, config: Config) -> Any:
    """`app` as an ASGI 3 app, following ``--interface``."""
    interface = detect(app) if config.interface == "auto" else config.interface
    if interface == "asgi3":
        return app
    try:
        from a2wsgi import WSGIMiddleware
    except ImportError:
        raise ConfigError("--interface wsgi needs a2wsgi: pip install 'levante[wsgi]'") from None
    return WSGIMiddleware(app, workers=config.wsgi_threads)
