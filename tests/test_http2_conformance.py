"""HTTP/2 conformance: an in-repo equivalent of h2spec's test catalogue.

Each case sends hand-built frames over a raw socket (so it can send what a
well-behaved client library refuses to) and checks the server's answer:

* RFC 9113 (HTTP/2): the connection preface (3.4), frame format and size (4.1,
  4.2), header blocks (4.3), stream states and identifiers (5.1), concurrency
  (5.1.2), stream dependencies (5.3.1), error handling (5.4), extensions (5.5),
  every frame type (6.1 to 6.10, including flow control in 6.9), error codes (7),
  and HTTP semantics: fields, pseudo-header fields, content-length, push (8.1 to 8.4);
* RFC 7541 (HPACK): index address space (2.3), dynamic table size updates (4.2,
  6.3), Huffman padding (5.2) and the field representations (6.1, 6.2);
* h2spec's "generic" group: ordinary requests and frames on closed streams.

Test ids use h2spec's catalogue numbering ("6.9.1-stream-window-overflow"),
which follows RFC 7540: its 8.1.2.x sections are RFC 9113's 8.2 and 8.3
(fields, pseudo-header fields), 8.1.2.6 is 8.1.1 (content-length) and 8.2 is
8.4 (server push). As in h2spec, an error the RFC allows to be a stream error
also passes as a connection error with the same code, and closing the
connection passes for either.

One server runs for the whole module; every case opens its own connection.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import hpack
import pytest

from tests.conftest import Running, start_server
from tests.h2raw import (
    ACK,
    BASE_FIELDS,
    DEFAULT_MAX_FRAME_SIZE,
    END_HEADERS,
    END_STREAM,
    ERROR_TIMEOUT,
    MAX_WINDOW,
    PADDED,
    PING_TIMEOUT,
    PREFACE,
    PRIORITY_FLAG,
    RESPONSE_TIMEOUT,
    ErrorCode,
    FrameType,
    RawH2Connection,
    Setting,
    await_ping_ack,
    encode_frame,
    expect_body_exactly,
    expect_connection_error,
    expect_no_error,
    expect_ping_answered,
    expect_response,
    expect_settings_ack,
    expect_stream_error,
    failure,
    is_goaway,
    ping_frame,
    priority_fields,
    priority_frame,
    rst_stream_frame,
    settings_frame,
    u32,
    window_update_frame,
)

# -- the app under test ------------------------------------------------------------

Message = dict[str, Any]


async def conformance_app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Reads the whole request body, then answers 200 with a short text body.

    ``/echo`` answers ``len=N`` (the request body size), ``/digits`` answers
    ``0123456789`` (for flow-control cases), any other path answers ``ok``.
    """
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"] == "/echo":
        body = b"len=%d" % size
    elif scope["path"] == "/digits":
        body = b"0123456789"
    else:
        body = b"ok"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- the cases ---------------------------------------------------------------------


class Opener(Protocol):
    def __call__(self, *, handshake: bool = True) -> RawH2Connection: ...


Check = Callable[[Opener], None]


@dataclass(frozen=True)
class ConformanceCase:
    section: str  # h2spec's section: RFC 7540 numbering, or "generic", or "hpack-<RFC 7541>"
    slug: str
    check: Check

    @property
    def test_id(self) -> str:
        return f"{self.section}-{self.slug}"


CASES: list[ConformanceCase] = []


def case(section: str, slug: str) -> Callable[[Check], Check]:
    """Register the decorated function as the conformance case ``<section>-<slug>``."""

    def register(check: Check) -> Check:
        CASES.append(ConformanceCase(section, slug, check))
        return check

    return register


# 3.5 (RFC 9113 3.4): the connection preface


@case("3.5", "valid-preface")
def check_valid_preface(open_h2: Opener) -> None:
    """The preface and SETTINGS are answered with SETTINGS and a SETTINGS ACK."""
    conn = open_h2()
    assert conn.settings_acked, failure(conn, "SETTINGS and a SETTINGS ACK")


@case("3.5", "invalid-preface")
def check_invalid_preface(open_h2: Opener) -> None:
    """A connection that starts with something else fails."""
    conn = open_h2(handshake=False)
    conn.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("3.5", "preface-without-settings")
def check_preface_without_settings(open_h2: Opener) -> None:
    """The client preface must end with a SETTINGS frame (RFC 9113 3.4); a PING there fails."""
    conn = open_h2(handshake=False)
    conn.send(PREFACE + ping_frame(b"12345678"))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# 4.1 to 4.3: frame format, frame size, header compression


@case("4.1", "unknown-frame-type")
def check_unknown_frame_type(open_h2: Opener) -> None:
    """A frame of an unknown type is ignored."""
    conn = open_h2()
    conn.send(encode_frame(0x16, 0, 0, bytes(8)))
    expect_ping_answered(conn)


