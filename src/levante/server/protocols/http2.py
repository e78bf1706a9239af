"""HTTP/2 over one connection (RFC 9113), WebSocket over its streams (RFC 8441).

Each request stream becomes an `H2Stream`, the same `HTTPStream` bridge HTTP/1.1
uses, so the ASGI side is one piece of code; an extended CONNECT runs the same
`WebSocketSession` as an HTTP/1.1 Upgrade. This module owns the wire: frames,
stream states, flow control in both directions, the connection's limits, and
the errors that reset a stream or end the connection.

Why not the `h2` library: it is the obvious choice (and the tests' client), but
measured here it is the bound. A bare `h2` server that answers without ASGI did
11 300 requests/s (13 900 with its header checks off) under
``h2load -c32 -m8`` on one core; this module does the same exchange at about 60 000,
which leaves room for the ASGI call. HPACK stays with the `hpack` library
(the one `h2` uses); what is written here is the framing and the state machine,
checked against RFC 9113 clause by clause (see docs/conformance.md).

Hot path: frames are cut out of the read buffer with one `struct` call each; a
header block made only of indexed fields (what a client sends for a repeated
request) is decoded once and looked up after; response fields are HPACK-encoded
without the dynamic table, so each distinct field is encoded once per process and
looked up after; everything a connection writes in one loop iteration leaves in
one `transport.write`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import struct
from time import perf_counter
from typing import Any, cast

import hpack
from hpack import HPACKError, OversizedHeaderListError
from websockets.http11 import Response

from levante.asgi import ASGIApp
from levante.server import limits
from levante.server.connection import (
    CONNECTION_SPECIFIC,
    FORBIDDEN_TRAILERS,
    FORWARDING_HEADERS,
    METHODS,
    Peer,
    peer_name,
    response_done,
    start_request,
)
from levante.server.errors import InvalidMessage
from levante.server.flow import WriteGate, wake
from levante.server.protocols.websocket import WebSocketTimers
from levante.server.state import ServerState, start_task
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
    refuse_handshake,
    start_websocket,
    websocket_scope,
)

logger = logging.getLogger("levante.error")
access_logger = logging.getLogger("levante.access")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (section 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB

# Settings (section 6.5.2, RFC 8441 section 3).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
#: The largest frame we accept: the protocol default, which we do not raise.
FRAME_LIMIT = 16384

_HEAD = struct.Struct(">IBI")  # (length << 8 | type), flags, stream id
_U32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")
_GOAWAY = struct.Struct(">II")

# Connection phases.
_PREFACE = 0  # waiting for the client's connection preface
_OPEN = 1
_CLOSED = 2
_FIRST_SETTINGS = 3  # the preface is here; its SETTINGS frame is not yet


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte head, then `payload`."""
    return _HEAD.pack(len(payload) << 8 | kind, flags, stream_id) + payload


_SETTINGS_ACK = frame(SETTINGS, ACK, 0)


class _ConnectionError(Exception):
    """Ends the connection with GOAWAY(code)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class _Malformed(Exception):
    """A request the stream is reset for (RFC 9113 section 8.1.1: PROTOCOL_ERROR)."""


class _Refused(Exception):
    """A request answered with an HTTP error status instead of running the app."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# -- response fields: HPACK without the dynamic table ----------------------

#: Our encoder never inserts into the dynamic table, so a field always encodes
#: to the same bytes: the first header block of a connection tells the peer's
#: decoder (a table size update to 0), and encodings are shared by all connections.
_encoder = hpack.Encoder()
_encoder.header_table_size = 0
_encoder.encode([])  # emits the size update once; blocks carry it only where needed
_TABLE_SIZE_ZERO = b"\x20"

#: Encoded fields by (name, value) as the app gave them. b"" for a field HTTP/2
#: forbids (connection-specific, dropped); (bytes, length) for content-length.
_FIELDS: dict[Any, bytes | tuple[bytes, int]] = {}
_FIELDS_LIMIT = 4096

#: A field name HTTP/2 allows: a lowercase token (RFC 9113 section 8.2.1).
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_OUT_VALUE = re.compile(rb"[\0\r\n]")


def _encode_field(field: Any) -> bytes | tuple[bytes, int]:
    """Check and encode one response field the first time it is seen."""
    try:
        name, value = field
        name = bytes(name).lower()
        value = bytes(value)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            f"'http.response.start' headers must be an iterable of (bytes, bytes) pairs: {exc}"
        ) from None
    if _BAD_NAME.search(name) or not name:
        raise InvalidMessage(f"invalid response header name {name!r}")
    if _BAD_OUT_VALUE.search(value):
        raise InvalidMessage("response header values must not contain CR, LF or NUL")
    encoded: bytes | tuple[bytes, int]
    if name in CONNECTION_SPECIFIC:
        # RFC 9113 section 8.2.2: HTTP/2 frames the body itself; these are dropped.
        if name == b"transfer-encoding":
            check_transfer_encoding(value)
        encoded = b""
    else:
        encoded = _encoder.encode([(name, value)])
        if name == b"content-length":
            encoded = (encoded, response_content_length(value))
    if len(_FIELDS) >= _FIELDS_LIMIT:
        _FIELDS.clear()
    if type(field) is tuple and type(field[0]) is bytes and type(field[1]) is bytes:
        _FIELDS[field] = encoded  # (a list pair or a bytearray is not hashable: not kept)
    return encoded


#: ``:status`` for every status code.
_STATUS = {status: _encoder.encode([(b":status", b"%d" % status)]) for status in range(100, 1000)}


def _encode_fields(headers: Fields, parts: list[bytes]) -> int:
    """Append the app's encoded fields to `parts`; return its content-length or -1."""
    declared = -1
    fields = _FIELDS
    for field in headers:
        try:
            encoded = fields.get(field)
        except TypeError:  # a list pair
            encoded = None
        if encoded is None:
            encoded = _encode_field(field)
        if type(encoded) is tuple:
            declared = encoded[1]
            encoded = encoded[0]
        parts.append(cast(bytes, encoded))
    return declared


def _trailer_block(headers: Fields) -> bytes:
    parts = []
    for field in headers:
        try:
            encoded = _FIELDS.get(field)
        except TypeError:  # a list pair, a bytearray
            encoded = None
        if encoded is None:
            encoded = _encode_field(field)
        if type(encoded) is tuple:
            continue  # content-length is not a trailer
        name = bytes(field[0]).lower()
        if name in FORBIDDEN_TRAILERS:
            continue
        parts.append(cast(bytes, encoded))
    return b"".join(parts)


