"""A frame-level HTTP/2 client for tests: raw frames over a blocking socket.

It sends whatever bytes it is given (what a well-behaved client library refuses to
send) and tracks what the server answers, frame by frame and per stream, with the
expectations the HTTP/2 tests share: a connection error, a stream error, a complete
response, a PING round trip (the server has read everything sent before it).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import hpack

# -- frames ------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Deadlines: a passing check returns as soon as its answer arrives, so these only bound
# how long a failing one waits (generous: tests run two at a time on two cores).
HANDSHAKE_TIMEOUT = 5.0  # seconds to connect, exchange SETTINGS, or send
ERROR_TIMEOUT = 5.0  # seconds to wait for a RST_STREAM or GOAWAY
RESPONSE_TIMEOUT = 5.0  # seconds to wait for a complete response
PING_TIMEOUT = 5.0  # seconds to wait for a PING acknowledgement


class FrameType(IntEnum):
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


class ErrorCode(IntEnum):
    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class Setting(IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8


# Flags (ACK and END_STREAM share a bit; which applies depends on the frame type).
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

MAX_WINDOW = 2**31 - 1
DEFAULT_MAX_FRAME_SIZE = 16384


def encode_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: 24-bit length, type, flags, 32-bit stream id (reserved bit included)."""
    return (
        struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags]) + u32(stream_id) + payload
    )


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def settings_frame(*pairs: tuple[int, int]) -> bytes:
    return encode_frame(
        FrameType.SETTINGS, 0, 0, b"".join(struct.pack(">HI", *pair) for pair in pairs)
    )


def rst_stream_frame(stream_id: int, code: int) -> bytes:
    return encode_frame(FrameType.RST_STREAM, 0, stream_id, u32(code))


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return encode_frame(FrameType.WINDOW_UPDATE, 0, stream_id, u32(increment))


def priority_fields(dependency: int, weight: int, *, exclusive: bool = False) -> bytes:
    """The 5-octet stream dependency and weight of PRIORITY and HEADERS frames."""
    return u32(dependency | (0x80000000 if exclusive else 0)) + bytes([weight])


def priority_frame(stream_id: int, dependency: int, weight: int) -> bytes:
    return encode_frame(FrameType.PRIORITY, 0, stream_id, priority_fields(dependency, weight))


def ping_frame(payload: bytes, *, flags: int = 0, stream_id: int = 0) -> bytes:
    return encode_frame(FrameType.PING, flags, stream_id, payload)


def enum_name(kind: type[IntEnum], value: int) -> str:
    """The member name for `value`, or the value in hex when `kind` has no such member."""
    try:
        return kind(value).name
    except ValueError:
        return f"0x{value:x}"


@dataclass(frozen=True)
class Frame:
    """A frame received from the server."""

    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int | None:
        """The error code of a RST_STREAM or GOAWAY frame."""
        if self.type == FrameType.RST_STREAM and len(self.payload) == 4:
            return int.from_bytes(self.payload, "big")
        if self.type == FrameType.GOAWAY and len(self.payload) >= 8:
            return int.from_bytes(self.payload[4:8], "big")
        return None

    @property
    def last_stream_id(self) -> int:
        """The last stream id of a GOAWAY frame."""
        return int.from_bytes(self.payload[:4], "big") & 0x7FFFFFFF

    def is_error(self) -> bool:
        return self.type in (FrameType.RST_STREAM, FrameType.GOAWAY)

    def describe(self) -> str:
        name = enum_name(FrameType, self.type)
        detail = ""
        if self.error_code is not None:
            detail = enum_name(ErrorCode, self.error_code)
            if self.type == FrameType.GOAWAY:
                detail = f"last={self.last_stream_id} {detail} {self.payload[8:]!r}"
        elif self.type == FrameType.WINDOW_UPDATE and len(self.payload) == 4:
            detail = f"+{int.from_bytes(self.payload, 'big')}"
        elif self.type == FrameType.SETTINGS:
            pairs = [
                struct.unpack(">HI", self.payload[i : i + 6])
                for i in range(0, len(self.payload) - 5, 6)
            ]
            detail = str(dict(pairs))
        elif self.type == FrameType.PING:
            detail = repr(self.payload)
        else:
            detail = f"len={len(self.payload)}"
        return f"{name}(stream={self.stream_id}, flags=0x{self.flags:x}, {detail})"


