"""The floor: the contract's HTTP endpoints on bare uvloop + httptools, with no ASGI.

One `asyncio.Protocol` per connection feeds bytes to httptools and writes whole
responses; there is no scope, no `receive`/`send`, no app call and no task per
request. Whatever an ASGI server built on this stack adds costs time, so the
floor's throughput is the limit that uvicorn and Levante (both uvloop +
httptools) can approach, not pass. It serves HTTP/1.1 with keep-alive; it does
not do WebSocket or HTTP/2, and the harness skips it for those scenarios.

    python apps/floor.py --host 127.0.0.1 --port 8000

The responses carry what the other servers send: status line, `date` (rebuilt
once a second, as uvicorn and Levante do), `server`, `content-type`,
`content-length`. /json and /items/... are serialised per request with
json.dumps, like apps/raw.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl

import httptools
import uvloop

PLAINTEXT = b"Hello, World!"
BYTES_64K = b"x" * 65536
_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"
_OCTET = b"application/octet-stream"


class Clock:
    """The `date` and `server` header lines, rebuilt once a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.common = b""
        self.plaintext = b""
        self.tick()

    def tick(self) -> None:
        date = formatdate(usegmt=True).encode()
        self.common = b"date: " + date + b"\r\nserver: floor\r\n"
        # The hottest answer is kept whole, as a fast server would.
        self.plaintext = response(self.common, 200, _TEXT, PLAINTEXT)
        self.loop.call_later(1.0, self.tick)


def response(common: bytes, status: int, content_type: bytes, body: bytes) -> bytes:
    reason = HTTPStatus(status).phrase.encode()
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            common,
            b"content-type: " + content_type + b"\r\n",
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        )
    )


def items(common: bytes, path: bytes, query: bytes | None) -> bytes:
    try:
        item_id = int(path[7:])
        params = dict(parse_qsl((query or b"").decode("latin-1")))
        limit = int(params.get("limit", 10))
    except ValueError:
        return response(common, 422, _TEXT, b"invalid parameters")
    body = json.dumps({"item_id": item_id, "q": params.get("q", ""), "limit": limit})
    return response(common, 200, _JSON, body.encode())


class FloorProtocol(asyncio.Protocol):
    """One connection: httptools callbacks collect the URL and count the body."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body_length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.answer(response(self.clock.common, 400, _TEXT, b"bad request"), keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body_length = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body_length += len(body)

    def on_message_complete(self) -> None:
        self.answer(self.route(), keep_alive=self.parser.should_keep_alive())

    def route(self) -> bytes:
        common = self.clock.common
        url = httptools.parse_url(self.url)
        path = url.path
        if path in (b"/plaintext", b"/"):
            return self.clock.plaintext
        if path == b"/json":
            body = json.dumps({"message": "Hello, World!"}).encode()
            return response(common, 200, _JSON, body)
        if path.startswith(b"/items/"):
            return items(common, path, url.query)
        if path == b"/bytes/64k":
            return response(common, 200, _OCTET, BYTES_64K)
        if path == b"/upload" and self.parser.get_method() == b"POST":
            body = json.dumps({"length": self.body_length}).encode()
            return response(common, 200, _JSON, body)
        return response(common, 404, _TEXT, b"not found")

    def answer(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    clock = Clock(loop)
    server = await loop.create_server(
        lambda: FloorProtocol(clock), host, port, backlog=2048, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