@case("4.1", "undefined-flags")
def check_undefined_flags(open_h2: Opener) -> None:
    """Flags a frame type does not define are ignored: a PING with them is answered."""
    conn = open_h2()
    conn.send(ping_frame(b"abcdefgh", flags=0x16))
    await_ping_ack(conn, b"abcdefgh")


@case("4.1", "reserved-bit")
def check_reserved_bit(open_h2: Opener) -> None:
    """The reserved bit of the stream id is ignored: a PING with it set is answered."""
    conn = open_h2()
    conn.send(ping_frame(b"abcdefgh", stream_id=0x80000000))
    await_ping_ack(conn, b"abcdefgh")


@case("4.2", "data-of-max-frame-size")
def check_data_of_max_frame_size(open_h2: Opener) -> None:
    """A DATA frame of exactly SETTINGS_MAX_FRAME_SIZE (2^14) octets is accepted."""
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False, extra=[("content-length", "16384")])
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"x" * DEFAULT_MAX_FRAME_SIZE))
    expect_response(conn, 1, b"len=16384")


@case("4.2", "data-exceeds-max-frame-size")
def check_data_exceeds_max_frame_size(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"x" * (DEFAULT_MAX_FRAME_SIZE + 1)))
    expect_stream_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("4.2", "headers-exceeds-max-frame-size")
def check_headers_exceeds_max_frame_size(open_h2: Opener) -> None:
    """An oversized HEADERS frame is a connection error (it carries HPACK state)."""
    conn = open_h2()
    fields = BASE_FIELDS + [(f"x-a{index}", "a" * 4000) for index in range(5)]
    block = conn.encode(fields, huffman=False)
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("4.3", "invalid-header-block")
def check_invalid_header_block(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, bytes(5)))
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("4.3", "priority-during-header-block")
def check_priority_during_header_block(open_h2: Opener) -> None:
    """A header block is contiguous: no other frame until END_HEADERS."""
    conn = open_h2()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, conn.request_block())
        + priority_frame(1, dependency=0, weight=255)
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("4.3", "headers-other-stream-during-header-block")
def check_headers_other_stream_during_header_block(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, conn.request_block())
        + encode_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, 3, conn.request_block())
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# 5.1: stream states


@case("5.1", "idle-data")
def check_idle_data(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"x"))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("5.1", "idle-rst-stream")
def check_idle_rst_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(rst_stream_frame(1, ErrorCode.CANCEL))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("5.1", "idle-window-update")
def check_idle_window_update(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(window_update_frame(1, 100))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("5.1", "idle-continuation")
def check_idle_continuation(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, conn.request_block()))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


def complete_get(conn: RawH2Connection) -> bytes:
    """A GET on stream 1 with END_STREAM: the stream is then half-closed (remote).

    Encode it before any header block sent after it: HPACK state follows encoding order.
    """
    return encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, conn.request_block())


@case("5.1", "half-closed-remote-data")
def check_half_closed_remote_data(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(complete_get(conn) + encode_frame(FrameType.DATA, END_STREAM, 1, b"x"))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "half-closed-remote-headers")
def check_half_closed_remote_headers(open_h2: Opener) -> None:
    conn = open_h2()
    headers = complete_get(conn)
    block = conn.request_block()
    conn.send(headers + encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "half-closed-remote-continuation")
def check_half_closed_remote_continuation(open_h2: Opener) -> None:
    conn = open_h2()
    headers = complete_get(conn)
    block = conn.request_block()
    conn.send(headers + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, block))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED, ErrorCode.PROTOCOL_ERROR)


def reset_post(conn: RawH2Connection) -> bytes:
    """A POST on stream 1 that we reset at once: the stream is then closed.

    Encode it before any header block sent after it: HPACK state follows encoding order.
    """
    headers = encode_frame(FrameType.HEADERS, END_HEADERS, 1, conn.request_block(method="POST"))
    return headers + rst_stream_frame(1, ErrorCode.CANCEL)


@case("5.1", "closed-after-rst-data")
def check_closed_after_rst_data(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(reset_post(conn) + encode_frame(FrameType.DATA, END_STREAM, 1, b"x"))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "closed-after-rst-headers")
def check_closed_after_rst_headers(open_h2: Opener) -> None:
    conn = open_h2()
    reset = reset_post(conn)
    block = conn.request_block()
    conn.send(reset + encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "closed-after-rst-continuation")
def check_closed_after_rst_continuation(open_h2: Opener) -> None:
    conn = open_h2()
    reset = reset_post(conn)
    block = conn.request_block()
    conn.send(reset + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, block))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED, ErrorCode.PROTOCOL_ERROR)


def open_completed_stream(open_h2: Opener) -> RawH2Connection:
    """A connection whose stream 1 is closed: a GET answered in full."""
    conn = open_h2()
    conn.send_request(1)
    expect_response(conn, 1, b"ok")
    return conn


