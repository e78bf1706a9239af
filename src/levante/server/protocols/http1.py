"""HTTP/1.0 and HTTP/1.1 over one connection (RFC 9112), parsed by httptools (llhttp).

The parser calls back as bytes arrive; each request becomes an `HTTPStream`,
which owns the ASGI side. This module owns only the wire: framing of request and
response bodies, keep-alive, pipelining (one exchange at a time, answers in
order), flow control of reads, limits, and the errors that end a connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import Any, Final, NoReturn, cast

import httptools
from websockets.http11 import Response

from levante.asgi import ASGIApp
from levante.native import chained
from levante.server import limits
from levante.server.connection import (
    FORBIDDEN_TRAILERS,
    FORWARDING_HEADERS,
    METHODS,
    Peer,
    peer_name,
    response_done,
    start_request,
)
from levante.server.errors import InvalidMessage, RequestError
from levante.server.flow import WriteGate
from levante.server.protocols.http2 import PREFACE, HTTP2Protocol, settings_from_header
from levante.server.protocols.websocket import WebSocketProtocol
from levante.server.proxy import ProxyProtocolError, parse_proxy_header
from levante.server.state import ServerState
from levante.server.stream import (
    DONE,
    Fields,
    HTTPStream,
    announced_length,
    check_transfer_encoding,
    response_content_length,
)
from levante.server.websocket import (
    WebSocketSession,
    WebSocketTransport,
    start_websocket,
    websocket_scope,
)

logger = logging.getLogger("levante.error")
access_logger = logging.getLogger("levante.access")


# Connection phases, for timeouts.
IDLE: Final = 0  # between requests: the keep-alive timeout runs
HEAD: Final = 1  # a request head is arriving: the header timeout runs
ACTIVE: Final = 2  # a request is being served: the app decides how long
LINGER: Final = 3  # answered and half-closed; unread input is drained until the peer closes

# RFC 9110 section 2.5: a higher minor version of HTTP/1 is served as 1.1.
_VERSIONS: Final = {"1.1": "1.1", "1.0": "1.0", **{f"1.{n}": "1.1" for n in range(2, 10)}}


def _status_line(status: int) -> bytes:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("ascii"))


#: Every status line, built once.
STATUS_LINES: Final = {status: _status_line(status) for status in range(100, 1000)}

_CHUNKED_END: Final = b"0\r\n\r\n"
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE: Final = b"connection: close\r\n"
_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
_CHUNKED: Final = b"transfer-encoding: chunked\r\n"


class HTTP1Protocol(asyncio.Protocol):
    """One HTTP/1.x connection."""

    __slots__ = (
        "access_log",
        "app",
        "began",
        "body_size",
        "chunked",
        "closing",
        "content_length",
        "current",
        "deadline",
        "expect_continue",
        "forwarded",
        "fresh",
        "gate",
        "h2c",
        "h2c_settings",
        "head_pending",
        "head_size",
        "headers",
        "host_count",
        "keep_alive",
        "loop",
        "parser",
        "peer",
        "pending_error",
        "phase",
        "pipeline",
        "preface",
        "progress",
        "proxy_pending",
        "reading",
        "reading_paused",
        "resp_chunked",
        "resp_close",
        "resp_no_body",
        "scheme",
        "server",
        "stalled",
        "state",
        "stream_keep_alive",
        "transport",
        "trusted_proxy",
        "upgrade_h2c",
        "upgrade_remaining",
        "upgrade_ws",
        "upgraded",
        "url",
        "ws_pending",
    )

    def __init__(self, state: ServerState, app: ASGIApp) -> None:
        self.state = state
        self.app = app
        self.loop = state.loop
        self.parser = httptools.HttpRequestParser(self)
        # Versions are checked in on_headers_complete (HTTP/1.2+ served as 1.1, others 505).
        self.parser.set_dangerous_leniencies(lenient_version=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.access_log = state.access_log
        self.current: HTTPStream | None = None  # the exchange being answered
        self.reading: HTTPStream | None = None  # the exchange whose body is arriving
        self.pipeline: deque[HTTPStream] = deque()
        self.headers: list[tuple[bytes, bytes]] = []
        self._reset_head()
        self.began = False
        self.progress = False
        self.stalled = 0
        self.upgraded = False
        self.upgrade_remaining = 0
        self.ws_pending = b""
        self.phase = IDLE
        self.deadline = 0.0
        self.keep_alive = True
        self.stream_keep_alive = True
        self.closing = False
        self.reading_paused = False
        self.gate = WriteGate()
        self.resp_chunked = False
        self.resp_close = False
        self.resp_no_body = False
        self.pending_error: RequestError | None = None
        #: Addresses, scheme and extensions of the connection's requests.
        self.peer = Peer(state)
        #: No request has begun on this connection yet.
        self.fresh = True
        #: Bytes of a PROXY protocol header not yet complete; None once read (or off).
        self.proxy_pending: bytes | None = None
        #: Cleartext HTTP/2 may begin here (set once connected).
        self.h2c = False
        #: The SETTINGS of an ``Upgrade: h2c`` request being switched.
        self.h2c_settings: bytes | None = None
        #: The start of an HTTP/2 connection preface, while it is incomplete.
        self.preface = b""

    # -- connection events ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self.transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.closing = True
            http2 = HTTP2Protocol(self.state, self.app)
            transport.set_protocol(http2)
            http2.connection_made(transport)
            return
        # Cleartext HTTP/2 starts on this protocol: prior knowledge or Upgrade: h2c.
        self.h2c = ssl_object is None and self.state.config.http == "auto"
        self.state.connections.add(self)
        if self.state.metrics is not None:
            self.state.metrics.connections.inc()
        peer = self.peer
        peer.connected(transport)
        self.deadline = self.state.now + self.state.settings.keep_alive_timeout + 1.0
        proxy_protocol = self.state.proxy_protocol
        if proxy_protocol is not None:
            address = peer.client[0] if peer.client else None
            if address not in proxy_protocol:
                logger.warning(
                    "Refused a connection from %s: not allowed to use the PROXY protocol", address
                )
                transport.close()
                return
            self.proxy_pending = b""
        if self.state.shutting_down:
            # Accepted as the listener closed: the client has sent (or is sending) a
            # request to us. Answer that one, then close, as for any open connection.
            self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        if self.state.metrics is not None:  # (after an upgrade the WebSocket protocol's is called)
            self.state.metrics.connections.dec()
        self.closing = True
        for stream in (self.current, self.reading, *self.pipeline):
            if stream is not None:
                stream.feed_disconnect()
        self.pipeline.clear()
        self.gate.close()
        self.state.check_drained()

    def eof_received(self) -> bool | None:
        # A half-closed client gets no answer it could read reliably; like
        # uvicorn, treat EOF as the client leaving.
        return None

    @property
    def write_paused(self) -> bool:
        """Whether the transport asked to stop writing (its buffer is full)."""
        return self.gate.paused

    def pause_writing(self) -> None:
        self.gate.pause()
        for stream in (self.current,):
            if stream is not None:
                stream.writing_paused = True

    def resume_writing(self) -> None:
        self.gate.resume()
        current = self.current
        if current is not None:
            current.writing_paused = False
        if current is None and not self.closing:
            # Between exchanges, the next one waited for the client to read.
            if self.pipeline:
                self.loop.call_soon(self._start_next)
            else:
                self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.fresh and (self.proxy_pending is not None or self.h2c):
            data = self._connection_start(data)
            if not data:
                return
        if self.upgraded:
            self._upgrade_body(data)
            return
        self.began = False
        self.progress = False
        error: RequestError | None = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :] if exc.args else b""
            if self.h2c_settings is not None:
                self._upgrade_h2c(rest)
                return
            self._upgrade_ignored(rest)
        except httptools.HttpParserError as exc:
            error = self.pending_error or RequestError(400, _parser_detail(exc))
            self.pending_error = None
        current = self.current
        if current is not None and current.state == -1:
            self._start(current)  # a request parsed before any error is still answered
        if error is not None:
            self._request_error(error)
        elif self.phase == HEAD:
            self._check_partial_head(data)
        elif self.reading is not None:
            self._check_stall(data)

    def _connection_start(self, data: bytes) -> bytes:
        """The bytes for HTTP/1.1 after a PROXY header and an HTTP/2 preface are looked for."""
        if self.proxy_pending is not None:
            data = self._proxy_header(data) or b""
            if not data:
                return b""
        if self.h2c:
            return self._prior_knowledge(data)
        return data

    def _proxy_header(self, data: bytes) -> bytes | None:
        """Read the PROXY header at the start of the connection; the bytes after it."""
        buffered = (self.proxy_pending or b"") + data
        try:
            found = parse_proxy_header(buffered)
        except ProxyProtocolError as exc:
            logger.warning("Closed a connection from %s: %s", peer_name(self.peer.client), exc)
            self.proxy_pending = None
            self.transport.close()
            return None
        if found is None:
            self.proxy_pending = buffered
            return None
        header, used = found
        self.proxy_pending = None
        # The HTTP bytes are the client's own (the proxy relays TCP): forwarding
        # headers count only if that client is itself trusted (never if unknown).
        forwarded = self.state.forwarded
        peer = self.peer
        peer.trusted_proxy = False
        if header.client is not None:
            peer.client = header.client
            peer.server = header.server
            peer.trusted_proxy = forwarded is not None and header.client[0] in forwarded
        return buffered[used:]

    def _check_stall(self, data: bytes) -> None:
        # A body is being read but this read produced no body bytes: it was
        # chunk framing or trailer fields, which httptools buffers while a line
        # is unfinished. Bound that like a request head.
        if self.progress:
            self.stalled = 0
            return
        self.stalled += len(data)
        if self.stalled > self.state.settings.request_head:
            self._request_error(RequestError(431, "Request trailer fields too large"))

    def _check_partial_head(self, data: bytes) -> None:
        # The head is incomplete at the end of this read. httptools holds the
        # unfinished line itself, so measure it: the bytes after the last LF
        # (or, with none, this read added to what earlier reads left).
        newline = data.rfind(b"\n")
        if newline >= 0:
            self.head_pending = len(data) - newline - 1
        elif not self.began:
            self.head_pending += len(data)
        settings = self.state.settings
        if (
            self.head_pending > settings.field_size
            or self.head_size + self.head_pending > settings.request_head
        ):
            self._request_error(RequestError(431, "Request header fields too large"))

    # -- parser callbacks ---------------------------------------------------

    def _reset_head(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.head_pending = 0
        self.host_count = 0
        self.expect_continue = False
        self.content_length = -1
        self.chunked = False
        self.upgrade_ws = False
        self.upgrade_h2c = False
        self.forwarded = False
        self.body_size = 0

    def on_message_begin(self) -> None:
        self._reset_head()
        self.fresh = False
        self.phase = HEAD
        self.began = True
        self.deadline = self.state.now + self.state.settings.header_timeout + 1.0

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.state.settings.request_line:
            self._fail_parse(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        settings = self.state.settings
        size = len(name) + len(value)
        self.head_size += size
        if self.phase != HEAD:
            # A chunked body's trailer fields: ASGI has no request trailers, so
            # they are only measured, head and trailers together, against the
            # head's limits (twice the size).
            if size > settings.field_size or self.head_size > 2 * settings.request_head:
                self._fail_parse(431, "Request trailer fields too large")
            return
        headers = self.headers
        if (
            size > settings.field_size
            or self.head_size > settings.request_head
            or len(headers) >= settings.request_fields
        ):
            self._fail_parse(431, "Request header fields too large")
        name = name.lower()
        headers.append((name, value))
        if name in _SPECIAL:
            self._special_header(name, value)

    def _special_header(self, name: bytes, value: bytes) -> None:
        if name == b"host":
            self.host_count += 1
        elif name == b"content-length":
            self.content_length = int(value)  # llhttp has checked the digits
        elif name == b"transfer-encoding":
            self._transfer_encoding(value)
        elif name == b"upgrade":
            tokens = value.lower()
            self.upgrade_ws = b"websocket" in tokens
            self.upgrade_h2c = b"h2c" in tokens
        elif name == b"expect":
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                self._fail_parse(417, "Only 'Expect: 100-continue' is supported")
        else:  # a forwarding header: the scope is rewritten if the peer is trusted
            self.forwarded = True

    def _transfer_encoding(self, value: bytes) -> None:
        self.chunked = True
        codings = [c.strip() for c in value.lower().split(b",")]
        if codings.count(b"chunked") != 1 or codings[-1] != b"chunked":
            # RFC 9112 section 6.3: chunked must be the final coding, once.
            self._fail_parse(400, "Invalid Transfer-Encoding")
        if codings != [b"chunked"]:
            # RFC 9112 section 6.1: a coding the server does not understand -> 501.
            self._fail_parse(501, "Only 'Transfer-Encoding: chunked' is implemented")

    def on_headers_complete(self) -> None:
        parser = self.parser
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            self._fail_parse(505, "HTTP version not supported")
        if self.host_count != 1 and (version == "1.1" or self.host_count > 1):
            # RFC 9112 section 3.2: exactly one Host field in HTTP/1.1.
            self._fail_parse(400, "Missing or repeated Host header")
        if self.content_length > self.state.settings.request_body:
            self._fail_parse(413, "Request body too large")
        self.phase = ACTIVE
        self.deadline = 0.0
        method = parser.get_method()
        method_str = METHODS.get(method) or method.decode("ascii")
        stream = self._new_stream(method_str, version)
        stream.expect_continue = self.expect_continue and version == "1.1"
        keep_alive = parser.should_keep_alive() and self.keep_alive
        websocket = self.upgrade_ws and self.state.settings.websockets
        if websocket and not (method == b"GET" and parser.should_upgrade()):
            # RFC 6455 section 4.2.1: a WebSocket upgrade is a GET with
            # "Connection: Upgrade"; anything else asking for one is malformed.
            self._fail_parse(400, "Invalid WebSocket upgrade: use GET with 'Connection: Upgrade'")
        if parser.should_upgrade():
            if self.upgrade_h2c and not websocket and self.h2c and self.current is None:
                self.h2c_settings = self._h2c_settings()
            keep_alive = self._upgrade_request()
            if websocket:
                stream.scope = websocket_scope(stream.scope)
        self.reading = stream
        if self.current is None:
            self.current = stream
            self.stream_keep_alive = keep_alive
            stream.state = -1  # started once the parser has returned (see data_received)
        else:
            stream.writer = _Queued(keep_alive)  # type: ignore[assignment]
            self.pipeline.append(stream)
            self._pause_reading()

    def _h2c_settings(self) -> bytes | None:
        """The HTTP2-Settings of an upgrade we take, or None to answer in HTTP/1.1.

        A request with a body is answered in HTTP/1.1 (RFC 9110 section 7.8 lets a
        server ignore Upgrade): switching would need the whole body read first.
        """
        if self.chunked or self.content_length > 0:
            return None
        values = [value for name, value in self.headers if name == b"http2-settings"]
        if len(values) != 1:
            return None
        try:
            return settings_from_header(values[0])
        except ValueError:
            return None

    def _prior_knowledge(self, data: bytes) -> bytes:
        """Hand a connection that starts with the HTTP/2 preface to HTTP/2."""
        if self.preface:
            data = self.preface + data
            self.preface = b""
        if not PREFACE.startswith(data[: len(PREFACE)]):
            return data
        if len(data) < len(PREFACE):
            self.preface = data  # wait for the rest of it
            return b""
        self._leave()
        HTTP2Protocol(self.state, self.app).adopt(self.transport, self.peer, data)
        return b""

    def _upgrade_h2c(self, rest: bytes) -> None:
        stream = self.current
        settings = self.h2c_settings
        if stream is None or settings is None:  # (guard: set together in on_headers_complete)
            self._upgrade_ignored(rest)
            return
        self.current = None
        self.reading = None
        self._leave()
        http2 = HTTP2Protocol(self.state, self.app)
        http2.upgrade(self.transport, self.peer, stream.scope, settings)
        if rest:
            http2.data_received(rest)

    def _leave(self) -> None:
        """This protocol gives the connection to another one."""
        self.closing = True
        self.state.connections.discard(self)
        if self.state.metrics is not None:
            self.state.metrics.connections.dec()

    def _upgrade_request(self) -> bool:
        # llhttp stops at a request carrying Upgrade (or CONNECT) and skips its
        # body; nothing is upgraded yet, so the body is read here (see
        # _upgrade_body) and the connection ends after the answer.
        if self.chunked:
            self._fail_parse(501, "A chunked body with Upgrade is not supported")
        self.upgrade_remaining = max(self.content_length, 0)
        return False

    def _new_stream(self, method: str, version: str) -> HTTPStream:
        url = self.url
        if url.find(b"#") >= 0:  # not `in`: see Peer.scope
            url = url.partition(b"#")[0]  # a fragment is not part of the target
        if url[:1] == b"/":
            raw_path, _, query = url.partition(b"?")
        elif url == b"*" or method == "CONNECT":
            raw_path, query = url, b""
        else:
            parsed = httptools.parse_url(url)  # absolute-form or authority-form
            raw_path, query = parsed.path or b"/", parsed.query or b""
        scope = self.peer.scope(method, version, raw_path, query, self.headers, self.forwarded)
        stream = HTTPStream(self, scope, method == "HEAD")
        if self.access_log:
            stream.start_time = perf_counter()
        return stream

    def on_body(self, body: bytes) -> None:
        stream = self.reading
        if stream is None:
            return
        self.progress = True
        self.body_size += len(body)
        if self.body_size > self.state.settings.request_body:
            self._fail_parse(413, "Request body too large")
        if stream.feed_body(body) > self.state.settings.body_buffer:
            stream.paused = True
            self._pause_reading()

    def on_message_complete(self) -> None:
        self.progress = True
        if self.upgrade_remaining:
            return  # the body follows the upgrade point; see _upgrade_body
        stream = self.reading
        if stream is not None:
            self.reading = None
            stream.feed_end()
        if self.pipeline:
            self._pause_reading()

    def _fail_parse(self, status: int, detail: str) -> NoReturn:
        # Raising inside a callback makes httptools stop and raise
        # HttpParserCallbackError; data_received then answers `pending_error`.
        self.pending_error = RequestError(status, detail)
        raise self.pending_error

    # -- running exchanges ----------------------------------------------------

    def _start(self, stream: HTTPStream) -> None:
        stream.state = 0
        stream.writing_paused = self.write_paused
        state = self.state
        if stream.scope["type"] == "websocket":
            start_websocket(stream, self, self.app, state)
            return
        start_request(state, stream, self.app)

    def accept_websocket(
        self, session: WebSocketSession, response: Response, data: bytes
    ) -> WebSocketTransport:
        """Answer 101 and give the socket to a WebSocket protocol (Handover interface)."""
        transport = self.transport
        transport.write(data)
        connection = WebSocketProtocol(self.state, session, transport)
        self._leave()
        self.current = None
        self.state.connections.add(connection)
        transport.set_protocol(connection)
        if self.state.metrics is not None:  # the connection is counted as a WebSocket now
            self.state.metrics.websockets.inc()
        pending, self.ws_pending = self.ws_pending, b""
        if pending:
            self.loop.call_soon(connection.data_received, pending)
        if self.access_log:
            where = peer_name(self.peer.client)
            access_logger.info('%s - "WebSocket %s" 101', where, session.scope["path"])
        transport.resume_reading()
        return connection

    def _start_next(self) -> None:
        if self.closing or self.current is not None or not self.pipeline:
            return
        stream = self.pipeline.popleft()
        queued = cast(_Queued, stream.writer)  # set in on_headers_complete
        stream.writer = self
        self.current = stream
        self.stream_keep_alive = queued.keep_alive
        if not self.pipeline and not (stream.paused and stream.body):
            self._resume_reading()
        self._start(stream)

    def _response_complete(self, stream: HTTPStream) -> None:
        response_done(self.state, stream)
        if self.current is stream:
            self.current = None
        if self.resp_close or self.closing:
            # Nothing may follow a response that ends the connection.
            if not self.closing:
                self._close(linger=self.reading is not None)
        elif self.pipeline:
            if not self.write_paused:  # else resume_writing starts it
                self.loop.call_soon(self._start_next)
        elif self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            self._write_error(error)
        elif not self.keep_alive:  # shutting down, or after an Upgrade request
            self.closing = True
            self.transport.close()
        else:
            if self.phase != HEAD:
                self.phase = IDLE
                self.deadline = self.state.now + self.state.settings.keep_alive_timeout + 1.0
            if self.write_paused:
                self._pause_reading()  # the client is not reading: take no new request
            else:
                self._resume_reading()

    # -- Writer interface (used by HTTPStream) --------------------------------

    def write_head(
        self,
        stream: HTTPStream,
        status: int,
        headers: Fields,
        body: bytes,
        more: bool,
    ) -> int:
        if self.closing:
            return -1
        parts = [STATUS_LINES[status]]
        declared, flags = _serialise_headers(headers, parts)
        if not self.stream_keep_alive or not stream.body_complete:
            flags |= _F_CLOSE
        flags = _frame(stream, parts, declared, flags, body, more)
        parts.append(self.state.default_headers)
        # Every line is checked: the app's by _serialise_headers, the rest are ours.
        head = b"".join(parts)
        chunked = flags & _F_CHUNKED
        self.resp_close = bool(flags & _F_CLOSE)
        self.resp_chunked = bool(chunked)
        self.resp_no_body = stream.no_body
        last = not more and not stream.trailers
        if stream.no_body or not body:
            self.transport.write(head + _CHUNKED_END if chunked and last else head)
        elif chunked:
            self._write_chunk(head, body, last)
        elif len(body) > limits.WRITE_JOIN_LIMIT:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head + body)
        if last:
            self._response_complete(stream)
        return declared

    def _write_chunk(self, head: bytes, data: bytes, last: bool) -> None:
        size = b"%x\r\n" % len(data)
        tail = b"\r\n0\r\n\r\n" if last else b"\r\n"
        if len(data) > limits.WRITE_JOIN_LIMIT:
            self.transport.writelines((head + size, data, tail))
        else:
            self.transport.write(b"".join((head, size, data, tail)))

    def write_body(self, stream: HTTPStream, data: bytes, more: bool) -> None:
        if self.closing:
            return
        last = not more and not stream.trailers
        if self.resp_no_body:
            pass
        elif self.resp_chunked:
            if data:
                self._write_chunk(b"", data, last)
            elif last:
                self.transport.write(_CHUNKED_END)
        elif data:
            self.transport.write(data)
        if last:
            self._response_complete(stream)

    def write_trailers(self, stream: HTTPStream, headers: Fields) -> None:
        if self.closing:
            return
        if self.resp_chunked:
            parts = [b"0\r\n"]
            try:
                for name, value in headers:
                    if name.lower() not in FORBIDDEN_TRAILERS:
                        parts.append(b"%s: %s\r\n" % (name, value))
            except (TypeError, ValueError, AttributeError) as exc:
                raise chained(
                    InvalidMessage(
                        f"'http.response.trailers' headers must be (bytes, bytes) pairs: {exc}"
                    ),
                    None,
                )
            parts.append(b"\r\n")
            block = b"".join(parts)
            _check_head(block, len(parts))
            self.transport.write(block)
        # With a Content-Length body (or no body) HTTP/1.1 has nowhere to put
        # trailers; they are dropped, as RFC 9110 section 6.5 allows.
        self._response_complete(stream)

    def send_continue(self, stream: HTTPStream) -> None:
        if stream is self.current and not self.closing:
            self.transport.write(_CONTINUE)

    def body_consumed(self, stream: HTTPStream) -> None:
        if stream.paused:
            stream.paused = False
            if not self.pipeline or stream is self.reading:
                self._resume_reading()

    async def wait_writable(self, stream: HTTPStream) -> None:
        await self.gate.wait()

    def abort(self, stream: HTTPStream) -> None:
        self.closing = True
        self.transport.abort()

    def app_finished(self, stream: HTTPStream) -> None:
        if stream is self.current and stream.state != DONE and not self.closing:
            # The failure policy always completes or aborts; this is a guard.
            self.closing = True
            self.transport.close()

    # -- flow control ---------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.closing:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- errors, timeouts, shutdown -------------------------------------------

    def _request_error(self, error: RequestError) -> None:
        """Answer a request the parser or a limit rejected, then close."""
        if self.closing:
            return
        self._pause_reading()
        self.keep_alive = False
        current = self.current
        reading = self.reading
        if current is not None and current is not reading:
            # Requests accepted before the bad bytes are answered first, in order.
            if reading is not None and reading in self.pipeline:
                self.pipeline.remove(reading)  # its own body broke the rule
                reading.feed_disconnect()
            if self._last_keep_alive():
                logger.info("Bad request from %s: %s", peer_name(self.peer.client), error.detail)
                self.pending_error = error
            # Else the last request accepted ends the connection: RFC 9112
            # section 9.6, nothing after it is processed or answered.
            return
        logger.info("Bad request from %s: %s", peer_name(self.peer.client), error.detail)
        if current is not None and current.state not in (DONE, -1):
            # The body of a running exchange broke a rule (413, bad chunk).
            current.feed_disconnect()
            if current.state != 0:  # its response has begun: cut it short
                self.abort(current)
                return
        self._write_error(error)

    def _last_keep_alive(self) -> bool:
        if self.pipeline:
            return cast(_Queued, self.pipeline[-1].writer).keep_alive
        return self.stream_keep_alive

    def _write_error(self, error: RequestError) -> None:
        body = error.detail.encode("utf-8")
        head = b"".join(
            (
                STATUS_LINES[error.status],
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                _CLOSE,
                self.state.default_headers,
            )
        )
        self.transport.write(head + body)
        self._close(linger=True)

    def _close(self, linger: bool) -> None:
        """Close once the written bytes are sent.

        With `linger`, request bytes may still be on their way; closing a socket
        with unread input makes the kernel send RST, which can destroy the
        answer before the client reads it. So, as nginx's lingering close
        does, send FIN, drain input for a while, then close.
        """
        self.closing = True
        transport = self.transport
        if linger and transport.can_write_eof():
            transport.write_eof()
            self.phase = LINGER
            self.deadline = self.state.now + limits.LINGER_TIMEOUT + 1.0
            self.upgraded = True  # data_received now discards (see _upgrade_body)
            self.upgrade_remaining = 0
            self.reading_paused = False
            transport.resume_reading()
        else:
            transport.close()

    def _upgrade_ignored(self, rest: bytes) -> None:
        # RFC 9110 section 7.8: a server may ignore Upgrade. The request is
        # answered as plain HTTP; llhttp parses nothing after an upgrade, so no
        # request after it is read and the connection ends after its answer.
        self.upgraded = True
        self.keep_alive = False
        if rest and not self.upgrade_remaining:
            self.ws_pending = rest[: self.state.config.limit_request_head]  # early frames
        elif rest:
            self._upgrade_body(rest)
        if not self.upgrade_remaining:
            self._pause_reading()

    def _upgrade_body(self, data: bytes) -> None:
        """The Content-Length body of an Upgrade request llhttp did not read."""
        remaining = self.upgrade_remaining
        if not remaining:
            return  # bytes after the request are not read (see _upgrade_ignored)
        chunk = data[:remaining]
        self.upgrade_remaining = remaining - len(chunk)
        try:
            self.on_body(chunk)
        except RequestError as exc:
            self.pending_error = None
            self._request_error(exc)
            return
        if not self.upgrade_remaining:
            self.on_message_complete()
            self._pause_reading()

    def on_tick(self, now: float) -> None:
        """Called about once a second by the server: enforce timeouts."""
        if self.deadline and now >= self.deadline:
            self.deadline = 0.0
            if self.phase == HEAD:
                self._request_error(RequestError(408, "Request header timeout"))
            elif self.phase in (IDLE, LINGER):
                self.closing = True
                self.transport.close()

    def shutdown(self) -> None:
        """Stop after the exchange in flight; close now if idle."""
        self.keep_alive = False
        self.stream_keep_alive = False
        current = self.current
        if (self.fresh and self.proxy_pending is None) or self.phase == HEAD:
            # Accepted just before the listener closed with its request not here yet,
            # or a request head arriving: the client sent it to us, so answer it (then
            # close). A deadline bounds the wait: the header timeout for a head, a
            # short one for a connection that has sent nothing.
            if self.phase != HEAD:
                self.deadline = min(self.deadline, self.state.now + limits.SHUTDOWN_FIRST_REQUEST)
            return
        if current is None or self.phase == IDLE:
            self.closing = True
            self.transport.close()
            return
        self.pipeline.clear()
        if current.body_complete:
            current.signal_shutdown()

    def force_close(self) -> None:
        """The shutdown timeout passed: drop the connection."""
        self.closing = True
        self.transport.abort()


class _Queued:
    """Stands in as the writer of a pipelined request until its turn comes."""

    __slots__ = ("keep_alive",)

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive

    def body_consumed(self, stream: HTTPStream) -> None:
        pass


#: Headers looked at while parsing (one set lookup per header spots them all).
_SPECIAL: Final = frozenset(
    (b"host", b"content-length", b"expect", b"transfer-encoding", b"upgrade", *FORWARDING_HEADERS)
)


# Response framing flags.
_F_CHUNKED: Final = 1
_F_CLOSE: Final = 2


#: Each response header line the server has checked, by its ``(name, value)`` pair: the
#: line and what it means for framing (`_ORDINARY`, `_CLOSE_ASKED`, `_DROPPED`, or a
#: Content-Length). Apps send the same few headers again and again; a pair is
#: checked and formatted once. Bounded: past `_LINES_MAX` pairs, new ones are not kept.
_LINES: Final[dict[object, tuple[bytes, int]]] = {}
_LINES_MAX: Final = 2048
_ORDINARY: Final = -1
_CLOSE_ASKED: Final = -2  # "connection: close": the line is dropped, the connection closes
_DROPPED: Final = -3  # another connection option: the line is dropped
_CHUNKED_ASKED: Final = -4  # "transfer-encoding: chunked": the line is dropped, the body chunked


def _serialise_headers(headers: Fields, parts: list[bytes]) -> tuple[int, int]:
    """Append the app's header lines to `parts`; return (content-length or -1, flags)."""
    declared = -1
    flags = 0
    lines = _LINES
    try:
        for pair in headers:
            try:
                known = lines.get(pair)
            except TypeError:  # a list, not a tuple: not kept
                known = None
            if known is None:
                known = _header_line(pair)
            line, meaning = known
            if meaning == _ORDINARY:
                parts.append(line)
            elif meaning >= 0:
                declared = meaning
                parts.append(line)
            elif meaning == _CLOSE_ASKED:
                flags |= _F_CLOSE
            elif meaning == _CHUNKED_ASKED:
                flags |= _F_CHUNKED
    except (TypeError, ValueError, AttributeError) as exc:
        raise chained(
            InvalidMessage(
                f"'http.response.start' headers must be an iterable of (bytes, bytes) pairs: {exc}"
            ),
            None,
        )
    if declared >= 0 and flags & _F_CHUNKED:
        raise InvalidMessage("a response cannot have both content-length and transfer-encoding")
    return declared, flags