# -- request fields ---------------------------------------------------------

_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority", b":protocol"))
_BAD_VALUE = re.compile(rb"[\0\r\n]|^[ \t]|[ \t]$")
#: Pseudo-header values (method, scheme, authority, path, protocol) are visible ASCII.
_NOT_VISIBLE = re.compile(rb"[^\x21-\x7e]")
_SCHEME = re.compile(rb"[a-z][a-z0-9+.\-]*")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Head:
    """A request's pseudo-header fields and headers, checked (RFC 9113 section 8.3.1)."""

    __slots__ = (
        "content_length",
        "expect_continue",
        "forwarded",
        "headers",
        "method",
        "protocol",
        "query",
        "raw_path",
    )

    def __init__(self) -> None:
        self.method = ""
        self.raw_path = b""
        self.query = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.forwarded = False
        self.expect_continue = False
        self.content_length = -1
        self.protocol: bytes | None = None


def _parse_head(fields: list[tuple[bytes, bytes]], connect_protocol: bool) -> _Head:  # noqa: C901
    """Check a decoded request header list; `_Malformed` says what is wrong."""
    head = _Head()
    pseudo: dict[bytes, bytes] = {}
    headers = head.headers
    cookies: list[bytes] = []
    host = False
    for name, value in fields:
        if name[:1] == b":":
            if headers or cookies:
                raise _Malformed("pseudo-header field after a regular field")
            if name not in _PSEUDO or (name == b":protocol" and not connect_protocol):
                raise _Malformed(f"unknown pseudo-header field {name!r}")
            if name in pseudo:
                raise _Malformed(f"repeated pseudo-header field {name!r}")
            if _NOT_VISIBLE.search(value) or not value:
                raise _Malformed(f"invalid value for {name!r}")
            pseudo[name] = value
            continue
        if _BAD_NAME.search(name) or not name:
            raise _Malformed(f"invalid field name {name!r}")
        if _BAD_VALUE.search(value):
            raise _Malformed(f"invalid value for field {name!r}")
        if name in CONNECTION_SPECIFIC:
            raise _Malformed(f"connection-specific field {name!r}")
        if name == b"te":
            if value.lower() != b"trailers":
                raise _Malformed("te other than 'trailers'")
        elif name == b"cookie":
            cookies.append(value)  # RFC 9113 section 8.2.3: joined into one field
            continue
        elif name == b"host":
            host = True
        elif name == b"content-length":
            length = int(value) if value.isdigit() and len(value) <= 18 else -1
            if length < 0 or head.content_length not in (-1, length):
                raise _Malformed("invalid content-length")
            head.content_length = length
        elif name == b"expect":
            if value.lower() != b"100-continue":
                raise _Refused(417, "Only 'Expect: 100-continue' is supported")
            head.expect_continue = True
        elif name in FORWARDING_HEADERS:
            head.forwarded = True
        headers.append((name, value))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    _target(head, pseudo, host)
    return head


def _target(head: _Head, pseudo: dict[bytes, bytes], host: bool) -> None:
    """Check the pseudo-header fields; set the method, path and query (section 8.3.1)."""
    method = pseudo.get(b":method")
    if method is None or not _TOKEN.fullmatch(method):
        raise _Malformed("missing or invalid :method")
    head.method = METHODS.get(method) or method.decode("ascii")
    authority = pseudo.get(b":authority")
    protocol = pseudo.get(b":protocol")
    path = pseudo.get(b":path")
    if method == b"CONNECT" and protocol is None:
        # RFC 9113 section 8.5: only :method and :authority.
        if authority is None or path is not None or b":scheme" in pseudo:
            raise _Malformed("CONNECT takes :authority only")
        path = authority
    else:
        if protocol is not None and method != b"CONNECT":
            raise _Malformed(":protocol is only for CONNECT")
        scheme = pseudo.get(b":scheme")
        if scheme is None or not path or not _SCHEME.fullmatch(scheme):
            raise _Malformed("missing or invalid :scheme, or no :path")
        if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
            raise _Malformed(":path must be an absolute path")
        if protocol is not None and authority is None:
            raise _Malformed("extended CONNECT needs :authority")
    head.protocol = protocol
    head.raw_path, _, head.query = path.partition(b"?")
    if authority is not None and not host:
        # ASGI apps read the host from the headers, as HTTP/1.1 sends it.
        head.headers.insert(0, (b"host", authority))


def _check_sizes(fields: list[tuple[bytes, bytes]], config: Any) -> None:
    total = 0
    for name, value in fields:
        size = len(name) + len(value)
        if size > config.limit_request_field_size:
            raise _Refused(431, "Request header fields too large")
        total += size
    if total > config.limit_request_head or len(fields) > config.limit_request_fields + 5:
        raise _Refused(431, "Request header fields too large")


# -- streams ------------------------------------------------------------------


class _Budget:
    """At most `limit` events per `window` seconds (fixed windows on the server's clock)."""

    __slots__ = ("count", "flag", "limit", "start", "what", "window")

    def __init__(self, limit: int, window: float, what: str, flag: str) -> None:
        self.limit = limit
        self.window = window
        self.what = what
        self.flag = flag
        self.count = 0
        self.start = 0.0

    def spend(self, now: float, peer: Peer) -> bool:
        """Count one event; False (and a warning) once the limit is passed."""
        if now - self.start >= self.window:
            self.start = now
            self.count = 0
        self.count += 1
        if self.count <= self.limit:
            return True
        logger.warning(
            "Closed an HTTP/2 connection from %s: more than %d %s in %gs (--h2-max-%s)",
            peer_name(peer.client),
            self.limit,
            self.what,
            self.window,
            self.flag,
        )
        return False


class H2Stream(HTTPStream):
    """One HTTP/2 stream: an `HTTPStream` with its HTTP/2 state."""

    __slots__ = (
        "channel",
        "expected",
        "held",
        "local_closed",
        "out",
        "out_end",
        "out_trailers",
        "received",
        "recv_window",
        "remote_closed",
        "send_window",
        "stream_id",
        "waiter",
    )

    def __init__(  # noqa: PLR0917
        self,
        writer: HTTP2Protocol,
        scope: dict[str, Any],
        head_only: bool,
        stream_id: int,
        send_window: int,
        recv_window: int,
    ) -> None:
        super().__init__(writer, scope, head_only)
        self.stream_id = stream_id
        self.send_window = send_window
        self.recv_window = recv_window
        #: Body bytes received and not yet credited back to the client.
        self.held = 0
        self.received = 0
        self.expected = -1
        self.remote_closed = False
        self.local_closed = False
        #: Response bytes waiting for flow-control window, and what follows them.
        self.out: list[bytes] = []
        self.out_end = False
        self.out_trailers: bytes | None = None
        self.waiter: asyncio.Future[None] | None = None
        #: The WebSocket carried by this stream, once accepted.
        self.channel: H2WebSocket | None = None