@case("5.1", "closed-data")
def check_closed_data(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"x"))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "closed-headers")
def check_closed_headers(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send_request(1)
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("5.1", "closed-continuation")
def check_closed_continuation(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send(encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, conn.request_block()))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED, ErrorCode.PROTOCOL_ERROR)


# 5.1.1, 5.1.2: stream identifiers, concurrency


@case("5.1.1", "even-stream-id")
def check_even_stream_id(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(2)
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("5.1.1", "decreasing-stream-id")
def check_decreasing_stream_id(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(5)
    expect_response(conn, 5, b"ok")
    conn.send_request(3)
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("5.1.2", "exceed-max-concurrent-streams")
def check_exceed_max_concurrent_streams(open_h2: Opener) -> None:
    """The stream beyond SETTINGS_MAX_CONCURRENT_STREAMS is refused."""
    conn = open_h2()
    limit = conn.server_settings.get(Setting.MAX_CONCURRENT_STREAMS, 100)
    requests = b"".join(
        encode_frame(
            FrameType.HEADERS, END_HEADERS, 1 + 2 * index, conn.request_block(method="POST")
        )
        for index in range(limit + 1)
    )
    conn.send(requests)
    expect_stream_error(
        conn, ErrorCode.PROTOCOL_ERROR, ErrorCode.REFUSED_STREAM, stream_id=1 + 2 * limit
    )


# 5.3.1, 5.4.1, 5.5: dependencies, connection errors, extensions


@case("5.3.1", "headers-self-dependency")
def check_headers_self_dependency(open_h2: Opener) -> None:
    conn = open_h2()
    payload = priority_fields(3, 15) + conn.request_block()
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 3, payload))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR, stream_id=3)


@case("5.3.1", "priority-self-dependency")
def check_priority_self_dependency(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(priority_frame(3, dependency=3, weight=15))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR, stream_id=3)


@case("5.4.1", "goaway-then-close")
def check_goaway_then_close(open_h2: Opener) -> None:
    """After a connection error the server sends GOAWAY and closes the connection."""
    conn = open_h2()
    conn.send(ping_frame(b"12345678", stream_id=3))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)
    conn.read_frames(PING_TIMEOUT)
    assert conn.closed, failure(conn, "the connection closed after the GOAWAY")


@case("5.4.1", "goaway-last-stream-id")
def check_goaway_last_stream_id(open_h2: Opener) -> None:
    """The GOAWAY names the last stream the server processed."""
    conn = open_completed_stream(open_h2)
    conn.send(ping_frame(b"12345678", stream_id=3))
    frames = conn.read_frames(ERROR_TIMEOUT, until=is_goaway)
    goaways = [frame for frame in frames if frame.type == FrameType.GOAWAY]
    assert goaways, failure(conn, "a GOAWAY")
    goaway = goaways[0]
    ok = goaway.last_stream_id == 1 and goaway.error_code == ErrorCode.PROTOCOL_ERROR
    assert ok, failure(conn, "GOAWAY PROTOCOL_ERROR with last stream id 1")


@case("5.5", "unknown-extension-frame")
def check_unknown_extension_frame(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(0xFF, 0, 0, b"hello"))
    expect_ping_answered(conn)


@case("5.5", "unknown-frame-in-header-block")
def check_unknown_frame_in_header_block(open_h2: Opener) -> None:
    """Even an extension frame may not interrupt a header block."""
    conn = open_h2()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, conn.request_block())
        + encode_frame(0xFF, 0, 0, b"hello")
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, b"")
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# 6.1: DATA


@case("6.1", "data-on-stream-0")
def check_data_on_stream_0(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 0, b"x"))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.1", "data-on-half-closed-stream")
def check_data_on_half_closed_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(complete_get(conn) + encode_frame(FrameType.DATA, END_STREAM, 1, b"x"))
    expect_stream_error(conn, ErrorCode.STREAM_CLOSED)


@case("6.1", "data-invalid-pad-length")
def check_data_invalid_pad_length(open_h2: Opener) -> None:
    """A pad length of 6 in a 6-octet payload leaves less than nothing for data."""
    conn = open_h2()
    conn.open_stream()
    conn.send(encode_frame(FrameType.DATA, END_STREAM | PADDED, 1, b"\x06" + b"x" * 5))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.1", "data-valid-padding")
def check_data_valid_padding(open_h2: Opener) -> None:
    """Padding is removed: the app sees 4 octets of body."""
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False)
    conn.send(encode_frame(FrameType.DATA, END_STREAM | PADDED, 1, b"\x03abcd" + bytes(3)))
    expect_response(conn, 1, b"len=4")


# 6.2: HEADERS


