"""Cross-Origin Resource Sharing, as the Fetch standard's CORS protocol defines it
(https://fetch.spec.whatwg.org/#http-cors-protocol).

Preflight requests (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
are answered here and never reach the app; other requests go through and their
responses get ``Access-Control-Allow-Origin`` when the origin is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.datastructures import MutableHeaders
from levante.web.middleware._asgi import request_header, respond, response_headers
from levante.web.responses import PlainTextResponse, Response

#: Methods a page may send cross-origin without a preflight, so a preflight for
#: them is never refused for the method (Fetch: "CORS-safelisted method").
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})

#: Request headers allowed whatever `allow_headers` says. Fetch safelists these
#: names only for some values (Content-Type only for form types); Starlette allows
#: them for any value, and we do the same so a JSON POST needs no configuration.
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})

#: How long a browser may cache a preflight answer, in seconds: Starlette's default.
#: Browsers cap it anyway (Chromium at 7200 s, Firefox at 86400 s).
DEFAULT_MAX_AGE = 600

#: What a preflight answer depends on (Private-Network too: refused unless allowed).
_PREFLIGHT_VARY = (
    "Origin",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
    "Access-Control-Request-Private-Network",
)


class CORSMiddleware:
    """Answer CORS preflights and add CORS headers to responses (Starlette's options).

    `allow_origins` are exact origins (``"https://example.com"``, no path or
    trailing slash) or ``"*"``; `allow_origin_regex` must match a whole origin.
    With `allow_credentials` the response names the request's origin instead of
    ``*`` (Fetch ignores ``*`` on credentialed requests) and likewise echoes the
    requested method and headers when those are ``*``. Beware that credentials
    with ``allow_origins=["*"]`` let every site make credentialed requests.
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Collection[str] = (),
        allow_methods: Collection[str] = ("GET",),
        allow_headers: Collection[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | None = None,
        allow_private_network: bool = False,
        expose_headers: Collection[str] = (),
        max_age: int = DEFAULT_MAX_AGE,
    ) -> None:
        _check_origins(allow_origins)
        self.app = app
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(allow_origins)
        self.origin_regex = None if allow_origin_regex is None else re.compile(allow_origin_regex)
        self.any_method = "*" in allow_methods
        self.methods = tuple(allow_methods)
        self.any_header = "*" in allow_headers
        self.headers = SAFELISTED_HEADERS | {h.lower() for h in allow_headers}
        self.credentials = allow_credentials
        self.private_network = allow_private_network
        self.expose_any = "*" in expose_headers
        self.expose = ", ".join(expose_headers)
        self.max_age = max_age
        # Only ``*`` without credentials gives every origin the same answer; in every
        # other case caches must keep one response per Origin (Fetch, "CORS protocol
        # and HTTP caches").
        self.varies_by_origin = not self.any_origin or allow_credentials
        self.preflight_vary = ", ".join(_PREFLIGHT_VARY)

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_header(scope, "origin")
        method = request_header(scope, "access-control-request-method")
        if origin is not None and method is not None and scope["method"] == "OPTIONS":
            response = self.preflight_response(scope, origin, method)
            await respond(response, scope, receive, send)
            return
        await self.app(scope, receive, self._cors_send(send, origin))

    def is_allowed_origin(self, origin: str) -> bool:
        """True when responses may be shared with `origin`."""
        if self.any_origin or origin in self.origins:
            return True
        return self.origin_regex is not None and self.origin_regex.fullmatch(origin) is not None

    def preflight_response(self, scope: AnyScope, origin: str, method: str) -> Response:
        """The answer to a preflight: 200 with the grants, or 400 naming what failed."""
        requested = _split_names(request_header(scope, "access-control-request-headers"))
        private = request_header(scope, "access-control-request-private-network") is not None
        failures = self._preflight_failures(origin, method, requested, private)
        if failures:
            text = "Disallowed CORS " + ", ".join(failures)
            return PlainTextResponse(text, status_code=400, headers={"vary": self.preflight_vary})
        headers = {
            "vary": self.preflight_vary,
            "access-control-allow-origin": origin if self.varies_by_origin else "*",
            "access-control-allow-methods": method if self.any_method else ", ".join(self.methods),
            "access-control-max-age": str(self.max_age),
        }
        if requested:
            headers["access-control-allow-headers"] = ", ".join(requested)
        if self.credentials:
            headers["access-control-allow-credentials"] = "true"
        if private:
            headers["access-control-allow-private-network"] = "true"
        return PlainTextResponse("OK", status_code=200, headers=headers)

    def _preflight_failures(
        self, origin: str, method: str, requested: list[str], private: bool
    ) -> list[str]:
        failures = []
        if not self.is_allowed_origin(origin):
            failures.append("origin")
        if not (self.any_method or method in self.methods or method in SAFELISTED_METHODS):
            failures.append("method")
        if not self.any_header and any(name not in self.headers for name in requested):
            failures.append("headers")
        if private and not self.private_network:
            failures.append("private-network")
        return failures

    def _cors_send(self, send: Send, origin: str | None) -> Send:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.add_response_headers(response_headers(message), origin)
            await send(message)

        return send_with_cors

    def add_response_headers(self, headers: MutableHeaders, origin: str | None) -> None:
        """Add the CORS headers of an actual (non-preflight) response to `headers`."""
        if self.varies_by_origin:
            headers.add_vary_header("Origin")
        if origin is None or not self.is_allowed_origin(origin):
            return
        headers["access-control-allow-origin"] = origin if self.varies_by_origin else "*"
        if self.credentials:
            headers["access-control-allow-credentials"] = "true"
        expose = self._exposed(headers)
        if expose:
            headers["access-control-expose-headers"] = expose

    def _exposed(self, headers: MutableHeaders) -> str:
        if self.expose_any and self.credentials:
            # Fetch reads ``*`` literally on credentialed responses: name every header.
            names = dict.fromkeys(
                name for name in headers if not name.startswith("access-control-")
            )
            names.pop("set-cookie", None)
            return ", ".join(names)
        return self.expose


def _split_names(value: str | None) -> list[str]:
    if not value:
        return []
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _check_origins(origins: Collection[str]) -> None:
    if isinstance(origins, str):
        raise TypeError(f"allow_origins must be a list of origins, not the string {origins!r}")
    for origin in origins:
        _scheme, sep, rest = origin.partition("://")
        if sep and "/" in rest:
            raise ValueError(
                f"allow_origins entry {origin!r} has a path; an origin is scheme://host[:port] "
                f"with no trailing slash, e.g. {origin[: len(_scheme) + 3 + rest.index('/')]!r}"
            )
