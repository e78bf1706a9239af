"""Refuse requests whose Host header names a host the app does not serve.

Guards against Host-header attacks (poisoned password-reset links, cache
poisoning) when the server answers for any name, as Django's ALLOWED_HOSTS does.
"""

from __future__ import annotations

from collections.abc import Collection

from levante.asgi import AnyScope, ASGIApp, Receive, Send
from levante.web.datastructures import URL
from levante.web.middleware._asgi import deny, request_header
from levante.web.responses import PlainTextResponse, RedirectResponse


class TrustedHostMiddleware:
    """Answer 400 "Invalid host header" unless the Host is one of `allowed_hosts`.

    Entries are host names (``"example.com"``), ``"*.example.com"`` for any
    subdomain (not the bare domain), or ``"*"`` for any host. Matching ignores
    case, the port and a trailing dot. With `www_redirect`, a request for
    ``example.com`` when only ``www.example.com`` is allowed is redirected there.
    A refused WebSocket handshake is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Collection[str] = ("*",),
        www_redirect: bool = True,
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError(f"allowed_hosts must be a list of hosts, not {allowed_hosts!r}")
        for pattern in allowed_hosts:
            _check_pattern(pattern)
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.hosts = frozenset(p.lower().rstrip(".") for p in allowed_hosts if "*" not in p)
        self.suffixes = tuple(
            p[1:].lower().rstrip(".") for p in allowed_hosts if p.startswith("*.")
        )
        self.www_redirect = www_redirect

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _host_name(request_header(scope, "host") or "")
        if self.is_allowed(host):
            await self.app(scope, receive, send)
        elif self.www_redirect and "www." + host in self.hosts:
            # Only a host named exactly (Starlette's rule): with `*.api.example.com`,
            # `api.example.com` is refused, not sent to `www.api.example.com`.
            url = URL.from_scope(scope)
            redirect = url.replace(netloc="www." + url.netloc)
            await deny(scope, receive, send, RedirectResponse(redirect))
        else:
            await deny(scope, receive, send, PlainTextResponse("Invalid host header", 400))

    def is_allowed(self, host: str) -> bool:
        """True when `host` (a lowercase name without port) may be served."""
        if not host:
            return self.allow_any
        return self.allow_any or host in self.hosts or host.endswith(self.suffixes)


def _check_pattern(pattern: str) -> None:
    if pattern == "*" or "*" not in pattern:
        return
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        return
    raise ValueError(f"allowed host {pattern!r}: a wildcard is '*' alone or leads as '*.domain'")


def _host_name(host: str) -> str:
    """The name in a Host header value: no port, lowercase, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal (RFC 3986 §3.2.2)
        name, bracket, _port = host.partition("]")
        return name + bracket if bracket else ""
    return host.partition(":")[0].rstrip(".")