@case("6.2", "headers-then-priority")
def check_headers_then_priority(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, conn.request_block())
        + priority_frame(1, dependency=0, weight=1)
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.2", "headers-then-data")
def check_headers_then_data(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(
        encode_frame(FrameType.HEADERS, 0, 1, conn.request_block())
        + encode_frame(FrameType.DATA, END_STREAM, 1, b"x")
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.2", "headers-on-stream-0")
def check_headers_on_stream_0(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 0, conn.request_block()))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.2", "headers-invalid-pad-length")
def check_headers_invalid_pad_length(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.request_block()
    payload = bytes([len(block) + 1]) + block
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM | PADDED, 1, payload))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.2", "headers-padding-and-priority")
def check_headers_padding_and_priority(open_h2: Opener) -> None:
    """Padding and an exclusive dependency with weight are parsed away from the block."""
    conn = open_h2()
    payload = b"\x04" + priority_fields(0, 200, exclusive=True) + conn.request_block() + bytes(4)
    flags = END_HEADERS | END_STREAM | PADDED | PRIORITY_FLAG
    conn.send(encode_frame(FrameType.HEADERS, flags, 1, payload))
    expect_response(conn, 1, b"ok")


# 6.3: PRIORITY


@case("6.3", "priority-on-stream-0")
def check_priority_on_stream_0(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(priority_frame(0, dependency=1, weight=1))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.3", "priority-length-4")
def check_priority_length_4(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.PRIORITY, 0, 1, u32(0)))
    expect_stream_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("6.3", "priority-on-idle-then-headers")
def check_priority_on_idle_then_headers(open_h2: Opener) -> None:
    """PRIORITY on an idle stream does not open it: streams 1 and then 3 may still open."""
    conn = open_h2()
    conn.send(priority_frame(3, dependency=0, weight=1))
    conn.send_request(1)
    conn.send_request(3)
    expect_response(conn, 1, b"ok")
    expect_response(conn, 3, b"ok")


# 6.4: RST_STREAM


@case("6.4", "rst-stream-on-stream-0")
def check_rst_stream_on_stream_0(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(rst_stream_frame(0, ErrorCode.CANCEL))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.4", "rst-stream-on-idle-stream")
def check_rst_stream_on_idle_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(rst_stream_frame(1, ErrorCode.CANCEL))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.4", "rst-stream-length-3")
def check_rst_stream_length_3(open_h2: Opener) -> None:
    conn = open_h2()
    conn.open_stream()
    conn.send(encode_frame(FrameType.RST_STREAM, 0, 1, b"\0\0\x08"))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


# 6.5: SETTINGS


@case("6.5", "settings-ack-with-payload")
def check_settings_ack_with_payload(open_h2: Opener) -> None:
    conn = open_h2()
    payload = struct.pack(">HI", Setting.MAX_CONCURRENT_STREAMS, 100)
    conn.send(encode_frame(FrameType.SETTINGS, ACK, 0, payload))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("6.5", "settings-on-stream")
def check_settings_on_stream(open_h2: Opener) -> None:
    conn = open_h2()
    payload = struct.pack(">HI", Setting.MAX_CONCURRENT_STREAMS, 100)
    conn.send(encode_frame(FrameType.SETTINGS, 0, 1, payload))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.5", "settings-length-not-multiple-of-6")
def check_settings_length_not_multiple_of_6(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.SETTINGS, 0, 0, b"\0\x03\0\0\0"))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("6.5.2", "enable-push-2")
def check_enable_push_2(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(settings_frame((Setting.ENABLE_PUSH, 2)))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.5.2", "initial-window-size-too-large")
def check_initial_window_size_too_large(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, MAX_WINDOW + 1)))
    expect_connection_error(conn, ErrorCode.FLOW_CONTROL_ERROR)


@case("6.5.2", "max-frame-size-too-small")
def check_max_frame_size_too_small(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(settings_frame((Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE - 1)))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.5.2", "max-frame-size-too-large")
def check_max_frame_size_too_large(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(settings_frame((Setting.MAX_FRAME_SIZE, 2**24)))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.5.2", "unknown-setting")
def check_unknown_setting(open_h2: Opener) -> None:
    """An unknown setting is ignored, and the SETTINGS acknowledged."""
    conn = open_h2()
    conn.send(settings_frame((0xFF, 1)))
    expect_settings_ack(conn)


@case("6.5.3", "repeated-initial-window-size")
def check_repeated_initial_window_size(open_h2: Opener) -> None:
    """Values are processed in order: INITIAL_WINDOW_SIZE 100 then 1 leaves 1."""
    conn = open_h2()
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 100), (Setting.INITIAL_WINDOW_SIZE, 1)))
    expect_settings_ack(conn)
    conn.send_request(1)
    expect_body_exactly(conn, 1, b"o")