def _header_line(pair: Any) -> tuple[bytes, int]:
    """Check and format one response header; keep it in `_LINES` if there is room."""
    name, value = pair
    line = b"%s: %s\r\n" % (name, value)
    if line.count(b"\n") != 1 or line.count(b"\r") != 1 or b"\0" in line:
        raise InvalidMessage("response header names and values must not contain CR, LF or NUL")
    lname = name.lower()
    meaning = _ORDINARY
    if lname == b"content-length":
        meaning = response_content_length(value)
    elif lname == b"connection":
        # Persistence is the server's to decide; the app may ask to close.
        meaning = _CLOSE_ASKED if b"close" in value.lower() else _DROPPED
    elif lname == b"transfer-encoding":
        check_transfer_encoding(value)
        meaning = _CHUNKED_ASKED
    known = (line, meaning)
    exact = type(pair) is tuple and type(name) is bytes and type(value) is bytes
    if exact and len(_LINES) < _LINES_MAX:
        _LINES[pair] = known
    return known


def _frame(  # noqa: PLR0917 (hot path: positional on purpose)
    stream: HTTPStream, parts: list[bytes], declared: int, flags: int, body: bytes, more: bool
) -> int:
    """Choose Content-Length, chunked or close-delimited framing (RFC 9112 section 6)."""
    http10 = stream.scope["http_version"] == "1.0"
    whole = not (more or stream.trailers or flags & _F_CHUNKED)
    length = announced_length(stream, declared, body, more, whole)
    if length >= 0:
        parts.append(b"content-length: %d\r\n" % length)
    if stream.no_body:
        flags &= ~_F_CHUNKED
    elif declared < 0 and not whole:
        if http10:
            flags = (flags | _F_CLOSE) & ~_F_CHUNKED  # the body ends with the connection
        else:
            parts.append(_CHUNKED)
            flags |= _F_CHUNKED
    if flags & _F_CLOSE:
        parts.append(_CLOSE)
    elif http10:
        parts.append(_KEEP_ALIVE)
    return flags


def _check_head(head: bytes, lines: int) -> None:
    # Each part of `head` ends with exactly one CRLF; more CRs or LFs mean a
    # header name or value carried one (response splitting), which we refuse.
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise InvalidMessage("response header names and values must not contain CR, LF or NUL")


def _parser_detail(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"Invalid HTTP request: {text}"