class H2WebSocket(WebSocketTimers):
    """A WebSocket on one HTTP/2 stream (RFC 8441): the session's transport."""

    def __init__(self, conn: HTTP2Protocol, stream: H2Stream, session: WebSocketSession) -> None:
        self.conn = conn
        self.stream = stream
        self.session = session
        self.state = conn.state
        self.closing = False
        self.start_timers(conn.state.now)

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.conn.send_data(self.stream, data, False)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.conn.send_data(self.stream, b"", True)

    def pause_reading(self) -> None:
        self.stream.paused = True

    def resume_reading(self) -> None:
        self.stream.paused = False
        self.conn.release(self.stream)

    async def wait_writable(self) -> None:
        await self.conn.wait_writable(self.stream)

    def force_close(self) -> None:
        self.closing = True
        self.conn.reset(self.stream.stream_id, CANCEL)


# -- the connection -------------------------------------------------------------


class HTTP2Protocol(asyncio.Protocol):
    """One HTTP/2 connection."""

    def __init__(self, state: ServerState, app: ASGIApp) -> None:
        self.state = state
        self.app = app
        self.loop = state.loop
        config = state.config
        self.config = config
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer = Peer(state)
        self.phase = _PREFACE
        self.buffer = b""
        self.streams: dict[int, H2Stream] = {}
        #: Recently closed stream ids: True if we reset them (late frames are ignored).
        self.closed_ids: dict[int, bool] = {}
        self.last_stream_id = 0
        self.goaway_sent = False
        self.peer_goaway = False
        self.shutdown_pending = False
        self.preface_sent = False
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 4096
        # Decoded, a small block can expand a lot (indexed fields repeat table
        # entries): past this the connection ends; below it, past the request
        # limits, the request is answered 431.
        self.decoder.max_header_list_size = 4 * config.limit_request_head
        #: Header blocks that left the dynamic table as it was: [table version, fields, head].
        self.decoded: dict[bytes, list[Any]] = {}
        self.table_version = 0
        self.table_size_sent = False
        #: A header block arriving in CONTINUATION frames: stream id, flags, fragments.
        self.block_stream = 0
        self.block_flags = 0
        self.block: list[bytes] = []
        self.block_size = 0
        # Flow control, ours: what the client may still send.
        self.stream_window = max(config.request_body_buffer, DEFAULT_WINDOW)
        self.conn_window = min(
            max(self.stream_window * config.h2_max_concurrent_streams, DEFAULT_WINDOW), MAX_WINDOW
        )
        self.recv_window = self.conn_window
        self.conn_held = 0
        # Flow control, theirs: what we may still send.
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = FRAME_LIMIT
        self.blocked: dict[int, H2Stream] = {}
        self.gate = WriteGate()
        self.wbuf: list[bytes | memoryview] = []
        self.flush_scheduled = False
        self.connect_protocol = config.ws == "auto"
        # Abuse counters, reset every window.
        self.resets = _Budget(
            config.h2_max_reset_streams, limits.H2_RESET_WINDOW, "streams reset", "reset-streams"
        )
        self.control_frames = _Budget(
            config.h2_max_control_frames,
            limits.H2_CONTROL_WINDOW,
            "SETTINGS, PING, PRIORITY and empty DATA frames",
            "control-frames",
        )
        self.deadline = state.now + config.timeout_request_header + 1.0

    # -- connection events --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer.connected(transport)
        self._register(b"")

    def adopt(self, transport: asyncio.Transport, peer: Peer, data: bytes) -> None:
        """Take over a connection HTTP/1.1 began (prior knowledge, or after ALPN)."""
        self.transport = transport
        self.peer = peer
        transport.set_protocol(self)
        self._register(data)

    def _register(self, data: bytes) -> None:
        """Count the connection as open; read what HTTP/1.1 already received."""
        self.state.connections.add(self)
        if self.state.metrics is not None:
            self.state.metrics.connections.inc()
        if data:
            self.data_received(data)
        if self.state.shutting_down:
            self.shutdown()

    def upgrade(
        self, transport: asyncio.Transport, peer: Peer, scope: dict[str, Any], settings: bytes
    ) -> None:
        """Take over after ``Upgrade: h2c``: the request becomes stream 1 (RFC 7540 section 3.2)."""
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
        )
        self.adopt(transport, peer, b"")
        self._send_preface()  # the first thing after the 101 (RFC 7540 section 3.2)
        try:
            self._apply_settings(settings)
        except _ConnectionError as exc:
            self._connection_error(exc.code, exc.detail)
            return
        scope = dict(scope)
        scope["http_version"] = "2"
        scope["headers"] = [
            (name, value)
            for name, value in scope["headers"]
            if name not in CONNECTION_SPECIFIC and name not in (b"http2-settings", b"te")
        ]
        self.last_stream_id = 1
        stream = self._new_stream(1, scope, scope["method"] == "HEAD")
        stream.remote_closed = True
        stream.body_complete = True
        start_request(self.state, stream, self.app)
        self._flush()

    def _send_preface(self) -> None:
        self.preface_sent = True
        config = self.config
        settings = [
            (MAX_CONCURRENT_STREAMS, config.h2_max_concurrent_streams),
            (INITIAL_WINDOW_SIZE, self.stream_window),
            (MAX_HEADER_LIST_SIZE, config.limit_request_head),
            (ENABLE_PUSH, 0),
        ]
        if self.connect_protocol:
            settings.append((ENABLE_CONNECT_PROTOCOL, 1))
        payload = b"".join(_SETTING.pack(key, value) for key, value in settings)
        self.wbuf.append(frame(SETTINGS, 0, 0, payload))
        if self.conn_window > DEFAULT_WINDOW:
            increment = self.conn_window - DEFAULT_WINDOW
            self.wbuf.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(increment)))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = _CLOSED
        self.state.connections.discard(self)
        if self.state.metrics is not None:
            self.state.metrics.connections.dec()
        for stream in list(self.streams.values()):
            stream.local_closed = stream.remote_closed = True
            self._disconnect(stream)
        self.streams.clear()
        self.blocked.clear()
        self.gate.close()
        self.state.check_drained()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        # The client is not reading: read no more from it either (what it sends
        # may call for answers: ACKs, resets, responses) until it catches up.
        self.transport.pause_reading()
        self.gate.pause()
        for stream in self.streams.values():
            self._writing_paused(stream, True)

    def resume_writing(self) -> None:
        if self.phase != _CLOSED:
            self.transport.resume_reading()
        self.gate.resume()
        for stream in self.streams.values():
            if not stream.out:
                self._writing_paused(stream, False)

    # -- reading frames -------------------------------------------------------

    def data_received(self, data: bytes) -> None:  # noqa: C901 (the frame loop, inline on purpose)
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if self.phase != _OPEN:
            if self.phase == _CLOSED:
                return
            data = self._preface(data)
            if not data:
                return
        size = len(data)
        pos = 0
        unpack = _HEAD.unpack_from
        try:
            while size - pos >= 9:
                kind, flags, stream_id = unpack(data, pos)
                length = kind >> 8
                kind &= 0xFF
                stream_id &= 0x7FFFFFFF
                if length > FRAME_LIMIT:
                    raise _ConnectionError(FRAME_SIZE_ERROR, "frame larger than MAX_FRAME_SIZE")
                end = pos + 9 + length
                if end > size:
                    break
                payload = data[pos + 9 : end]
                pos = end
                if self.block_stream and kind != CONTINUATION:
                    raise _ConnectionError(PROTOCOL_ERROR, "header block interrupted")
                if kind == HEADERS:
                    self._on_headers(flags, stream_id, payload)
                elif kind == DATA:
                    self._on_data(flags, stream_id, payload)
                else:
                    self._on_control(kind, flags, stream_id, payload)
                if self.phase == _CLOSED:
                    return
        except _ConnectionError as exc:
            self._connection_error(exc.code, exc.detail)
            return
        if pos < size:
            self.buffer = data[pos:]
        if self.shutdown_pending:
            self.shutdown_pending = False
            self.shutdown()
        if self.wbuf:
            self._flush()

    def _preface(self, data: bytes) -> bytes:
        if self.phase == _FIRST_SETTINGS:
            # Section 3.4: the preface ends with a SETTINGS frame.
            if len(data) < 9:
                self.buffer = data
                return b""
            if data[3] != SETTINGS or data[4] & ACK:
                self._connection_error(PROTOCOL_ERROR, "the preface must end with SETTINGS")
                return b""
            self.phase = _OPEN
            return data
        if len(data) < len(PREFACE):
            if PREFACE.startswith(data):
                self.buffer = data
                return b""
        elif data.startswith(PREFACE):
            if not self.preface_sent:
                # Ours goes out once theirs is here: an HTTP/1.1 client that came to
                # an HTTP/2-only port then reads a 505, not binary frames.
                self._send_preface()
            self.phase = _FIRST_SETTINGS
            self.deadline = self.state.now + self.config.timeout_keep_alive + 1.0
            rest = data[len(PREFACE) :]
            return self._preface(rest) if rest else b""
        if data[:4] != b"PRI " and b"HTTP/1." in data[:8192]:
            # An HTTP/1.x client on a port that speaks only HTTP/2.
            body = b"This server speaks HTTP/2 only\n"
            self.transport.write(
                b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            self._close()
            return b""
        self._connection_error(PROTOCOL_ERROR, "invalid connection preface")
        return b""

    def _on_control(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:  # noqa: C901
        if kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == SETTINGS:
            if stream_id:
                raise _ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
            if flags & ACK:
                if payload:
                    raise _ConnectionError(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
                return
            self._count_control()
            self._apply_settings(payload)
            self.wbuf.append(_SETTINGS_ACK)
        elif kind == PING:
            if stream_id:
                raise _ConnectionError(PROTOCOL_ERROR, "PING on a stream")
            if len(payload) != 8:
                raise _ConnectionError(FRAME_SIZE_ERROR, "PING payload is not 8 octets")
            if not flags & ACK:
                self._count_control()
                self.wbuf.append(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            self._on_rst_stream(stream_id, payload)
        elif kind == PRIORITY:
            if not stream_id:
                raise _ConnectionError(PROTOCOL_ERROR, "PRIORITY on stream 0")
            self._count_control()
            if len(payload) != 5:
                self.reset(stream_id, FRAME_SIZE_ERROR)
            elif _U32.unpack_from(payload)[0] & 0x7FFFFFFF == stream_id:
                self.reset(stream_id, PROTOCOL_ERROR)  # depends on itself
        elif kind == GOAWAY:
            if stream_id:
                raise _ConnectionError(PROTOCOL_ERROR, "GOAWAY on a stream")
            if len(payload) < 8:
                raise _ConnectionError(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 octets")
            self.peer_goaway = True
            if not self.streams:
                self._close()
        elif kind == CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif kind == PUSH_PROMISE:
            raise _ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        # Frames of unknown types are ignored (RFC 9113 section 4.1).

    def _count_control(self) -> None:
        if not self.control_frames.spend(self.state.now, self.peer):
            raise _ConnectionError(ENHANCE_YOUR_CALM, "too many control frames")

    def _apply_settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise _ConnectionError(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise _ConnectionError(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        raise _ConnectionError(FLOW_CONTROL_ERROR, "stream window too large")
                if delta > 0:
                    self._unblock()
            elif key == MAX_FRAME_SIZE:
                if not FRAME_LIMIT <= value <= 16777215:
                    raise _ConnectionError(PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self.peer_max_frame = value
            elif key in (ENABLE_PUSH, ENABLE_CONNECT_PROTOCOL) and value > 1:
                raise _ConnectionError(PROTOCOL_ERROR, "a boolean setting above 1")
            # HEADER_TABLE_SIZE: our encoder uses no dynamic table, any size suits it.
            # MAX_CONCURRENT_STREAMS: we push no streams. MAX_HEADER_LIST_SIZE: advisory.

    # -- HEADERS and CONTINUATION ----------------------------------------------

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id & 1:
            raise _ConnectionError(PROTOCOL_ERROR, "HEADERS on an even or zero stream id")
        if flags & PADDED:
            payload = _unpad(payload)
        if flags & PRIORITY_FLAG:
            if len(payload) < 5:
                raise _ConnectionError(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            if _U32.unpack_from(payload)[0] & 0x7FFFFFFF == stream_id:
                flags |= 0x100  # depends on itself: reset once the block is decoded
            payload = payload[5:]
        if not flags & END_HEADERS:
            self.block_stream = stream_id
            self.block_flags = flags
            self.block = [payload]
            self.block_size = len(payload)
            return
        self._header_block(flags, stream_id, payload)

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not self.block_stream or stream_id != self.block_stream:
            raise _ConnectionError(PROTOCOL_ERROR, "CONTINUATION without a header block")
        self.block.append(payload)
        self.block_size += len(payload)
        if (
            self.block_size > self.config.limit_request_head
            or len(self.block) > limits.H2_MAX_CONTINUATIONS
        ):
            # CVE-2024-27316 and kin: a block that never ends is cut off here.
            logger.warning(
                "Closed an HTTP/2 connection from %s: header block over %d bytes or %d frames",
                peer_name(self.peer.client),
                self.config.limit_request_head,
                limits.H2_MAX_CONTINUATIONS,
            )
            raise _ConnectionError(ENHANCE_YOUR_CALM, "header block too large")
        if flags & END_HEADERS:
            block = b"".join(self.block)
            flags = self.block_flags
            self.block_stream = 0
            self.block = []
            self._header_block(flags, stream_id, block)

    def _decode(self, block: bytes) -> tuple[list[tuple[bytes, bytes]], list[Any] | None]:
        """The fields of a header block; a block seen before under the same table, from cache.

        Only literal fields with incremental indexing and table size updates change
        the dynamic table; when a block changed nothing, decoding it again would
        give the same fields, so they are kept until the table next changes. (A
        change always puts a new entry first, or changes the size.) Returns the
        fields and their cache entry, [table version, fields, checked head or None].
        """
        cached = self.decoded.get(block)
        if cached is not None and cached[0] == self.table_version:
            return cached[1], cached
        table = self.decoder.header_table
        entries = table.dynamic_entries
        first = entries[0] if entries else None
        size = table.maxsize
        try:
            fields = cast(list[tuple[bytes, bytes]], self.decoder.decode(block, raw=True))
        except OversizedHeaderListError:
            raise _ConnectionError(ENHANCE_YOUR_CALM, "header list too large") from None
        except HPACKError as exc:
            raise _ConnectionError(COMPRESSION_ERROR, f"header block: {exc}") from None
        if (entries[0] if entries else None) is not first or table.maxsize != size:
            self.table_version += 1  # what was cached may be stale
            return fields, None
        if len(block) > 1024 or len(fields) > self.config.limit_request_fields:
            return fields, None
        if len(self.decoded) >= 32:
            self.decoded.clear()
        cached = self.decoded[block] = [self.table_version, fields, None]
        return fields, cached

    def _header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        fields, cached = self._decode(block)  # always: the decoder's table must stay in step
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._trailers(stream, flags, fields)
            return
        if stream_id <= self.last_stream_id:
            closed = self.closed_ids.get(stream_id)
            if closed:
                return  # we reset it; frames in flight are ignored (section 5.4.2)
            if closed is None:
                raise _ConnectionError(PROTOCOL_ERROR, "stream id lower than one already used")
            raise _ConnectionError(STREAM_CLOSED, "HEADERS on a closed stream")
        if self.goaway_sent:
            # After GOAWAY, new streams are ignored (section 6.8); their frames too,
            # and the last stream id announced stays what it was.
            self._closed(stream_id, True)
            return
        self.last_stream_id = stream_id
        if flags & 0x100:
            self.reset(stream_id, PROTOCOL_ERROR)
            return
        if len(self.streams) >= self.config.h2_max_concurrent_streams:
            self.reset(stream_id, REFUSED_STREAM)
            return
        head = cached[2] if cached is not None else None
        if head is None:
            head = self._head(fields)
            if cached is not None:
                cached[2] = head
        if type(head) is not _Head:
            if type(head) is _Malformed:
                self.reset(stream_id, PROTOCOL_ERROR)
            else:
                self._refuse(stream_id, flags, cast(_Refused, head))
            return
        self._open(stream_id, flags, head)

    def _head(self, fields: list[tuple[bytes, bytes]]) -> _Head | _Malformed | _Refused:
        try:
            _check_sizes(fields, self.config)
            return _parse_head(fields, self.connect_protocol)
        except (_Malformed, _Refused) as exc:
            return exc

    def _open(self, stream_id: int, flags: int, head: _Head) -> None:
        config = self.config
        if head.content_length > config.limit_request_body:
            self._refuse(stream_id, flags, _Refused(413, "Request body too large"))
            return
        scope = self.peer.scope(
            head.method, "2", head.raw_path, head.query, list(head.headers), head.forwarded
        )
        stream = self._new_stream(stream_id, scope, head.method == "HEAD")
        stream.expected = head.content_length
        if flags & END_STREAM:
            stream.remote_closed = True
            stream.body_complete = True
            if head.content_length > 0:
                self._malformed(stream, "content-length with no body")
                return
        else:
            stream.expect_continue = head.expect_continue
        if head.protocol is not None:
            self._open_websocket(stream, head.protocol)
            return
        start_request(self.state, stream, self.app)

    def _new_stream(self, stream_id: int, scope: dict[str, Any], head_only: bool) -> H2Stream:
        stream = H2Stream(
            self, scope, head_only, stream_id, self.peer_initial_window, self.stream_window
        )
        if self.gate.paused:
            stream.writing_paused = True
        if self.state.access_log or self.state.metrics is not None:
            stream.start_time = perf_counter()
        self.streams[stream_id] = stream
        return stream

    def _trailers(self, stream: H2Stream, flags: int, fields: list[tuple[bytes, bytes]]) -> None:
        if stream.remote_closed:
            self.reset(stream.stream_id, STREAM_CLOSED)
        elif not flags & END_STREAM or any(name[:1] == b":" for name, _ in fields):
            self._malformed(stream, "trailers without END_STREAM or with pseudo-header fields")
        else:
            # ASGI has no request trailers: they end the body.
            self._remote_end(stream)

    def _refuse(self, stream_id: int, flags: int, refused: _Refused) -> None:
        """Answer a request the server rejects itself (431, 413, 417), without the app."""
        scope = self.peer.scope("GET", "2", b"/", b"", [], False)
        stream = self._new_stream(stream_id, scope, False)
        stream.remote_closed = bool(flags & END_STREAM)
        stream.body_complete = True
        self._error_response(stream, refused.status, refused.detail)
        self.app_finished(stream)  # ends the stream (RST_STREAM(NO_ERROR) if a body follows)

    def _error_response(self, stream: H2Stream, status: int, detail: str) -> None:
        """The server's own answer on a stream whose response has not begun."""
        logger.info("Bad request from %s: %s", peer_name(self.peer.client), detail)
        stream.state = DONE
        stream.status = status
        self.write_head(stream, status, _ERROR_FIELDS, detail.encode(), False)

    def _malformed(self, stream: H2Stream, detail: str) -> None:
        logger.info("Malformed HTTP/2 request from %s: %s", peer_name(self.peer.client), detail)
        self.reset(stream.stream_id, PROTOCOL_ERROR)

    # -- WebSocket over HTTP/2 (RFC 8441) ------------------------------------------

    def _open_websocket(self, stream: H2Stream, protocol: bytes) -> None:
        if protocol != b"websocket":
            detail = f"Unsupported :protocol {protocol.decode('latin-1')}"
            start_task(
                self.state, stream, stream.run(refuse_handshake(501, detail), self.state.tasks)
            )
            return
        stream.scope = websocket_scope(stream.scope)
        start_websocket(stream, self, self.app, self.state)

    def accept_websocket(
        self, session: WebSocketSession, response: Response, data: bytes
    ) -> WebSocketTransport:
        """Answer 200 to the extended CONNECT and carry the session (Handover interface)."""
        stream = cast(H2Stream, session.http)
        fields = [_STATUS[200]]
        for name, value in response.headers.raw_items():
            lname = name.lower().encode("latin-1")
            if lname in (b"connection", b"upgrade", b"sec-websocket-accept", b"date"):
                continue
            fields.append(_encoder.encode([(lname, value.encode("latin-1"))]))
        if self.config.date_header:
            fields.append(self._defaults_block(server=False))
        channel = H2WebSocket(self, stream, session)
        stream.channel = channel
        if stream.body:  # frames the client sent before our answer
            early, stream.body = b"".join(stream.body), []
            self.loop.call_soon(session.feed_data, early)
            self.release(stream)
        self._send_headers(stream.stream_id, b"".join(fields), False)
        if self.state.metrics is not None:
            self.state.metrics.websockets.inc()
        if self.state.access_log:
            where = peer_name(self.peer.client)
            access_logger.info('%s - "WebSocket %s" 200', where, session.scope["path"])
        self._flush()
        return channel

    # -- DATA, WINDOW_UPDATE, RST_STREAM ------------------------------------------------

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:  # noqa: C901
        if not stream_id:
            raise _ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        self.recv_window -= flow
        if self.recv_window < 0:
            raise _ConnectionError(FLOW_CONTROL_ERROR, "connection window exceeded")
        data = _unpad(payload) if flags & PADDED else payload
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            self._credit_connection(flow)
            if self.closed_ids.get(stream_id):
                return  # a stream we reset or ignored: frames in flight are dropped
            if stream is not None:
                self.reset(stream_id, STREAM_CLOSED)
            elif stream_id > self.last_stream_id:
                raise _ConnectionError(PROTOCOL_ERROR, "DATA on an idle stream")
            else:
                raise _ConnectionError(STREAM_CLOSED, "DATA on a closed stream")
            return
        stream.recv_window -= flow
        if stream.recv_window < 0:
            self._credit_connection(flow)
            self.reset(stream_id, FLOW_CONTROL_ERROR)
            return
        if data:
            size = stream.received + len(data)
            stream.received = size
            if size > self.config.limit_request_body:
                self._credit_connection(flow)
                self._too_large(stream)
                return
            if stream.expected >= 0 and size > stream.expected:
                self._credit_connection(flow)
                self._malformed(stream, "body longer than its content-length")
                return
            stream.held += len(data)
            channel = stream.channel
            if channel is None:
                stream.feed_body(data)
            else:
                channel.last_seen = self.state.now
                channel.session.feed_data(data)
                if not stream.paused:  # the session took it (else: when it resumes)
                    self.release(stream)
        elif not flags & END_STREAM:
            self._count_control()  # empty DATA frames cost work and carry nothing
        if flow > len(data):
            # Padding is nobody's to read: it is given back at once.
            self._credit_connection(flow - len(data))
            self._reopen(stream)
        if flags & END_STREAM:
            self._remote_end(stream)

    def _too_large(self, stream: H2Stream) -> None:
        stream.feed_disconnect()
        if stream.state == 0 and stream.channel is None:
            self._error_response(stream, 413, "Request body too large")
            self.reset(stream.stream_id, NO_ERROR)  # section 8.1: stop the upload
        else:
            logger.info("Bad request from %s: body too large", peer_name(self.peer.client))
            self.reset(stream.stream_id, CANCEL)

    def _remote_end(self, stream: H2Stream) -> None:
        if stream.expected >= 0 and stream.received != stream.expected:
            self._malformed(stream, "body shorter than its content-length")
            return
        stream.remote_closed = True
        channel = stream.channel
        if channel is not None:
            channel.session.feed_eof()
        else:
            stream.feed_end()
        if stream.local_closed:
            self._drop(stream)

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ConnectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE is not 4 octets")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if not stream_id:
            if not increment:
                raise _ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise _ConnectionError(FLOW_CONTROL_ERROR, "connection window above 2^31-1")
            if self.blocked:
                self._unblock()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream_id and stream_id not in self.closed_ids:
                raise _ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return
        if not increment:
            self.reset(stream_id, PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self.reset(stream_id, FLOW_CONTROL_ERROR)
            return
        if stream.out:
            self._push(stream)

    def _on_rst_stream(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ConnectionError(FRAME_SIZE_ERROR, "RST_STREAM is not 4 octets")
        if not stream_id:
            raise _ConnectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream_id and stream_id not in self.closed_ids:
                raise _ConnectionError(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
            return
        if not stream.local_closed and self._count_reset():
            # CVE-2023-44487: requests opened and cancelled at once cost us an app
            # call each while never counting against the concurrency limit.
            self._disconnect(stream)
            self._drop(stream)
            raise _ConnectionError(ENHANCE_YOUR_CALM, "too many streams reset")
        self._disconnect(stream)
        self._drop(stream)

    # -- flow control: what the client may send -------------------------------------

    def _credit_connection(self, amount: int) -> None:
        """`amount` bytes are done with: the client may send as many again (in batches)."""
        due = self.conn_held + amount
        if due >= self.conn_window // 2:
            self.conn_held = 0
            self.recv_window += due
            self.wbuf.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(due)))
            self._schedule_flush()
        else:
            self.conn_held = due

    def release(self, stream: H2Stream) -> None:
        """The app took what `stream` held: the client may send as much again."""
        held = stream.held
        if held:
            stream.held = 0
            self._credit_connection(held)
        self._reopen(stream)

    def _reopen(self, stream: H2Stream) -> None:
        """Announce the stream window freed so far, once it is half the window."""
        if stream.remote_closed:
            return
        # What the client has sent, less what the app has not taken yet.
        due = self.stream_window - stream.recv_window - stream.held
        if due >= self.stream_window // 2:
            stream.recv_window += due
            self.wbuf.append(frame(WINDOW_UPDATE, 0, stream.stream_id, _U32.pack(due)))
            self._schedule_flush()

    # -- sending --------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        wbuf = self.wbuf
        if wbuf and self.phase != _CLOSED:
            self.wbuf = []
            self.transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))

    def _send_headers(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        if not self.table_size_sent:
            self.table_size_sent = True
            block = _TABLE_SIZE_ZERO + block
        flags = END_STREAM if end_stream else 0
        limit = self.peer_max_frame
        if len(block) <= limit:
            self.wbuf.append(frame(HEADERS, flags | END_HEADERS, stream_id, block))
        else:
            self.wbuf.append(frame(HEADERS, flags, stream_id, block[:limit]))
            for offset in range(limit, len(block), limit):
                last = offset + limit >= len(block)
                self.wbuf.append(
                    frame(
                        CONTINUATION,
                        END_HEADERS if last else 0,
                        stream_id,
                        block[offset : offset + limit],
                    )
                )
        if not self.flush_scheduled:  # (_schedule_flush, inline: once or twice a response)
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_data(self, stream: H2Stream, data: bytes, end: bool) -> None:
        """Send body bytes (and END_STREAM) as the windows allow; queue the rest."""
        if stream.local_closed:
            return
        size = len(data)
        if stream.out or size > stream.send_window or size > self.send_window:
            if data:
                stream.out.append(data)
            stream.out_end = end
            self._push(stream)
            return
        stream.send_window -= size
        self.send_window -= size
        limit = self.peer_max_frame
        sid = stream.stream_id
        if size <= limit:
            self._data(sid, END_STREAM if end else 0, data)
        else:
            view = memoryview(data)
            for offset in range(0, size, limit):
                last = end and offset + limit >= size
                self._data(sid, END_STREAM if last else 0, view[offset : offset + limit])
        if not self.flush_scheduled:  # (_schedule_flush, inline: once or twice a response)
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)
        if end:
            self._local_end(stream)

    def _data(self, stream_id: int, flags: int, data: bytes | memoryview) -> None:
        """One DATA frame; its payload is not copied until the flush joins the buffer."""
        self.wbuf.append(_HEAD.pack(len(data) << 8 | DATA, flags, stream_id))
        if data:
            self.wbuf.append(data)

    def _push(self, stream: H2Stream) -> None:
        """Send what the windows allow of `stream`'s queued output."""
        out = stream.out
        sid = stream.stream_id
        limit = self.peer_max_frame
        ended = False
        while out:
            allowed = min(stream.send_window, self.send_window, limit)
            if allowed <= 0:
                break
            chunk = out[0]
            if len(chunk) > allowed:
                out[0] = chunk[allowed:]
                chunk = chunk[:allowed]
            else:
                out.pop(0)
            stream.send_window -= len(chunk)
            self.send_window -= len(chunk)
            ended = not out and stream.out_end and stream.out_trailers is None
            self._data(sid, END_STREAM if ended else 0, chunk)
        self._schedule_flush()
        if out:
            self.blocked[sid] = stream
            self._writing_paused(stream, True)
            return
        self.blocked.pop(sid, None)
        if stream.out_trailers is not None:
            self._send_headers(sid, stream.out_trailers, True)
            stream.out_trailers = None
            self._local_end(stream)
        elif stream.out_end:
            if not ended:
                self._data(sid, END_STREAM, b"")
            self._local_end(stream)
        if not self.gate.paused:
            self._writing_paused(stream, False)

    def _unblock(self) -> None:
        for stream in list(self.blocked.values()):
            if self.send_window <= 0:
                break
            if stream.send_window > 0:
                self._push(stream)

    def _writing_paused(self, stream: H2Stream, paused: bool) -> None:
        stream.writing_paused = paused
        channel = stream.channel
        if channel is not None:
            channel.session.writing_paused = paused
        if not paused and stream.waiter is not None:
            waiter, stream.waiter = stream.waiter, None
            wake([waiter])

    async def wait_writable(self, stream: HTTPStream) -> None:
        h2 = cast(H2Stream, stream)
        while (h2.out or self.gate.paused) and not (
            h2.local_closed or h2.disconnected or self.phase == _CLOSED
        ):
            waiter = self.loop.create_future()
            h2.waiter = waiter
            await waiter

    def _local_end(self, stream: H2Stream) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            self._drop(stream)

    # -- Writer interface (used by HTTPStream) ---------------------------------------

    def write_head(
        self,
        stream: HTTPStream,
        status: int,
        headers: Fields,
        body: bytes,
        more: bool,
    ) -> int:
        h2 = cast(H2Stream, stream)
        if h2.local_closed:
            return -1
        parts = [_STATUS[status]]
        declared = _encode_fields(headers, parts)
        last = not more and not stream.trailers
        length = announced_length(stream, declared, body, more, not more)
        if length >= 0:
            parts.append(_content_length(length))
        parts.append(self._defaults_block())
        block = b"".join(parts)
        sid = h2.stream_id
        if stream.no_body or (not body and last):
            self._send_headers(sid, block, True)
            self._local_end(h2)
        else:
            self._send_headers(sid, block, False)
            if body or last:
                self.send_data(h2, body, last)
        if last:
            response_done(self.state, stream)
        return declared

    def _defaults_block(self, server: bool = True) -> bytes:
        state = self.state
        key = (state.default_headers, server)
        cached = _DEFAULTS.get(key)
        if cached is None:
            config = self.config
            fields = []
            if config.server_header and server:
                fields.append((b"server", b"levante"))
            if config.date_header:
                fields.append((b"date", state.date))
            cached = _encoder.encode(fields) if fields else b""
            if len(_DEFAULTS) > 8:
                _DEFAULTS.clear()
            _DEFAULTS[key] = cached
        return cached

    def write_body(self, stream: HTTPStream, data: bytes, more: bool) -> None:
        h2 = cast(H2Stream, stream)
        last = not more and not stream.trailers
        if not stream.no_body and (data or last):
            self.send_data(h2, data, last)
        if last:
            response_done(self.state, stream)

    def write_trailers(self, stream: HTTPStream, headers: Fields) -> None:
        h2 = cast(H2Stream, stream)
        block = _trailer_block(headers)
        if not h2.local_closed:
            if h2.out:
                h2.out_trailers = block
                h2.out_end = True
            else:
                self._send_headers(h2.stream_id, block, True)
                self._local_end(h2)
        response_done(self.state, stream)

    def send_continue(self, stream: HTTPStream) -> None:
        h2 = cast(H2Stream, stream)
        if not h2.local_closed:
            self._send_headers(h2.stream_id, _STATUS[100], False)

    def body_consumed(self, stream: HTTPStream) -> None:
        self.release(cast(H2Stream, stream))

    def abort(self, stream: HTTPStream) -> None:
        self.reset(cast(H2Stream, stream).stream_id, INTERNAL_ERROR)

    def app_finished(self, stream: HTTPStream) -> None:
        h2 = cast(H2Stream, stream)
        if (h2.local_closed and h2.remote_closed) or h2.channel is not None:
            return  # closed (and dropped), or a WebSocket: its session ends the stream
        if not h2.local_closed and not h2.out_end:
            # The failure policy always completes or aborts; this is a guard.
            self.reset(h2.stream_id, INTERNAL_ERROR)
        elif not h2.remote_closed and h2.local_closed:
            # Answered before the request body ended: the client may stop sending it.
            self.reset(h2.stream_id, NO_ERROR)

    # -- ending streams and the connection --------------------------------------------

    def reset(self, stream_id: int, code: int) -> None:
        """Reset a stream (a stream error, or we are done with it)."""
        stream = self.streams.get(stream_id)
        if stream is not None:
            if code != NO_ERROR:
                self._disconnect(stream)
            self._drop(stream)
        self._closed(stream_id, True)
        self.wbuf.append(frame(RST_STREAM, 0, stream_id, _U32.pack(code)))
        self._schedule_flush()
        if code != NO_ERROR and self._count_reset():
            # A client can make us reset streams (bad frames, windows, limits) as fast
            # as it can reset them itself ("MadeYouReset", CVE-2025-8671): the same
            # limit applies, and each of these may leave an app call running.
            self._connection_error(ENHANCE_YOUR_CALM, "too many streams reset")

    def _count_reset(self) -> bool:
        """Count a stream reset before its response ended; True once past the limit."""
        return self.phase != _CLOSED and not self.resets.spend(self.state.now, self.peer)

    def _closed(self, stream_id: int, reset: bool) -> None:
        """Remember a closed stream (bounded): frames for it are errors, or ignored if reset."""
        closed = self.closed_ids
        if len(closed) >= 512:
            for old in list(closed)[:256]:
                del closed[old]
        if reset or stream_id not in closed:
            closed[stream_id] = reset

    def _disconnect(self, stream: H2Stream) -> None:
        channel = stream.channel
        if channel is not None:
            channel.closing = True
            channel.session.feed_disconnect()
        else:
            stream.feed_disconnect()
        if stream.waiter is not None:
            waiter, stream.waiter = stream.waiter, None
            wake([waiter])

    def _drop(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        if self.streams.pop(sid, None) is None:
            return
        # Closed both ways now (if it was not already): nothing more is sent or read.
        stream.local_closed = stream.remote_closed = True
        self.blocked.pop(sid, None)
        self._closed(sid, False)
        if stream.held:
            # Body bytes the app will never read: the connection's window gets them back.
            self._credit_connection(stream.held)
            stream.held = 0
        if stream.channel is not None:
            stream.channel.closing = True
            stream.channel.session.feed_disconnect()
            if self.state.metrics is not None:
                self.state.metrics.websockets.dec()
        if stream.waiter is not None:
            waiter, stream.waiter = stream.waiter, None
            wake([waiter])
        if not self.streams:
            self.deadline = self.state.now + self.config.timeout_keep_alive + 1.0
            if self.goaway_sent or self.peer_goaway:
                self._close()

    def _connection_error(self, code: int, detail: str) -> None:
        if self.phase == _CLOSED:
            return
        if code not in (NO_ERROR, ENHANCE_YOUR_CALM):
            logger.info("HTTP/2 error from %s: %s", peer_name(self.peer.client), detail)
        self.wbuf.append(
            frame(GOAWAY, 0, 0, _GOAWAY.pack(self.last_stream_id, code) + detail.encode())
        )
        self.goaway_sent = True
        for stream in list(self.streams.values()):
            self._disconnect(stream)
        self._close()

    def _close(self) -> None:
        if self.phase == _CLOSED:
            return
        self._flush()
        self.phase = _CLOSED
        self.transport.close()

    def on_tick(self, now: float) -> None:
        """Called about once a second by the server: timeouts and WebSocket keep-alives."""
        if self.phase == _CLOSED:
            return
        if not self.streams and now >= self.deadline:
            if self.phase == _PREFACE:
                self._close()
            else:
                self.goaway(NO_ERROR)
                self._close()
            return
        for stream in list(self.streams.values()):
            if stream.channel is not None:
                stream.channel.on_tick(now)

    def goaway(self, code: int) -> None:
        """Tell the client no new streams will be served (those opened go on)."""
        if not self.goaway_sent and self.phase != _CLOSED:
            self.goaway_sent = True
            self.wbuf.append(frame(GOAWAY, 0, 0, _GOAWAY.pack(self.last_stream_id, code)))
            self._flush()

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY, let open streams finish, then close."""
        if self.phase == _PREFACE:
            # Accepted as the listener closed: the streams of the first read are
            # served, then GOAWAY (see data_received).
            self.deadline = min(self.deadline, self.state.now + limits.SHUTDOWN_FIRST_REQUEST)
            self.shutdown_pending = True
            return
        self.goaway(NO_ERROR)
        if not self.streams:
            self._close()
            return
        for stream in list(self.streams.values()):
            channel = stream.channel
            if channel is not None:
                channel.session.going_away()
            elif stream.body_complete:
                stream.signal_shutdown()

    def force_close(self) -> None:
        """The shutdown timeout passed: drop the connection."""
        self.phase = _CLOSED
        self.transport.abort()


_DEFAULTS: dict[tuple[bytes, bool], bytes] = {}
_ERROR_FIELDS = ((b"content-type", b"text/plain; charset=utf-8"),)
_LENGTHS = {n: _encoder.encode([(b"content-length", b"%d" % n)]) for n in range(1024)}


def _content_length(size: int) -> bytes:
    encoded = _LENGTHS.get(size)
    if encoded is None:
        encoded = _encoder.encode([(b"content-length", b"%d" % size)])
    return encoded


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise _ConnectionError(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]


def settings_from_header(value: bytes) -> bytes:
    """The SETTINGS payload an ``HTTP2-Settings`` header carries (base64url, unpadded)."""
    text = value.strip()
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