@case("6.5.3", "settings-acked")
def check_settings_acked(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(settings_frame((Setting.MAX_CONCURRENT_STREAMS, 10)))
    expect_settings_ack(conn)


# 6.7, 6.8: PING, GOAWAY


@case("6.7", "ping-echo")
def check_ping_echo(open_h2: Opener) -> None:
    """A PING is answered with a PING ACK carrying the same payload."""
    expect_ping_answered(open_h2())


@case("6.7", "ping-ack-not-answered")
def check_ping_ack_not_answered(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(ping_frame(b"ackackac", flags=ACK))
    frames = expect_ping_answered(conn)
    answered = any(frame.payload == b"ackackac" for frame in frames)
    assert not answered, failure(conn, "no answer to a PING with the ACK flag")


@case("6.7", "ping-on-stream")
def check_ping_on_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(ping_frame(b"12345678", stream_id=1))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.7", "ping-length-6")
def check_ping_length_6(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(ping_frame(b"123456"))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("6.8", "goaway-on-stream")
def check_goaway_on_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.GOAWAY, 0, 1, u32(0) + u32(ErrorCode.NO_ERROR)))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# 6.9: WINDOW_UPDATE and flow control


@case("6.9", "window-update-zero-on-connection")
def check_window_update_zero_on_connection(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(window_update_frame(0, 0))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.9", "window-update-zero-on-stream")
def check_window_update_zero_on_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(complete_get(conn) + window_update_frame(1, 0))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.9", "window-update-length-3")
def check_window_update_length_3(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(encode_frame(FrameType.WINDOW_UPDATE, 0, 0, b"\0\0\1"))
    expect_connection_error(conn, ErrorCode.FRAME_SIZE_ERROR)


@case("6.9.1", "initial-window-of-1")
def check_initial_window_of_1(open_h2: Opener) -> None:
    """With INITIAL_WINDOW_SIZE 1 the server sends 1 octet of DATA and waits."""
    conn = open_h2()
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 1)))
    expect_settings_ack(conn)
    conn.send_request(1)
    expect_body_exactly(conn, 1, b"o")


@case("6.9.1", "connection-window-overflow")
def check_connection_window_overflow(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send(window_update_frame(0, MAX_WINDOW) + window_update_frame(0, MAX_WINDOW))
    expect_connection_error(conn, ErrorCode.FLOW_CONTROL_ERROR)


@case("6.9.1", "stream-window-overflow")
def check_stream_window_overflow(open_h2: Opener) -> None:
    conn = open_h2()
    increments = window_update_frame(1, MAX_WINDOW) + window_update_frame(1, MAX_WINDOW)
    conn.send(complete_get(conn) + increments)
    expect_stream_error(conn, ErrorCode.FLOW_CONTROL_ERROR)


@case("6.9.2", "initial-window-size-raised")
def check_initial_window_size_raised(open_h2: Opener) -> None:
    """A stream stalled by a window of 0 resumes when INITIAL_WINDOW_SIZE is raised."""
    conn = open_h2()
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 0)))
    expect_settings_ack(conn)
    conn.send_request(1)
    state = conn.stream(1)
    conn.wait_for(lambda: bool(state.header_blocks), RESPONSE_TIMEOUT)  # not flow-controlled
    expect_ping_answered(conn)
    assert state.status == "200" and not state.body, failure(conn, "HEADERS and no DATA yet")
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 1)))
    expect_body_exactly(conn, 1, b"o")


@case("6.9.2", "negative-window")
def check_negative_window(open_h2: Opener) -> None:
    """Lowering INITIAL_WINDOW_SIZE can make a window negative (3 sent, now 2: -1);
    a WINDOW_UPDATE of 2 then allows exactly 1 more octet."""
    conn = open_h2()
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 3)))
    expect_settings_ack(conn)
    conn.send_request(1, "/digits")
    expect_body_exactly(conn, 1, b"012")
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, 2)))
    expect_settings_ack(conn)
    conn.send(window_update_frame(1, 2))
    expect_body_exactly(conn, 1, b"0123")


@case("6.9.2", "initial-window-size-overflows-open-stream")
def check_initial_window_size_overflows_open_stream(open_h2: Opener) -> None:
    """A stream window at 2^31-1 overflows when INITIAL_WINDOW_SIZE grows."""
    conn = open_h2()
    conn.open_stream()
    conn.send(window_update_frame(1, 2**31 - 65536))
    conn.send(settings_frame((Setting.INITIAL_WINDOW_SIZE, MAX_WINDOW)))
    expect_connection_error(conn, ErrorCode.FLOW_CONTROL_ERROR)


# 6.10: CONTINUATION


@case("6.10", "multiple-continuation")
def check_multiple_continuation(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.request_block(extra=[("x-a", "a" * 3000), ("x-b", "b" * 3000)])
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, block[:10])
        + encode_frame(FrameType.CONTINUATION, 0, 1, block[10:2000])
        + encode_frame(FrameType.CONTINUATION, 0, 1, block[2000:4000])
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, block[4000:])
    )
    expect_response(conn, 1, b"ok")


