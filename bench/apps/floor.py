"""The floor: the contract's HTTP endpoints on bare uvloop + httptools, with no ASGI.

One `asyncio.Protocol` per connection feeds bytes to httptools and writes whole
responses; there is no scope, no `receive`/`send`, no app call and no task per
request. Whatever an ASGI server built on this stack adds costs time, so the
floor's throughput is the limit that uvicorn and Levante (both uvloop +
httptools) can approach, not pass. It serves HTTP/1.1 with keep-alive; it does
not do WebSocket or HTTP/2, and the harness skips it for those scenarios.

    python apps/floor.py --host 127.0.0.1 --port 8000

Two variants add back, one at a time, the parts every ASGI server must have, so the
suite shows what they cost on this stack before any server code runs:

    python apps/floor.py --mode task   # each request answered from its own asyncio Task
    python apps/floor.py --mode app    # ...which runs apps/raw.py: scope, receive, send

`--mode app` is a bound, not a server: it adds the app's own work and nothing of a
server's. Its scope holds only the four keys apps/raw.py reads (no headers list, no
addresses, no `state` or `extensions` copies); `receive` hands over the body; `send`
reads only the message type, and at the body it writes the floor's own answer for the
request (the same response the app describes), so no response is serialised from the app's
messages; there are no checks, limits or timeouts. A conforming server does all that
on top. The scope and the two small coroutines are plain Python here, where a compiled
server spends less on that part; everything else it must do comes on top of it.

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
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import httptools
import uvloop
from raw import app as raw_app

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
    """One connection: httptools callbacks collect the URL and the body."""

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
        answer = self.route(self.url, self.parser.get_method(), self.body_length)
        self.answer(answer, keep_alive=self.parser.should_keep_alive())

    def route(self, target: bytes, method: bytes, body_length: int) -> bytes:
        common = self.clock.common
        url = httptools.parse_url(target)
        path = url.path
        if path in (b"/plaintext", b"/"):
            return self.clock.plaintext
        if path == b"/json":
            data = json.dumps({"message": "Hello, World!"}).encode()
            return response(common, 200, _JSON, data)
        if path.startswith(b"/items/"):
            return items(common, path, url.query)
        if path == b"/bytes/64k":
            return response(common, 200, _OCTET, BYTES_64K)
        if path == b"/upload" and method == b"POST":
            data = json.dumps({"length": body_length}).encode()
            return response(common, 200, _JSON, data)
        return response(common, 404, _TEXT, b"not found")

    def answer(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()


class TaskProtocol(FloorProtocol):
    """The floor, with each answer written by a task of its own, as ASGI servers run apps."""

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        respond = self.respond(self.url, method, self.body_length, keep_alive)
        asyncio.get_running_loop().create_task(respond)

    async def respond(self, url: bytes, method: bytes, body_length: int, keep_alive: bool) -> None:
        self.answer(self.route(url, method, body_length), keep_alive)


class AppProtocol(FloorProtocol):
    """floor-task, with apps/raw.py called in each task as an ASGI server calls it."""

    body: list[bytes]

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        body = b"".join(self.body)
        answer = self.route(self.url, method, len(body))
        raw_path, _, query = self.url.partition(b"?")
        scope = {
            "type": "http",
            "method": method.decode(),
            "path": raw_path.decode(),
            "query_string": query,
        }
        exchange = Exchange(self, body, answer, parser.should_keep_alive())
        asyncio.get_running_loop().create_task(raw_app(scope, exchange.receive, exchange.send))


class Exchange:
    """`receive` and `send` of one request: the body, and the floor's answer at the end."""

    __slots__ = ("answer", "body", "keep_alive", "protocol")

    def __init__(self, protocol: FloorProtocol, body: bytes, answer: bytes, keep_alive: bool):
        self.protocol = protocol
        self.body = body
        self.answer = answer
        self.keep_alive = keep_alive

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            self.protocol.answer(self.answer, self.keep_alive)


PROTOCOLS: dict[str, Callable[[Clock], FloorProtocol]] = {
    "direct": FloorProtocol,
    "task": TaskProtocol,
    "app": AppProtocol,
}


async def serve(host: str, port: int, mode: str = "direct") -> None:
    loop = asyncio.get_running_loop()
    clock = Clock(loop)
    protocol = PROTOCOLS[mode]
    server = await loop.create_server(
        lambda: protocol(clock), host, port, backlog=2048, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", choices=sorted(PROTOCOLS), default="direct")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port, args.mode))


if __name__ == "__main__":
    main()
