"""Sessions kept in a signed cookie: the data travels with the client, signed so it
cannot be changed, but readable by it (base64 JSON). Keep secrets out of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import msgspec

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.middleware._asgi import request_cookie, response_headers
from levante.web.middleware._signing import Signer, b64decode, b64encode

logger = logging.getLogger("levante.web")

#: Starlette's default session lifetime: two weeks, in seconds.
DEFAULT_MAX_AGE = 14 * 24 * 60 * 60

#: Browsers need only keep cookies up to 4096 bytes (RFC 6265 §6.1) and drop larger
#: ones silently; we warn, since the session would then be lost without a trace.
MAX_COOKIE_SIZE = 4096

_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


class SessionMiddleware:
    """Give each request ``scope["session"]``, a dict saved in a signed cookie.

    The cookie is HMAC-SHA256 signed with a key derived from `secret_key` and
    carries its signing time: a cookie that was tampered with or is older than
    `max_age` seconds gives an empty session, never an error. The cookie is set
    only when the session changed, and also once more than half of `max_age`
    has passed since it was signed, so an active user's session does not expire
    under them. An emptied session clears the cookie. Values must be JSON
    types. WebSocket handlers can read the session but not change the cookie.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | bytes,
        session_cookie: str = "session",
        max_age: int | None = DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if same_site.lower() == "none" and not https_only:
            raise ValueError(
                "same_site='none' needs https_only=True: browsers refuse SameSite=None "
                "cookies without Secure"
            )
        self.app = app
        self.signer = Signer(secret_key, "sessions")
        self.cookie_name = session_cookie
        self.max_age = max_age
        self.clock = clock
        self.attributes = _attributes(path, max_age, same_site, https_only, domain)
        clear = _attributes(path, None, same_site, https_only, domain)
        self.clear_header = f"{session_cookie}=; {clear}; {_EXPIRED}"

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookie = request_cookie(scope, self.cookie_name)
        loaded = self.load(cookie)
        scope["session"] = dict(loaded.session)

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = self.cookie_header(scope.get("session"), cookie is not None, loaded)
                if header is not None:
                    response_headers(message).append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_session)

    def load(self, cookie: str | None) -> _Loaded:
        """The session in a request's cookie: empty when absent, forged or expired."""
        if not cookie:
            return _EMPTY
        signed = self.signer.unsign(cookie, self.max_age, self.clock())
        data = None if signed is None else b64decode(signed)
        if signed is None or data is None:
            return _EMPTY
        try:
            session = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return _EMPTY
        if not isinstance(session, dict):
            return _EMPTY
        return _Loaded(signed, session, int(cookie.rsplit(".", 2)[1]))

    def cookie_header(self, session: Any, had_cookie: bool, loaded: _Loaded) -> str | None:
        """The Set-Cookie value the response needs, or None to leave the cookie be."""
        if not session:
            return self.clear_header if had_cookie else None
        payload = b64encode(msgspec.json.encode(session))
        if payload == loaded.payload and not self._due_for_refresh(loaded.signed_at):
            return None
        value = self.signer.sign(payload, int(self.clock()))
        header = f"{self.cookie_name}={value}; {self.attributes}"
        if len(header) > MAX_COOKIE_SIZE:
            logger.warning(
                "The session cookie is %d bytes; browsers drop cookies over %d bytes, "
                "so this session will be lost. Keep less in the session.",
                len(header),
                MAX_COOKIE_SIZE,
            )
        return header

    def _due_for_refresh(self, signed_at: int) -> bool:
        return self.max_age is not None and self.clock() - signed_at > self.max_age / 2


class _Loaded(NamedTuple):
    payload: str | None
    session: dict[str, Any]
    signed_at: int


_EMPTY = _Loaded(None, {}, 0)


def _attributes(
    path: str, max_age: int | None, same_site: str, secure: bool, domain: str | None
) -> str:
    parts = [f"Path={path}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if domain is not None:
        parts.append(f"Domain={domain}")
    parts += ["HttpOnly", f"SameSite={same_site}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