@case("6.10", "continuation-then-data")
def check_continuation_then_data(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.request_block()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, block[:5])
        + encode_frame(FrameType.CONTINUATION, 0, 1, block[5:])
        + encode_frame(FrameType.DATA, 0, 1, b"x")
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.10", "continuation-on-stream-0")
def check_continuation_on_stream_0(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.request_block()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, block[:5])
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 0, block[5:])
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.10", "continuation-after-end-headers")
def check_continuation_after_end_headers(open_h2: Opener) -> None:
    conn = open_h2()
    headers = complete_get(conn)
    extra = conn.encode([("x-a", "b")])
    conn.send(headers + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, extra))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.10", "continuation-after-continuation-end-headers")
def check_continuation_after_continuation_end_headers(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.request_block()
    conn.send(
        encode_frame(FrameType.HEADERS, END_STREAM, 1, block[:5])
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, block[5:])
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, conn.encode([("x-a", "b")]))
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("6.10", "continuation-after-data")
def check_continuation_after_data(open_h2: Opener) -> None:
    conn = open_h2()
    conn.open_stream()
    conn.send(
        encode_frame(FrameType.DATA, 0, 1, b"x")
        + encode_frame(FrameType.CONTINUATION, END_HEADERS, 1, conn.encode([("x-a", "b")]))
    )
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# 7: error codes


@case("7", "goaway-unknown-error-code")
def check_goaway_unknown_error_code(open_h2: Opener) -> None:
    """An unknown error code in the client's GOAWAY is not itself an error."""
    conn = open_h2()
    conn.send(encode_frame(FrameType.GOAWAY, 0, 0, u32(0) + u32(0xFF)))
    frames = conn.read_frames(PING_TIMEOUT)
    errors = [
        frame
        for frame in frames
        if frame.type == FrameType.GOAWAY and frame.error_code != ErrorCode.NO_ERROR
    ]
    assert not errors, failure(conn, "no GOAWAY with an error code")


@case("7", "rst-stream-unknown-error-code")
def check_rst_stream_unknown_error_code(open_h2: Opener) -> None:
    conn = open_h2()
    conn.open_stream()
    conn.send(rst_stream_frame(1, 0xFF))
    expect_ping_answered(conn)


# 8.1: HTTP request/response exchange


@case("8.1", "second-headers-without-end-stream")
def check_second_headers_without_end_stream(open_h2: Opener) -> None:
    """A second HEADERS (trailers) must end the stream."""
    conn = open_h2()
    conn.open_stream()
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS, 1, conn.encode([("x-t", "1")])))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("8.1", "request-trailers")
def check_request_trailers(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False, extra=[("te", "trailers")])
    trailers = conn.encode([("x-trailer", "v")])
    conn.send(
        encode_frame(FrameType.DATA, 0, 1, b"abc")
        + encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, trailers)
    )
    expect_response(conn, 1, b"len=3")


@case("8.1", "trailers-with-pseudo-header")
def check_trailers_with_pseudo_header(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False)
    trailers = conn.encode([(":method", "GET")])
    conn.send(
        encode_frame(FrameType.DATA, 0, 1, b"abc")
        + encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, trailers)
    )
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


# 8.1.2.x: malformed requests, each a stream error PROTOCOL_ERROR


def malformed_request_check(fields: list[tuple[str, str]]) -> Check:
    """A check that a GET with exactly `fields` is refused with PROTOCOL_ERROR."""

    def check(open_h2: Opener) -> None:
        conn = open_h2()
        block = conn.encode(fields)
        conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
        expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)

    return check


METHOD, SCHEME, PATH, AUTHORITY = BASE_FIELDS
MALFORMED_REQUESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("8.1.2", "uppercase-field-name", [*BASE_FIELDS, ("X-Upper", "v")]),
    ("8.1.2.1", "unknown-pseudo-header", [*BASE_FIELDS, (":foo", "v")]),
    ("8.1.2.1", "response-pseudo-header", [*BASE_FIELDS, (":status", "200")]),
    ("8.1.2.1", "pseudo-header-after-regular", [METHOD, SCHEME, PATH, ("x-a", "b"), AUTHORITY]),
    ("8.1.2.2", "connection-specific-field", [*BASE_FIELDS, ("connection", "keep-alive")]),
    ("8.1.2.2", "te-other-than-trailers", [*BASE_FIELDS, ("te", "trailers, deflate")]),
]
for malformed_section, malformed_slug, malformed_fields in MALFORMED_REQUESTS:
    case(malformed_section, malformed_slug)(malformed_request_check(malformed_fields))


