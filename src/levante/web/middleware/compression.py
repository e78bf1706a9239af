"""Response compression: zstd, brotli or gzip, chosen by the request's Accept-Encoding.

Bodies are compressed as they stream: each ``http.response.body`` message is
compressed and flushed on its own, so a client receives every chunk when the app
sends it rather than when a compression buffer fills. ``brotli`` and
``zstandard`` are optional (``pip install levante[compression]``); gzip is always
there (stdlib ``zlib``).

Server-Sent Events (``text/event-stream``) are not compressed by default, as in
Starlette: proxies and some clients hold back compressed streams. Per-chunk
flushing makes them safe to compress, though: drop the type from
`exclude_media_types` to do so.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.concurrency import run_in_threadpool
from levante.web.datastructures import Headers, MutableHeaders
from levante.web.middleware._asgi import response_headers

try:
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None
try:
    import zstandard
except ImportError:  # pragma: no cover - depends on the environment
    zstandard = None  # type: ignore[assignment]

#: Bodies sent in one message below this many bytes are sent as they are: the
#: framing overhead eats the gain (Starlette's default).
DEFAULT_MINIMUM_SIZE = 500

#: zlib's own default level (Z_DEFAULT_COMPRESSION is level 6), a speed/size balance
#: for responses compressed on every request.
DEFAULT_GZIP_LEVEL = 6

#: `GZipMiddleware` keeps Starlette's default level, for a drop-in replacement.
STARLETTE_GZIP_LEVEL = 9

#: Brotli's default quality 11 is meant for static files and is far slower; .NET's
#: BrotliCompressionOptions default to 4 for on-the-fly compression, as we do.
DEFAULT_BROTLI_QUALITY = 4

#: zstd's own default level (ZSTD_CLEVEL_DEFAULT is 3).
DEFAULT_ZSTD_LEVEL = 3

#: Chunks at least this large are compressed in the thread pool so they do not stall
#: the event loop (Starlette's GZipMiddleware uses the same 128 KiB threshold).
THREAD_MINIMUM_SIZE = 128 * 1024

#: Media types that are already compressed, or streams that must not be held back
#: (Starlette's list; ``type/*`` matches a whole type).
DEFAULT_EXCLUDED_MEDIA_TYPES = (
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/grpc",
    "audio/*",
    "font/woff",
    "font/woff2",
    "image/avif",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/webp",
    "text/event-stream",
    "video/*",
)

#: Which coding wins when a client accepts several equally: zstd is the fastest,
#: brotli the densest at our levels, gzip the fallback every client has.
PREFERENCE = ("zstd", "br", "gzip")


class _Encoder(Protocol):
    def chunk(self, data: bytes) -> bytes:
        """Compress `data` and flush, so everything so far can be decoded."""

    def last(self, data: bytes) -> bytes:
        """Compress `data` and end the stream."""


class _GzipEncoder:
    def __init__(self, level: int) -> None:
        # wbits 16 + 15: a gzip header and trailer around a 32 KiB-window deflate stream.
        self._z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def chunk(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def last(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_FINISH)


class _BrotliEncoder:
    def __init__(self, quality: int) -> None:
        self._c = brotli.Compressor(quality=quality)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.flush())

    def last(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.finish())


class _ZstdEncoder:
    def __init__(self, level: int) -> None:
        self._c = zstandard.ZstdCompressor(level=level).compressobj()

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))

    def last(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))


def available_encodings() -> tuple[str, ...]:
    """The content codings this process can produce, most preferred first."""
    present = {"gzip": True, "br": brotli is not None, "zstd": zstandard is not None}
    return tuple(coding for coding in PREFERENCE if present[coding])


def select_encoding(accept_encoding: str | None, offered: Sequence[str]) -> str | None:
    """The coding of `offered` the client prefers (RFC 9110 §12.5.3), or None for identity.

    q-values rank codings; ``q=0`` refuses one; ``*`` stands for any coding not
    named; among equal weights the earlier in `offered` wins. No header means the
    client said nothing, and then, like every common server, we do not compress.
    """
    if not accept_encoding:
        return None
    weights = _parse_accept_encoding(accept_encoding)
    star = weights.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in offered:
        q = weights.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    return best


def _parse_accept_encoding(value: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding == "x-gzip":  # RFC 9110 §8.4.1.3: to be treated as gzip
            coding = "gzip"
        q = _qvalue(params)
        if coding and q is not None:
            weights[coding] = max(q, weights.get(coding, 0.0))
    return weights


def _qvalue(params: str) -> float | None:
    """The weight in ``q=0.5`` (1.0 when absent), None when malformed."""
    name, _, value = params.strip().partition("=")
    if not name:
        return 1.0
    if name.strip().lower() != "q":
        return None
    try:
        q = float(value.strip())
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None


def _media_type_excluded(content_type: str, excluded: frozenset[str]) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type.startswith("application/grpc+"):  # application/grpc+proto and friends
        media_type = "application/grpc"
    return media_type in excluded or media_type.partition("/")[0] + "/*" in excluded


class CompressionMiddleware:
    """Compress response bodies with the best coding the client accepts.

    `encodings` limits and orders the codings offered (default: every installed
    one of zstd, br, gzip). Bodies below `minimum_size` sent in one message stay
    as they are; streamed bodies are compressed chunk by chunk, each chunk
    flushed. Responses that are already encoded, partial (206), ``no-transform``,
    bodiless (204, 304) or of an excluded media type pass untouched, as do HEAD
    requests and ``http.response.pathsend``.
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = DEFAULT_MINIMUM_SIZE,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        brotli_quality: int = DEFAULT_BROTLI_QUALITY,
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
        exclude_media_types: Collection[str] = DEFAULT_EXCLUDED_MEDIA_TYPES,
        encodings: Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.encodings = _check_encodings(encodings)
        self.excluded = frozenset(t.partition(";")[0].strip().lower() for t in exclude_media_types)
        self.factories: dict[str, Callable[[], _Encoder]] = {
            "gzip": lambda: _GzipEncoder(gzip_level),
            "br": lambda: _BrotliEncoder(brotli_quality),
            "zstd": lambda: _ZstdEncoder(zstd_level),
        }

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        accept = ", ".join(Headers(raw=scope["headers"]).getlist("accept-encoding"))
        coding = select_encoding(accept, self.encodings)
        responder = _Responder(self, send, coding)
        await self.app(scope, receive, responder.send)

    def is_compressible(self, start: Message) -> bool:
        """Whether the response `start` describes may get a content coding."""
        status = start["status"]
        if status < 200 or status in (204, 206, 304):
            return False
        headers = Headers(raw=list(start.get("headers", ())))
        if "content-encoding" in headers or "content-range" in headers:
            return False
        # RFC 9111 §5.2.2.6: no-transform forbids intermediaries to change the content;
        # we hold ourselves to it too.
        if "no-transform" in headers.get("cache-control", "").lower():
            return False
        return not _media_type_excluded(headers.get("content-type", ""), self.excluded)


