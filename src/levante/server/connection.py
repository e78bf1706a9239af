"""What every HTTP connection does the same way, whatever its version.

HTTP/1.1 and HTTP/2 differ on the wire; the request scope they hand the app,
the addresses they report, the ASGI extensions they offer, the answer when
``--limit-concurrency`` is reached and the bookkeeping of a finished response
are one piece of code, here.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from levante.asgi import HTTP_SPEC_VERSION, ASGIApp
from levante.server.proxy import apply_forwarded
from levante.server.state import start_task
from levante.server.tls import connection_info

if TYPE_CHECKING:
    from levante.server.state import ServerState
    from levante.server.stream import HTTPStream

ASGI_VERSION: Final = {"version": "3.0", "spec_version": HTTP_SPEC_VERSION}

#: The usual methods as str, without a decode per request.
METHODS: Final = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
}
#: Headers a proxy may set for the client (applied only for a trusted peer).
FORWARDING_HEADERS: Final = frozenset(
    (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
)
#: Fields about one connection, not the message (RFC 9110 section 7.6.1): HTTP/2 forbids
#: them, and no trailer may carry them.
CONNECTION_SPECIFIC: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
#: Response trailer fields that are dropped: framing, routing and the trailer list itself.
FORBIDDEN_TRAILERS: Final = frozenset(
    (b"content-length", b"host", b"trailer", *CONNECTION_SPECIFIC)
)
_TRAILERS_EXT: Final[dict[object, object]] = {}
_PATHSEND_EXT: Final[dict[object, object]] = {}
#: What every request is offered; copied per request (an app may change its copy).
EXTENSIONS: Final[dict[str, Any]] = {
    "http.response.trailers": _TRAILERS_EXT,
    "http.response.pathsend": _PATHSEND_EXT,
}


class Peer:
    """Who is on the other end of a connection, and what its requests are offered."""

    __slots__ = ("client", "extensions", "scheme", "server", "state", "trusted_proxy")

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        self.scheme = "http"
        #: The ASGI extensions offered to each request (plus ``tls`` on a TLS connection).
        self.extensions: dict[str, Any] = EXTENSIONS
        #: The peer may set the client address and scheme with forwarding headers.
        self.trusted_proxy = False

    def connected(self, transport: asyncio.BaseTransport) -> None:
        """Read the addresses and TLS details of a new connection."""
        self.server, self.client = addresses(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.scheme = "https"
            self.extensions = {
                **EXTENSIONS,
                "tls": connection_info(ssl_object, self.state.tls_server_cert),
            }
        forwarded = self.state.forwarded
        self.trusted_proxy = (
            forwarded is not None and self.client is not None and self.client[0] in forwarded
        )

    def scope(  # noqa: PLR0917 (hot path: positional on purpose)
        self,
        method: str,
        version: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        forwarded: bool,
    ) -> dict[str, Any]:
        """The ASGI ``http`` scope of one request; `forwarded`: a forwarding header was seen."""
        path = raw_path.decode("ascii")
        # find(), not `in`: on bytes `in` first tries the operand as an int and
        # formats the TypeError it then discards (CPython 3.11), on every request.
        if raw_path.find(b"%") >= 0:
            path = unquote(path)
        state = self.state
        root_path = state.settings.root_path
        if root_path:
            path = root_path + path
            raw_path = root_path.encode() + raw_path
        scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method,
            "root_path": root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "state": state.app_state.copy(),
            "extensions": self.extensions.copy(),
        }
        if forwarded and self.trusted_proxy:
            apply_forwarded(scope, state.forwarded, state.forwarded_headers)  # type: ignore[arg-type]
        return scope


def start_request(state: ServerState, stream: HTTPStream, app: ASGIApp) -> None:
    """Run the app call of a new request as a task: `app`, or a 503 past ``--limit-concurrency``."""
    limit = state.settings.concurrency
    if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
        app = service_unavailable
    start_task(state, stream, stream.run(app, state.tasks))


def response_done(state: ServerState, stream: HTTPStream) -> None:
    """Count, log and measure a response that has been sent completely."""
    state.total_requests += 1
    if state.access_log:
        state.access.log(
            stream.scope,
            stream.status,
            stream.sent_length,
            list(stream.held_headers),
            perf_counter() - stream.start_time,
        )
    if state.metrics is not None:
        method = stream.scope.get("method", "GET")
        state.metrics.response(method, stream.status, perf_counter() - stream.start_time)


def peer_name(client: tuple[str, int] | None) -> str:
    """``host:port`` of a client, for log lines."""
    return f"{client[0]}:{client[1]}" if client else "unix socket"


def addresses(
    transport: asyncio.BaseTransport,
) -> tuple[tuple[str, int | None] | None, tuple[str, int] | None]:
    """The ASGI ``server`` and ``client`` of a transport."""
    sockname: Any = transport.get_extra_info("sockname")
    peername: Any = transport.get_extra_info("peername")
    server: tuple[str, int | None] | None
    if isinstance(sockname, tuple | list):
        server = (str(sockname[0]), int(sockname[1]))
    elif isinstance(sockname, str) and sockname:
        server = (sockname, None)
    else:
        server = None
    client = (str(peername[0]), int(peername[1])) if isinstance(peername, tuple | list) else None
    return server, client


async def service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    """Answers in place of the app when `--limit-concurrency` is reached."""
    body = b"Service Unavailable"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