@case("8.1.2.2", "te-trailers-accepted")
def check_te_trailers_accepted(open_h2: Opener) -> None:
    conn = open_h2()
    block = conn.encode([*BASE_FIELDS, ("te", "trailers")])
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_response(conn, 1, b"ok")


MALFORMED_PSEUDO_HEADERS: list[tuple[str, list[tuple[str, str]]]] = [
    ("empty-path", [METHOD, SCHEME, (":path", ""), AUTHORITY]),
    ("missing-method", [SCHEME, PATH, AUTHORITY]),
    ("missing-scheme", [METHOD, PATH, AUTHORITY]),
    ("missing-path", [METHOD, SCHEME, AUTHORITY]),
    ("duplicate-method", [METHOD, *BASE_FIELDS]),
    ("duplicate-scheme", [METHOD, SCHEME, SCHEME, PATH, AUTHORITY]),
    ("duplicate-path", [METHOD, SCHEME, PATH, PATH, AUTHORITY]),
]
for malformed_slug, malformed_fields in MALFORMED_PSEUDO_HEADERS:
    case("8.1.2.3", malformed_slug)(malformed_request_check(malformed_fields))


# 8.1.2.6: content-length


def send_post_with_content_length(conn: RawH2Connection, content_length: int) -> None:
    extra = [("content-length", str(content_length))]
    conn.send_request(1, "/echo", "POST", end_stream=False, extra=extra)


@case("8.1.2.6", "content-length-below-data")
def check_content_length_below_data(open_h2: Opener) -> None:
    conn = open_h2()
    send_post_with_content_length(conn, 1)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"test"))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("8.1.2.6", "content-length-below-sum-of-data")
def check_content_length_below_sum_of_data(open_h2: Opener) -> None:
    conn = open_h2()
    send_post_with_content_length(conn, 1)
    conn.send(
        encode_frame(FrameType.DATA, 0, 1, b"te")
        + encode_frame(FrameType.DATA, END_STREAM, 1, b"st")
    )
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("8.1.2.6", "content-length-above-data")
def check_content_length_above_data(open_h2: Opener) -> None:
    conn = open_h2()
    send_post_with_content_length(conn, 10)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"test"))
    expect_stream_error(conn, ErrorCode.PROTOCOL_ERROR)


@case("8.1.2.6", "content-length-matches-data")
def check_content_length_matches_data(open_h2: Opener) -> None:
    conn = open_h2()
    send_post_with_content_length(conn, 4)
    conn.send(
        encode_frame(FrameType.DATA, 0, 1, b"te")
        + encode_frame(FrameType.DATA, END_STREAM, 1, b"st")
    )
    expect_response(conn, 1, b"len=4")


# 8.2 (RFC 9113 8.4): server push


@case("8.2", "push-promise-from-client")
def check_push_promise_from_client(open_h2: Opener) -> None:
    conn = open_h2()
    conn.open_stream()
    payload = u32(2) + conn.request_block()
    conn.send(encode_frame(FrameType.PUSH_PROMISE, END_HEADERS, 1, payload))
    expect_connection_error(conn, ErrorCode.PROTOCOL_ERROR)


# generic: ordinary exchanges, and frames on closed streams


@case("generic", "get")
def check_get(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(1)
    expect_response(conn, 1, b"ok")


@case("generic", "head")
def check_head(open_h2: Opener) -> None:
    """HEAD: status 200 and no body."""
    conn = open_h2()
    conn.send_request(1, method="HEAD")
    expect_response(conn, 1, b"")


@case("generic", "post-with-body")
def check_post_with_body(open_h2: Opener) -> None:
    conn = open_h2()
    conn.send_request(1, "/echo", "POST", end_stream=False)
    conn.send(encode_frame(FrameType.DATA, END_STREAM, 1, b"hello"))
    expect_response(conn, 1, b"len=5")


@case("generic", "sequential-streams-dynamic-table")
def check_sequential_streams_dynamic_table(open_h2: Opener) -> None:
    """Ten requests whose repeated fields come from the HPACK dynamic table."""
    conn = open_h2()
    for index in range(10):
        stream_id = 1 + 2 * index
        conn.send_request(stream_id, extra=[("x-custom", f"v{index % 3}")])
        expect_response(conn, stream_id, b"ok")


@case("generic", "priority-on-open-stream")
def check_priority_on_open_stream(open_h2: Opener) -> None:
    conn = open_h2()
    conn.open_stream()
    conn.send(priority_frame(1, dependency=0, weight=1))
    expect_no_error(conn)


@case("generic", "window-update-on-closed-stream")
def check_window_update_on_closed_stream(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send(window_update_frame(1, 1))
    expect_no_error(conn)


@case("generic", "rst-stream-on-closed-stream")
def check_rst_stream_on_closed_stream(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send(rst_stream_frame(1, ErrorCode.CANCEL))
    expect_no_error(conn)


@case("generic", "priority-on-closed-stream")
def check_priority_on_closed_stream(open_h2: Opener) -> None:
    conn = open_completed_stream(open_h2)
    conn.send(priority_frame(1, dependency=0, weight=1))
    expect_no_error(conn)


# hpack: RFC 7541


def send_get_with_block_suffix(conn: RawH2Connection, suffix: bytes) -> None:
    """A GET whose header block is a valid request followed by the raw HPACK `suffix`."""
    block = conn.request_block() + suffix
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))


@case("hpack-2.3", "indexed-field-invalid-index")
def check_indexed_field_invalid_index(open_h2: Opener) -> None:
    """Indexed field 254: beyond the static table and the (empty) dynamic table."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\xff\x7f")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-2.3", "literal-invalid-name-index")
def check_literal_invalid_name_index(open_h2: Opener) -> None:
    """A literal (incremental indexing) whose name index 190 does not exist."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x7f\x7f\x01a")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-4.2", "table-size-update-at-end")