class GZipMiddleware(CompressionMiddleware):
    """Gzip only, with the arguments of Starlette's `GZipMiddleware`."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = DEFAULT_MINIMUM_SIZE,
        compresslevel: int = STARLETTE_GZIP_LEVEL,
        *,
        exclude_content_types: Collection[str] = DEFAULT_EXCLUDED_MEDIA_TYPES,
    ) -> None:
        super().__init__(
            app,
            minimum_size,
            gzip_level=compresslevel,
            exclude_media_types=exclude_content_types,
            encodings=("gzip",),
        )


def _check_encodings(encodings: Sequence[str] | None) -> tuple[str, ...]:
    available = available_encodings()
    if encodings is None:
        return available
    if isinstance(encodings, str):
        raise TypeError(f"encodings must be a list of codings, not the string {encodings!r}")
    for coding in encodings:
        if coding not in PREFERENCE:
            raise ValueError(f"unknown content coding {coding!r}; choose from {PREFERENCE}")
        if coding not in available:
            module = "brotli" if coding == "br" else "zstandard"
            raise ValueError(
                f"{coding!r} needs the {module} package: pip install levante[compression]"
            )
    return tuple(encodings)


class _Responder:
    """One response on its way through: holds the start message until the first
    body shows whether (and how) to compress, then compresses each chunk."""

    def __init__(self, options: CompressionMiddleware, send: Send, coding: str | None) -> None:
        self.options = options
        self.coding = coding
        self._send = send
        self.start: Message | None = None
        self.encoder: _Encoder | None = None
        self.passthrough = False

    async def send(self, message: Message) -> None:
        if self.passthrough:
            await self._send(message)
        elif message["type"] == "http.response.start":
            await self._on_start(message)
        elif message["type"] == "http.response.body":
            await self._on_body(message)
        elif self.start is not None:
            # pathsend (or another extension's message) instead of a body: the
            # server sends that content itself, so it goes out as it is.
            await self._release()
            await self._send(message)
        else:
            await self._send(message)  # early hints before, trailers after

    async def _on_start(self, message: Message) -> None:
        if self.options.is_compressible(message):
            self.start = message
        else:
            self.passthrough = True
            await self._send(message)

    async def _release(self, body: Message | None = None) -> None:
        """Send the held start (and `body`) unchanged; pass the rest through."""
        start, self.start = self.start, None
        self.passthrough = True
        if start is not None:
            await self._send(start)
        if body is not None:
            await self._send(body)

    async def _on_body(self, message: Message) -> None:
        if self.encoder is not None:
            await self._send(await self._compress(self.encoder, message))
            return
        body = bytes(message.get("body", b""))
        more_body = bool(message.get("more_body", False))
        start = self.start
        if start is None or (not more_body and len(body) < self.options.minimum_size):
            await self._release(message)
            return
        headers = response_headers(start)
        headers.add_vary_header("Accept-Encoding")
        if self.coding is None:
            await self._release(message)
        elif more_body:
            await self._begin_stream(self.coding, start, message)
        else:
            await self._send_whole(self.coding, start, body, message)

    async def _begin_stream(self, coding: str, start: Message, message: Message) -> None:
        self.encoder = encoder = self.options.factories[coding]()
        headers = _mark_encoded(start, coding)
        del headers["content-length"]
        self.start = None
        await self._send(start)
        await self._send(await self._compress(encoder, message))

    async def _send_whole(self, coding: str, start: Message, body: bytes, message: Message) -> None:
        compressed = await _run(self.options.factories[coding]().last, body)
        if len(compressed) >= len(body):  # incompressible: identity is smaller
            await self._release(message)
            return
        headers = _mark_encoded(start, coding)
        if start.get("trailers", False):
            del headers["content-length"]
        else:
            headers["content-length"] = str(len(compressed))
        await self._release({"type": "http.response.body", "body": compressed, "more_body": False})

    async def _compress(self, encoder: _Encoder, message: Message) -> Message:
        body = bytes(message.get("body", b""))
        more_body = bool(message.get("more_body", False))
        if more_body and not body:
            data = b""  # everything before was flushed already
        else:
            data = await _run(encoder.chunk if more_body else encoder.last, body)
        if not more_body:
            self.passthrough = True  # trailers may follow; nothing more to compress
        return {"type": "http.response.body", "body": data, "more_body": more_body}


def _mark_encoded(start: Message, coding: str) -> MutableHeaders:
    headers = response_headers(start)
    headers["content-encoding"] = coding
    etag = headers.get("etag")
    if etag is not None and not etag.startswith("W/"):
        # The encoded bytes differ from the identity ones, so a strong validator no
        # longer holds (RFC 9110 §8.8.1); nginx's gzip module weakens it the same way.
        headers["etag"] = "W/" + etag
    return headers


async def _run(compress: Callable[[bytes], bytes], data: bytes) -> bytes:
    if len(data) >= THREAD_MINIMUM_SIZE:
        return await run_in_threadpool(compress, data)
    return compress(data)
