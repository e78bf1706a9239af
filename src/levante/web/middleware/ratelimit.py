"""Rate limiting: at most `limit` requests per `window` seconds for each client key.

Refused requests get 429 with ``Retry-After`` (RFC 6585 §4). Every response carries
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``, the fields of
the IETF draft "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-06).
The count lives in a `RateLimitStore`; `MemoryStore` keeps it in the process, so
with several worker processes each one counts on its own.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.datastructures import MutableHeaders
from levante.web.middleware._asgi import (
    deny,
    path_matches,
    response_headers,
)
from levante.web.responses import PlainTextResponse

#: Keys a `MemoryStore` holds at most; past it the least recently seen key is
#: forgotten (that client starts afresh). 100 000 keys take about 15 MB.
DEFAULT_MAX_KEYS = 100_000

#: Stale keys a `MemoryStore` looks at per hit: expiry by sampling a few entries
#: per operation keeps memory bounded at constant cost (Redis expires keys so).
EVICTIONS_PER_HIT = 2

#: WebSocket close code 1013, "try again later" (IANA WebSocket close code registry),
#: for a refused handshake when the server cannot send a 429.
WS_TRY_AGAIN_LATER = 1013


class RateLimitResult(NamedTuple):
    """The outcome of one hit: whether to allow it, what is left of the quota, and
    the seconds until the quota is whole again (or, when refused, until a
    request would be allowed)."""

    allowed: bool
    remaining: int
    reset_after: float


class RateLimitStore(Protocol):
    """Where hits are counted. Implement it over Redis or a database to share
    limits between processes; ``hit`` must count atomically."""

    async def hit(self, key: str, limit: int, window: float) -> RateLimitResult:
        """Count a request for `key` against `limit` requests per `window` seconds."""
        ...


class MemoryStore:
    """Counts in this process's memory with GCRA, the generic cell rate algorithm.

    GCRA keeps one number per key, the time its quota is next whole, and allows a
    burst of `limit` requests, then one every ``window / limit`` seconds: a
    sliding window without a log of timestamps. `clock` is injectable for tests.
    Memory is bounded: keys whose quota is whole again are dropped a few at a
    time, and at `max_keys` the least recently seen key goes.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.clock = clock
        self.max_keys = max_keys
        # key -> theoretical arrival time (TAT); in order of last hit, oldest first
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, limit: int, window: float) -> RateLimitResult:
        """Count a request for `key`; see `RateLimitStore.hit`."""
        now = self.clock()
        interval = window / limit
        tat = max(self._tat.pop(key, now), now)
        self._evict(now)
        allow_at = tat - window + interval  # earliest time this request fits
        if now < allow_at:
            self._tat[key] = tat
            return RateLimitResult(False, 0, allow_at - now)
        tat += interval
        self._tat[key] = tat
        remaining = math.floor((window - (tat - now)) / interval + 1e-9)
        return RateLimitResult(True, remaining, tat - now)

    def _evict(self, now: float) -> None:
        for key in list(itertools.islice(self._tat, EVICTIONS_PER_HIT)):
            if self._tat[key] <= now:
                del self._tat[key]
        while len(self._tat) >= self.max_keys:
            del self._tat[next(iter(self._tat))]

    def __len__(self) -> int:
        return len(self._tat)


def client_ip(scope: AnyScope) -> str:
    """The client's address from the scope (run the server with ``--proxy-headers``
    behind a proxy, or every client is the proxy)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimitMiddleware:
    """Answer 429 to clients past `limit` requests in `window` seconds.

    `key` maps a scope to the string requests are counted under (default: the
    client IP), or to None to let the request through uncounted. Paths in
    `exempt_paths` are never limited (an entry ending in ``/`` exempts everything
    under it). WebSocket handshakes count too; a refused one is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int = 60,
        window: float = 60.0,
        key: Callable[[AnyScope], str | None] = client_ip,
        store: RateLimitStore | None = None,
        exempt_paths: Collection[str] = (),
        headers: bool = True,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"need limit >= 1 and window > 0, got {limit} per {window} s")
        self.app = app
        self.limit = limit
        self.window = window
        self.key = key
        self.store: RateLimitStore = MemoryStore() if store is None else store
        self.exempt_paths = frozenset(exempt_paths)
        self.headers = headers

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        key = self.key_for(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        result = await self.store.hit(key, self.limit, self.window)
        if not result.allowed:
            await deny(scope, receive, send, self.refusal(result), WS_TRY_AGAIN_LATER)
        elif self.headers:
            await self.app(scope, receive, self._send_with_headers(send, result))
        else:
            await self.app(scope, receive, send)

    def key_for(self, scope: AnyScope) -> str | None:
        """The key to count this connection under, None when it is not limited."""
        if scope["type"] not in ("http", "websocket"):
            return None
        if path_matches(scope["path"], self.exempt_paths):
            return None
        return self.key(scope)

    def refusal(self, result: RateLimitResult) -> PlainTextResponse:
        """The 429 response for a refused hit."""
        response = PlainTextResponse("Too Many Requests", status_code=429)
        # Retry-After is whole seconds (RFC 9110 §10.2.3): round up, never say 0.
        response.headers["retry-after"] = str(max(1, math.ceil(result.reset_after)))
        if self.headers:
            self.add_headers(response.headers, result)
        return response

    def add_headers(self, headers: MutableHeaders, result: RateLimitResult) -> None:
        """Add the draft's RateLimit-* fields for `result`."""
        headers["ratelimit-limit"] = str(self.limit)
        headers["ratelimit-remaining"] = str(result.remaining)
        headers["ratelimit-reset"] = str(math.ceil(result.reset_after))

    def _send_with_headers(self, send: Send, result: RateLimitResult) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.add_headers(response_headers(message), result)
            await send(message)

        return send_with_headers