def check_table_size_update_at_end(open_h2: Opener) -> None:
    """A dynamic table size update (to 4096) must come first in a block, not last."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x3f\xe1\x1f")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-4.2", "table-size-update-in-middle")
def check_table_size_update_in_middle(open_h2: Opener) -> None:
    """A dynamic table size update (to 0) between two fields."""
    conn = open_h2()
    encoder = hpack.Encoder()
    first = encoder.encode([METHOD, SCHEME])
    second = encoder.encode([PATH, AUTHORITY])
    block = first + b"\x20" + second
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-5.2", "huffman-padding-over-7-bits")
def check_huffman_padding_over_7_bits(open_h2: Opener) -> None:
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-5.2", "huffman-padded-by-eos")
def check_huffman_padded_by_eos(open_h2: Opener) -> None:
    """A Huffman string padded with the whole EOS symbol (30 bits)."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-5.2", "huffman-padding-not-eos-prefix")
def check_huffman_padding_not_eos_prefix(open_h2: Opener) -> None:
    """Huffman padding that is not the most significant bits of EOS (all ones)."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x00\x85\xf2\xb2\x4a\x82\x94\xe5\x82\x94\xe7\x00")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-6.1", "indexed-field-index-0")
def check_indexed_field_index_0(open_h2: Opener) -> None:
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x80")
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-6.2", "incremental-indexing-new-name")
def check_incremental_indexing_new_name(open_h2: Opener) -> None:
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x40\x0acustom-key\x0dcustom-header")
    expect_response(conn, 1, b"ok")


@case("hpack-6.2", "without-indexing-indexed-name")
def check_without_indexing_indexed_name(open_h2: Opener) -> None:
    """Literal without indexing, name from static index 58 (user-agent)."""
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x0f\x2b\x05hello")
    expect_response(conn, 1, b"ok")


@case("hpack-6.2", "never-indexed-new-name")
def check_never_indexed_new_name(open_h2: Opener) -> None:
    conn = open_h2()
    send_get_with_block_suffix(conn, b"\x10\x08password\x06secret")
    expect_response(conn, 1, b"ok")


@case("hpack-6.3", "table-size-update-too-large")
def check_table_size_update_too_large(open_h2: Opener) -> None:
    """A size update to 4097, above SETTINGS_HEADER_TABLE_SIZE (4096)."""
    conn = open_h2()
    block = b"\x3f\xe2\x1f" + conn.request_block()
    conn.send(encode_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_connection_error(conn, ErrorCode.COMPRESSION_ERROR)


@case("hpack-6.3", "table-size-update-to-0")
def check_table_size_update_to_0(open_h2: Opener) -> None:
    """A block that starts by shrinking the dynamic table to 0 is accepted."""
    conn = open_h2()
    conn.encoder.header_table_size = 0
    conn.send_request(1)
    expect_response(conn, 1, b"ok")


# -- the test ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    """One server for every case in this module."""
    running = start_server(conformance_app, lifespan="off", timeout_graceful_shutdown=2.0)
    yield running
    running.stop()


@pytest.fixture
def open_h2(server: Running) -> Iterator[Opener]:
    """``open_h2(handshake=True)`` connects to the server; all are closed afterwards."""
    connections: list[RawH2Connection] = []

    def open_connection(*, handshake: bool = True) -> RawH2Connection:
        conn = RawH2Connection(server.port, handshake=False)
        connections.append(conn)
        if handshake:
            conn.handshake()
        return conn

    yield open_connection
    for conn in connections:
        conn.close()


@pytest.mark.parametrize("conformance_case", CASES, ids=[entry.test_id for entry in CASES])
def test_conformance(conformance_case: ConformanceCase, open_h2: Opener) -> None:
    """Run one case; its assertions name the expected answer and list every frame received."""
    conformance_case.check(open_h2)
