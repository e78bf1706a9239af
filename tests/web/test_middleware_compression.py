"""CompressionMiddleware and GZipMiddleware: negotiation, whole and streamed bodies,
and the responses that must pass untouched."""

from __future__ import annotations

import asyncio
import gzip
import os
import queue
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard

from levante.testing import TestClient
from levante.web.middleware import CompressionMiddleware, GZipMiddleware
from levante.web.middleware.compression import select_encoding
from levante.web.responses import PlainTextResponse, Response

TEXT = b"Levante is a warm easterly wind of the western Mediterranean. " * 40


def zstd_decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": zstd_decompress,
}


def incremental_decoder(coding: str) -> Callable[[bytes], bytes]:
    if coding == "gzip":
        return zlib.decompressobj(wbits=31).decompress
    if coding == "br":
        return brotli.Decompressor().process  # type: ignore[no-any-return]
    return zstandard.ZstdDecompressor().decompressobj().decompress


def respond_with(response: Response) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await response(scope, receive, send)

    return app


def fetch(app: Any, accept: str | None = "gzip", method: str = "GET") -> tuple[Any, bytes]:
    """The response and its body exactly as sent (not decoded by httpx)."""
    with TestClient(app) as client:
        if accept is None:
            del client.headers["accept-encoding"]  # httpx sends one by default
        else:
            client.headers["accept-encoding"] = accept
        with client.stream(method, "/") as response:
            return response, b"".join(response.iter_raw())


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_whole_body_is_compressed_with_the_accepted_coding(coding: str) -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    response, raw = fetch(app, accept=coding)
    assert response.headers["content-encoding"] == coding
    assert response.headers["content-length"] == str(len(raw))
    assert response.headers["vary"] == "Accept-Encoding"
    assert len(raw) < len(TEXT)
    assert DECODERS[coding](raw) == TEXT


def test_testclient_reads_the_compressed_body_transparently() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    with TestClient(app) as client:
        response = client.get("/", headers={"accept-encoding": "gzip, br, zstd"})
    assert response.content == TEXT


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # equal weights: server preference
        ("gzip, br", "br"),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),  # RFC 9110 §8.4.1.3 alias
        ("GZIP", "gzip"),  # codings are case-insensitive
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("zstd;q=0, *", "br"),  # q=0 refuses; * stands for the rest
        ("*", "zstd"),
        ("*;q=0, gzip;q=0.2", "gzip"),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0", None),
        ("*;q=0", None),
        ("", None),
        ("gzip;q=2", None),  # malformed weight: ignored
        ("gzip;q=high", None),
        ("gzip ; q=0.3 , br;q=0.2", "gzip"),
    ],
)
def test_accept_encoding_negotiation(accept: str, chosen: str | None) -> None:
    assert select_encoding(accept, ("zstd", "br", "gzip")) == chosen


def test_absent_accept_encoding_means_no_compression() -> None:
    assert select_encoding(None, ("zstd", "br", "gzip")) is None


def test_accept_encoding_over_several_header_lines_is_combined() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    with TestClient(app) as c:
        headers = [(b"accept-encoding", b"identity"), (b"accept-encoding", b"br")]
        response = c.get("/", headers=headers)
    assert response.headers["content-encoding"] == "br"


def test_client_accepting_nothing_we_offer_gets_identity_with_vary() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    response, raw = fetch(app, accept="deflate")
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert raw == TEXT


def test_request_without_accept_encoding_gets_identity() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    response, raw = fetch(app, accept=None)
    assert "content-encoding" not in response.headers
    assert raw == TEXT


def test_small_single_body_is_sent_uncompressed() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(b"x" * 499)))
    response, raw = fetch(app)
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert response.headers["content-length"] == "499"
    assert raw == b"x" * 499


def test_minimum_size_is_configurable() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(b"x" * 100)), minimum_size=50)
    response, raw = fetch(app)
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"x" * 100


def test_incompressible_body_is_sent_as_is() -> None:
    noise = os.urandom(2000)
    app = CompressionMiddleware(respond_with(Response(noise, media_type="application/x-noise")))
    response, raw = fetch(app)
    assert "content-encoding" not in response.headers
    assert raw == noise


def test_already_encoded_response_is_untouched() -> None:
    body = gzip.compress(TEXT)
    response_obj = Response(body, headers={"content-encoding": "gzip"}, media_type="text/plain")
    response, raw = fetch(CompressionMiddleware(respond_with(response_obj)), accept="br")
    assert response.headers["content-encoding"] == "gzip"
    assert "vary" not in response.headers
    assert raw == body


@pytest.mark.parametrize("media_type", ["image/png", "video/mp4", "text/event-stream"])
def test_excluded_media_types_are_untouched(media_type: str) -> None:
    app = CompressionMiddleware(respond_with(Response(TEXT, media_type=media_type)))
    response, raw = fetch(app)
    assert "content-encoding" not in response.headers
    assert raw == TEXT