@dataclass
class StreamState:
    """What the server sent on one stream."""

    header_blocks: list[list[tuple[str, str]]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset_code: int | None = None

    @property
    def status(self) -> str | None:
        if not self.header_blocks:
            return None
        return dict(self.header_blocks[0]).get(":status")

    def describe(self) -> str:
        return (
            f"status={self.status} body={self.body[:40]!r} ended={self.ended} "
            f"reset={self.reset_code}"
        )


# -- the client --------------------------------------------------------------------


class RawH2Connection:
    """A blocking HTTP/2 client over a raw socket to 127.0.0.1.

    It sends whatever bytes it is given, and tracks what it reads back: every
    frame (for failure messages), and per stream the decoded response headers,
    body, END_STREAM and RST_STREAM.
    """

    def __init__(self, port: int, *, handshake: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buffer = b""
        self.closed = False  # the server closed or reset the connection (seen reading)
        self.send_failed = False  # a send failed: the server has stopped reading
        self.received: list[Frame] = []
        self.streams: dict[int, StreamState] = {}
        self.server_settings: dict[int, int] = {}
        self.settings_acked = False
        self.pending_block: tuple[int, bytes] | None = None  # (stream id, fragments so far)
        if handshake:
            self.handshake()

    def handshake(self) -> None:
        """Send the preface and empty SETTINGS; ACK the server's SETTINGS; wait for our ACK."""
        self.send(PREFACE + settings_frame())
        got_settings = False
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while not (got_settings and self.settings_acked):
            frame = self.read_frame(deadline)
            if frame is None:
                break
            if frame.type == FrameType.SETTINGS and not frame.flags & ACK:
                got_settings = True
                self.send(encode_frame(FrameType.SETTINGS, ACK, 0))
        assert got_settings and self.settings_acked, failure(self, "SETTINGS and a SETTINGS ACK")

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send raw bytes; a server that stopped reading is noted (`send_failed`), not raised."""
        self.sock.settimeout(HANDSHAKE_TIMEOUT)  # a read may have left a nearly spent timeout
        try:
            self.sock.sendall(data)
        except OSError:
            # The server closed (or reset) its end; what it sent before is still read.
            self.send_failed = True

    def encode(self, fields: list[tuple[str, str]], *, huffman: bool = True) -> bytes:
        return self.encoder.encode(fields, huffman=huffman)

    def request_block(
        self, path: str = "/", method: str = "GET", extra: list[tuple[str, str]] | None = None
    ) -> bytes:
        """A header block for an ordinary request, plus `extra` fields."""
        return self.encode(request_fields(path, method) + (extra or []))

    def send_request(
        self,
        stream_id: int,
        path: str = "/",
        method: str = "GET",
        *,
        end_stream: bool = True,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(
            encode_frame(
                FrameType.HEADERS, flags, stream_id, self.request_block(path, method, extra)
            )
        )

    def open_stream(self, stream_id: int = 1, path: str = "/") -> None:
        """Open a stream with a POST whose body is still to come."""
        self.send_request(stream_id, path, "POST", end_stream=False)

    def stream(self, stream_id: int) -> StreamState:
        return self.streams.setdefault(stream_id, StreamState())

    def read_frame(self, deadline: float) -> Frame | None:
        """The next frame, or None once the deadline passes or the server closes."""
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    frame = Frame(
                        type=self.buffer[3],
                        flags=self.buffer[4],
                        stream_id=int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF,
                        payload=self.buffer[9 : 9 + length],
                    )
                    self.buffer = self.buffer[9 + length :]
                    self.received.append(frame)
                    self.track(frame)
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.buffer += data

    def read_frames(
        self, timeout: float, until: Callable[[Frame], bool] | None = None
    ) -> list[Frame]:
        """Frames read until `until(frame)` holds, `timeout` passes or the server closes."""
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while (frame := self.read_frame(deadline)) is not None:
            frames.append(frame)
            if until is not None and until(frame):
                break
        return frames

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Read frames until `condition()` holds (checked before and after each frame)."""
        if not condition():
            self.read_frames(timeout, until=lambda _frame: condition())

    def track(self, frame: Frame) -> None:
        """Update the per-stream state and the connection's HPACK decoder with `frame`."""
        if frame.type == FrameType.SETTINGS and frame.flags & ACK:
            self.settings_acked = True
        elif frame.type == FrameType.SETTINGS:
            payload = frame.payload
            for offset in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[offset : offset + 6])
                self.server_settings[key] = value
        elif frame.type == FrameType.RST_STREAM:
            self.stream(frame.stream_id).reset_code = frame.error_code
        elif frame.type == FrameType.DATA:
            state = self.stream(frame.stream_id)
            state.body += strip_padding(frame)
            state.ended = state.ended or bool(frame.flags & END_STREAM)
        elif frame.type == FrameType.HEADERS:
            fragment = strip_padding(frame)
            if frame.flags & PRIORITY_FLAG:
                fragment = fragment[5:]
            self.pending_block = (frame.stream_id, fragment)
            self.stream(frame.stream_id).ended |= bool(frame.flags & END_STREAM)
        elif frame.type == FrameType.CONTINUATION and self.pending_block is not None:
            stream_id, fragments = self.pending_block
            self.pending_block = (stream_id, fragments + frame.payload)
        if frame.type in (FrameType.HEADERS, FrameType.CONTINUATION) and frame.flags & END_HEADERS:
            assert self.pending_block is not None, failure(self, "a header block start")
            stream_id, block = self.pending_block
            self.pending_block = None
            try:
                decoded = self.decoder.decode(block)
            except hpack.HPACKError as error:
                raise AssertionError(failure(self, f"a decodable header block ({error})")) from None
            fields = [(str(name), str(value)) for name, value in decoded]
            self.stream(stream_id).header_blocks.append(fields)


def strip_padding(frame: Frame) -> bytes:
    """The payload of a DATA or HEADERS frame without its padding."""
    if not frame.flags & PADDED:
        return frame.payload
    pad_length = frame.payload[0]
    return frame.payload[1 : len(frame.payload) - pad_length]


def request_fields(path: str = "/", method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]


BASE_FIELDS = request_fields()


# -- expectations ------------------------------------------------------------------


def failure(conn: RawH2Connection, expected: str) -> str:
    """A failure message: what was expected, and every frame the server sent."""
    lines = [frame.describe() for frame in conn.received] or ["<no frames>"]
    if conn.closed:
        lines.append("<connection closed by the server>")
    return f"expected {expected}; the server sent:\n    " + "\n    ".join(lines)


def is_goaway(frame: Frame) -> bool:
    return frame.type == FrameType.GOAWAY


def names(codes: tuple[ErrorCode, ...]) -> str:
    return " or ".join(code.name for code in codes)


def expect_connection_error(conn: RawH2Connection, *codes: ErrorCode) -> None:
    """A GOAWAY with one of `codes`, or the connection closed (RFC 9113 5.4.1)."""
    frames = conn.read_frames(ERROR_TIMEOUT, until=is_goaway)
    goaways = [frame for frame in frames if frame.type == FrameType.GOAWAY]
    expected = f"GOAWAY {names(codes)} (or a close)"
    if goaways:
        assert goaways[0].error_code in codes, failure(conn, expected)
    else:
        assert conn.closed, failure(conn, expected)


def expect_stream_error(conn: RawH2Connection, *codes: ErrorCode, stream_id: int = 1) -> None:
    """RST_STREAM on `stream_id` with one of `codes`, or a connection error with one of them."""

    def is_answer(frame: Frame) -> bool:
        return frame.type == FrameType.GOAWAY or (
            frame.type == FrameType.RST_STREAM and frame.stream_id == stream_id
        )

    frames = conn.read_frames(ERROR_TIMEOUT, until=is_answer)
    answers = [frame for frame in frames if is_answer(frame)]
    expected = f"RST_STREAM({stream_id}) or GOAWAY with {names(codes)} (or a close)"
    if answers:
        assert answers[0].error_code in codes, failure(conn, expected)
    else:
        assert conn.closed, failure(conn, expected)


def expect_response(
    conn: RawH2Connection, stream_id: int, body: bytes | None = None, status: str = "200"
) -> None:
    """A complete response on `stream_id` with `status` (and `body`, when given)."""
    state = conn.stream(stream_id)

    def finished() -> bool:
        # A GOAWAY ends the wait unless it is graceful and still covers the stream.
        abandoned = any(
            frame.type == FrameType.GOAWAY
            and (frame.error_code != ErrorCode.NO_ERROR or frame.last_stream_id < stream_id)
            for frame in conn.received
        )
        return state.ended or state.reset_code is not None or abandoned

    conn.wait_for(finished, RESPONSE_TIMEOUT)
    expected = f"a complete {status} response on stream {stream_id}"
    if body is not None:
        expected += f" with body {body!r}"
    ok = state.status == status and state.ended and state.reset_code is None
    got = f"{expected}, got {state.describe()}"
    assert ok and (body is None or state.body == body), failure(conn, got)


def await_ping_ack(conn: RawH2Connection, payload: bytes) -> list[Frame]:
    """Read until the ACK of the PING with `payload`; return the frames read meanwhile."""

    def is_ack(frame: Frame) -> bool:
        return frame.type == FrameType.PING and bool(frame.flags & ACK) and frame.payload == payload

    frames = conn.read_frames(PING_TIMEOUT, until=is_ack)
    assert any(is_ack(frame) for frame in frames), failure(conn, f"a PING ACK with {payload!r}")
    return frames


def expect_ping_answered(conn: RawH2Connection) -> list[Frame]:
    """The connection still works: a PING is acknowledged. Returns the frames read."""
    conn.send(ping_frame(b"probe123"))
    return await_ping_ack(conn, b"probe123")


def expect_no_error(conn: RawH2Connection) -> None:
    """A PING is acknowledged, with no RST_STREAM or GOAWAY before it."""
    frames = expect_ping_answered(conn)
    assert not any(frame.is_error() for frame in frames), failure(conn, "no RST_STREAM or GOAWAY")


def expect_settings_ack(conn: RawH2Connection) -> None:
    def is_ack(frame: Frame) -> bool:
        return frame.type == FrameType.SETTINGS and bool(frame.flags & ACK)

    frames = conn.read_frames(PING_TIMEOUT, until=is_ack)
    assert any(is_ack(frame) for frame in frames), failure(conn, "a SETTINGS ACK")


def expect_body_exactly(conn: RawH2Connection, stream_id: int, body: bytes) -> None:
    """`body` arrives on `stream_id`, and no more by the time a PING is answered."""
    state = conn.stream(stream_id)
    conn.wait_for(lambda: len(state.body) >= len(body), RESPONSE_TIMEOUT)
    expect_ping_answered(conn)
    assert state.body == body, failure(conn, f"exactly {body!r} of DATA on stream {stream_id}")


def expect_goaway(conn: RawH2Connection, code: ErrorCode) -> Frame:
    """A GOAWAY frame with `code` (a close without one does not do)."""
    frames = conn.read_frames(ERROR_TIMEOUT, until=is_goaway)
    goaways = [frame for frame in frames if frame.type == FrameType.GOAWAY]
    assert goaways and goaways[0].error_code == code, failure(conn, f"GOAWAY {code.name}")
    return goaways[0]


def expect_reset(conn: RawH2Connection, stream_id: int, code: ErrorCode) -> None:
    """RST_STREAM on `stream_id` with `code`, the connection staying open."""

    def is_answer(frame: Frame) -> bool:
        return frame.type == FrameType.GOAWAY or (
            frame.type == FrameType.RST_STREAM and frame.stream_id == stream_id
        )

    conn.read_frames(ERROR_TIMEOUT, until=is_answer)
    expected = f"RST_STREAM({stream_id}) {code.name}"
    assert conn.stream(stream_id).reset_code == code, failure(conn, expected)
    expect_no_error(conn)
