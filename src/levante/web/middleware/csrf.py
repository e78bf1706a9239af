"""Cross-site request forgery protection: a signed double-submit cookie, plus the
browser's own word on where a request comes from (``Sec-Fetch-Site``, ``Origin``).

A page gets the token from the ``csrftoken`` cookie (readable by JavaScript) or
from ``scope["csrf_token"]`` when it renders a form, and sends it back on unsafe
requests in the ``X-CSRFToken`` header (or, with `form_field`, in a urlencoded form).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Literal
from urllib.parse import parse_qs

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.middleware._asgi import (
    deny,
    path_matches,
    request_cookie,
    request_header,
    response_headers,
)
from levante.web.middleware._signing import Signer, b64encode
from levante.web.responses import PlainTextResponse

#: Methods that must not change state (RFC 9110 §9.2.1), so need no token: Django's list.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: The token cookie lives a year, as Django's CSRF_COOKIE_AGE.
DEFAULT_MAX_AGE = 365 * 24 * 60 * 60

#: Random bytes in a token: 256 bits, as OWASP's cheat sheet asks of CSRF tokens.
TOKEN_BYTES = 32

#: The most form body read to find the token field, Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
MAX_FORM_SIZE = 2_621_440

#: ``Sec-Fetch-Site`` values of requests a page of this site made, or the user
#: typed in: the rule of Go's net/http CrossOriginProtection.
SAME_ORIGIN_FETCH_SITES = frozenset({"same-origin", "none"})

_FORM_TYPE = "application/x-www-form-urlencoded"


class CSRFMiddleware:
    """Refuse unsafe requests (POST, PUT, ...) that a different site could have forged.

    An unsafe request passes when: it is not cross-site by ``Sec-Fetch-Site`` or,
    lacking that, by ``Origin`` against ``Host`` (origins in `trusted_origins`
    excepted), and its `header_name` header (or `form_field`) equals the
    `cookie_name` cookie, whose signature must verify. Otherwise: 403. Safe
    requests get the cookie when they lack a valid one. The current token is in
    ``scope["csrf_token"]``. Paths in `exempt_paths` are not checked (an entry
    ending in ``/`` exempts everything under it).
    """

    def __init__(
        self,
        app: ASGIApp,
        secret: str | bytes,
        cookie_name: str = "csrftoken",
        header_name: str = "x-csrftoken",
        safe_methods: Collection[str] = SAFE_METHODS,
        exempt_paths: Collection[str] = (),
        trusted_origins: Collection[str] = (),
        form_field: str | None = None,
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        cookie_secure: bool = False,
        cookie_samesite: Literal["lax", "strict", "none"] = "lax",
        max_age: int = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.signer = Signer(secret, "csrf")
        self.cookie_name = cookie_name
        self.header_name = header_name.lower()
        self.safe_methods = frozenset(safe_methods)
        self.exempt_paths = frozenset(exempt_paths)
        self.trusted_origins = frozenset(trusted_origins)
        self.form_field = form_field
        self.max_age = max_age
        self.clock = clock
        attributes = [f"Path={cookie_path}", f"Max-Age={max_age}", f"SameSite={cookie_samesite}"]
        if cookie_domain is not None:
            attributes.append(f"Domain={cookie_domain}")
        if cookie_secure:
            attributes.append("Secure")
        self.cookie_attributes = "; ".join(attributes)

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = self.valid_token(request_cookie(scope, self.cookie_name))
        if scope["method"] in self.safe_methods or path_matches(scope["path"], self.exempt_paths):
            await self._pass(scope, receive, send, token)
            return
        problem = self.cross_site_problem(scope)
        if problem is None:
            sent, receive = await self._sent_token(scope, receive)
            if token is None or sent is None or not _same_token(sent, token):
                problem = "CSRF token missing or incorrect"
        if problem is not None:
            await deny(scope, receive, send, PlainTextResponse(problem, status_code=403))
            return
        await self._pass(scope, receive, send, token)

    def valid_token(self, cookie: str | None) -> str | None:
        """`cookie` if it is a token this middleware signed and not too old."""
        if cookie and self.signer.unsign(cookie, self.max_age, self.clock()) is not None:
            return cookie
        return None

    def new_token(self) -> str:
        """A fresh signed token."""
        return self.signer.sign(b64encode(secrets.token_bytes(TOKEN_BYTES)), int(self.clock()))

    def cross_site_problem(self, scope: AnyScope) -> str | None:
        """Why the browser's headers show the request as cross-site, or None."""
        origin = request_header(scope, "origin")
        if origin is not None and origin in self.trusted_origins:
            return None
        fetch_site = request_header(scope, "sec-fetch-site")
        if fetch_site is not None:
            return None if fetch_site in SAME_ORIGIN_FETCH_SITES else "Cross-site request refused"
        if origin is None:
            return None  # not a browser, or an old one: the token decides
        host = request_header(scope, "host") or ""
        _scheme, _, origin_host = origin.partition("://")
        if origin_host and origin_host.lower() == host.lower():
            return None
        return "Cross-origin request refused"

    async def _pass(self, scope: AnyScope, receive: Receive, send: Send, token: str | None) -> None:
        if token is not None:
            scope["csrf_token"] = token
            await self.app(scope, receive, send)
            return
        scope["csrf_token"] = new = self.new_token()
        header = f"{self.cookie_name}={new}; {self.cookie_attributes}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers(message).append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _sent_token(self, scope: AnyScope, receive: Receive) -> tuple[str | None, Receive]:
        """The token the request carries, and the `receive` the app should use."""
        sent = request_header(scope, self.header_name)
        if sent is not None or self.form_field is None:
            return sent, receive
        content_type = request_header(scope, "content-type") or ""
        if content_type.partition(";")[0].strip().lower() != _FORM_TYPE:
            return None, receive
        return await _form_token(receive, self.form_field)


def _same_token(sent: str, token: str) -> bool:
    # compare_digest refuses non-ASCII str (TypeError); a header is latin-1 text, so
    # compare bytes: a forged non-ASCII token is just a wrong one (403, not 500).
    return hmac.compare_digest(
        sent.encode("latin-1", "replace"), token.encode("latin-1", "replace")
    )


async def _form_token(receive: Receive, field: str) -> tuple[str | None, Receive]:
    """Read a urlencoded body for `field`; give back a `receive` that replays it."""
    messages: deque[Message] = deque()
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > MAX_FORM_SIZE:
            return None, _replay(messages, receive)
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    values = parse_qs(body.decode("latin-1")).get(field)
    return (values[0] if values else None), _replay(messages, receive)


def _replay(messages: deque[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        if messages:
            return messages.popleft()
        return await receive()

    return replay
