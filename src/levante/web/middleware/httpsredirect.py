"""Send plain-HTTP (and ``ws://``) requests to the same URL over TLS."""

from __future__ import annotations

from levante.asgi import AnyScope, ASGIApp, Receive, Send
from levante.web.datastructures import URL
from levante.web.middleware._asgi import deny
from levante.web.responses import RedirectResponse

#: The secure scheme for each insecure one.
SECURE_SCHEMES = {"http": "https", "ws": "wss"}

#: Ports dropped from the redirect target: the default ports of the old and new
#: scheme (as Starlette does; ``http://host:80/`` becomes ``https://host/``).
DEFAULT_PORTS = (80, 443)

#: 307 keeps the method and body of the request (RFC 9110 §15.4.8), as Starlette uses.
REDIRECT_STATUS = 307


class HTTPSRedirectMiddleware:
    """Redirect ``http`` to ``https`` and ``ws`` to ``wss`` with a 307.

    Behind a TLS-terminating proxy the scope's scheme is the proxy's only when the
    server trusts its forwarded headers (``--proxy-headers``); otherwise every
    request looks like plain HTTP and would be redirected forever.
    A WebSocket handshake gets the redirect as a denial response where the server
    supports it, else it is closed (browsers do not follow WebSocket redirects).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("scheme") in SECURE_SCHEMES:
            response = RedirectResponse(secure_url(scope), status_code=REDIRECT_STATUS)
            await deny(scope, receive, send, response)
            return
        await self.app(scope, receive, send)


def secure_url(scope: AnyScope) -> URL:
    """The URL of the request in `scope` with the secure scheme."""
    url = URL.from_scope(scope)
    scheme = SECURE_SCHEMES[url.scheme]
    if url.port in DEFAULT_PORTS:
        return url.replace(scheme=scheme, port=None)
    return url.replace(scheme=scheme)