def test_no_transform_response_is_untouched() -> None:
    app = CompressionMiddleware(
        respond_with(PlainTextResponse(TEXT, headers={"cache-control": "public, no-transform"}))
    )
    response, raw = fetch(app)
    assert "content-encoding" not in response.headers
    assert raw == TEXT


def test_partial_content_is_untouched() -> None:
    headers = {"content-range": f"bytes 0-99/{len(TEXT)}"}
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT[:100] * 6, 206, headers)))
    response, _raw = fetch(app)
    assert response.status_code == 206
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses_are_untouched(status: int) -> None:
    app = CompressionMiddleware(respond_with(Response(status_code=status)))
    response, raw = fetch(app)
    assert response.status_code == status
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert raw == b""


def test_head_request_is_untouched() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)))
    response, _raw = fetch(app, method="HEAD")
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(TEXT))


def test_strong_etag_becomes_weak_when_compressed() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT, headers={"etag": '"v1"'})))
    response, _raw = fetch(app)
    assert response.headers["etag"] == 'W/"v1"'


def test_large_body_compressed_off_the_event_loop_is_still_correct() -> None:
    body = TEXT * 100  # over the 128 KiB thread threshold
    app = CompressionMiddleware(respond_with(PlainTextResponse(body)))
    _response, raw = fetch(app, accept="br")
    assert brotli.decompress(raw) == body


def streaming_app(chunks: list[bytes], media_type: bytes, acks: queue.Queue[None] | None) -> Any:
    """Sends `chunks` as separate body messages, each after the test took the last."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", media_type), (b"content-length", b"99999")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if acks is not None:
                await asyncio.to_thread(acks.get, timeout=10)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_streamed_chunks_are_compressed_and_flushed_one_by_one(coding: str) -> None:
    chunks = [b"first chunk. ", b"second chunk, a bit longer. " * 3, b"third."]
    acks: queue.Queue[None] = queue.Queue()
    app = CompressionMiddleware(streaming_app(chunks, b"text/plain", acks))
    decode = incremental_decoder(coding)
    with (
        TestClient(app) as client,
        client.stream("GET", "/", headers={"accept-encoding": coding}) as response,
    ):
        assert response.headers["content-encoding"] == coding
        assert "content-length" not in response.headers
        assert response.headers["vary"] == "Accept-Encoding"
        raw = response.iter_raw()
        for chunk in chunks:
            # The app sends nothing more until we ack, so this chunk alone must decode.
            assert decode(next(raw)) == chunk
            acks.put(None)
        assert decode(b"".join(raw)) == b""


def test_event_stream_is_compressed_per_event_when_not_excluded() -> None:
    events = [b"data: one\n\n", b"data: two\n\n"]
    acks: queue.Queue[None] = queue.Queue()
    app = CompressionMiddleware(
        streaming_app(events, b"text/event-stream", acks), exclude_media_types=()
    )
    decode = incremental_decoder("gzip")
    with (
        TestClient(app) as client,
        client.stream("GET", "/", headers={"accept-encoding": "gzip"}) as response,
    ):
        assert response.headers["content-encoding"] == "gzip"
        raw = response.iter_raw()
        for event in events:
            assert decode(next(raw)) == event
            acks.put(None)


def test_streamed_response_without_accepted_coding_streams_as_is() -> None:
    chunks = [b"a" * 300, b"b" * 300]
    app = CompressionMiddleware(streaming_app(chunks, b"text/plain", None))
    response, raw = fetch(app, accept=None)
    assert "content-encoding" not in response.headers
    assert raw == b"".join(chunks)


def test_pathsend_is_passed_through_uncompressed(tmp_path: Path) -> None:
    file = tmp_path / "page.txt"
    file.write_bytes(TEXT)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(TEXT))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(file)})

    response, raw = fetch(CompressionMiddleware(app))
    assert "content-encoding" not in response.headers
    assert raw == TEXT


def test_gzip_middleware_offers_only_gzip() -> None:
    app = GZipMiddleware(respond_with(PlainTextResponse(TEXT)))
    response, raw = fetch(app, accept="zstd, br, gzip;q=0.5")
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == TEXT


def test_gzip_middleware_takes_starlettes_arguments() -> None:
    app = GZipMiddleware(
        respond_with(Response(TEXT, media_type="text/csv")),
        minimum_size=10,
        compresslevel=1,
        exclude_content_types=("text/csv",),
    )
    response, _raw = fetch(app)
    assert "content-encoding" not in response.headers


def test_encodings_limit_and_order_the_offer() -> None:
    app = CompressionMiddleware(respond_with(PlainTextResponse(TEXT)), encodings=["gzip", "br"])
    response, _raw = fetch(app, accept="zstd, br, gzip")
    assert response.headers["content-encoding"] == "gzip"


def test_unknown_encoding_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown content coding 'deflate'"):
        CompressionMiddleware(respond_with(PlainTextResponse(TEXT)), encodings=["deflate"])
