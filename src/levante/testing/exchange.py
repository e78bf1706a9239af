"""One HTTP request and its streamed response, between `AppTransport` and the app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import httpx

from levante.asgi import HTTPRequestEvent, Message
from levante.testing.errors import ASGIAppError, ClientDisconnected
from levante.testing.options import AppOptions
from levante.testing.running import AppTask
from levante.testing.scope import DEBUG_EXTENSION, http_scope

# What the app may send in each phase of a response (ASGI HTTP spec, with the
# trailers and pathsend extensions), and how an error message names the phase.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "start": ("http.response.start",),
    "body": ("http.response.body", "http.response.pathsend"),
    "trailers": ("http.response.trailers",),
    "done": (),
}
_PHASE_WORDS = {
    "start": "before starting the response",
    "body": "while sending the body",
    "trailers": "after the body, where the trailers it announced were due",
    "done": "after the response was complete",
}
_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


class BodyPipe:
    """Hands response body chunks from the app to the reader, one at a time.

    A chunk waits in the pipe until the reader takes it, so the app's `send`
    blocks as it would on a socket whose peer reads slowly: an endless stream
    cannot fill memory, and the test reads events in the order they were sent.
    """

    def __init__(self) -> None:
        self._chunk: bytes | None = None
        self._filled = asyncio.Event()
        self._taken = asyncio.Event()
        self.ended = False  # the writer will put nothing more
        self.closed = False  # the reader will take nothing more

    async def put(self, chunk: bytes) -> None:
        """Hand `chunk` over once the previous one was taken."""
        while self._chunk is not None and not self.closed:
            self._taken.clear()
            await self._taken.wait()
        if self.closed:
            raise ClientDisconnected("the test client closed the response")
        self._chunk = chunk
        self._filled.set()

    async def get(self) -> bytes | None:
        """The next chunk, or None once the writer has ended."""
        while self._chunk is None and not self.ended:
            self._filled.clear()
            await self._filled.wait()
        chunk, self._chunk = self._chunk, None
        self._taken.set()
        return chunk

    def end(self) -> None:
        """Writer side: no more chunks."""
        self.ended = True
        self._filled.set()

    def close(self) -> None:
        """Reader side: nobody reads any more; a waiting or later `put` raises."""
        self.closed = True
        self._taken.set()


class HTTPExchange:
    """Runs the app for one request; `start` returns the response once it has begun."""

    def __init__(
        self,
        request: httpx.Request,
        options: AppOptions,
        on_close: Callable[[HTTPExchange], None] = lambda exchange: None,
    ) -> None:
        self.request = request
        self._options = options
        self._on_close = on_close
        self._run = AppTask(options, f"{request.method} {request.url.path}")
        self._request_events = _request_events(request.stream)
        self._request_done = False
        self._phase = "start"
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._trailers: httpx.Headers | None = None
        self._trailer_fields: list[tuple[bytes, bytes]] = []
        self._debug_info: dict[str, Any] | None = None  # from http.response.debug
        self._pipe = BodyPipe()
        self._answered = asyncio.Event()  # the response started, or the app finished
        self._disconnected = asyncio.Event()  # from here on `receive` says http.disconnect
        self._closed = False

    # -- the client's side ------------------------------------------------------

    async def start(self) -> httpx.Response:
        """Run the app until it starts the response (or finishes without one)."""
        scope = http_scope(self.request, self._options)
        self._run.start(self._options.app(scope, self._receive, self._send), self._app_exited)
        await self._run.bounded(self._answered.wait(), "'http.response.start'")
        if self._phase == "start":
            return await self._no_response()
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if self._trailers is not None:
            extensions["trailers"] = self._trailers
        if self._debug_info is not None:
            extensions[DEBUG_EXTENSION] = self._debug_info
        response = httpx.Response(
            self._status,
            headers=self._headers,
            stream=ResponseStream(self),
            request=self.request,
            extensions=extensions,
        )
        return expose_debug_info(response)

    async def next_chunk(self) -> bytes | None:
        """The next body chunk the app sent, or None at the end of the response."""
        chunk = await self._run.bounded(self._pipe.get(), "more of the response body")
        if chunk is None and self._phase != "done":
            self._run.raise_error()
            if self._options.raise_server_exceptions:
                raise ASGIAppError(self._unfinished_message())
        return chunk

    async def aclose(self) -> None:
        """Close the response: the app sees http.disconnect, and is waited for.

        An app that completed its response gets the client's full timeout to
        return (background work runs to completion, as under Starlette's
        TestClient); one cut off early gets ``close_grace`` and is then cancelled.
        """
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        complete = self._phase == "done"
        self._disconnected.set()
        self._pipe.close()
        if complete:
            overdue = "the app kept running after the response was complete"
            await self._run.finish(self._options.timeout, overdue)
        else:
            await self._run.finish(self._options.close_grace)
        await self._request_events.aclose()
        self._run.raise_error(_client_went_away)

    async def _no_response(self) -> httpx.Response:
        await self._request_events.aclose()
        self._closed = True
        self._on_close(self)
        error = self._run.error() or ASGIAppError(
            "the app returned without sending 'http.response.start': every HTTP request "
            "needs a response ('http.response.start', then 'http.response.body')"
        )
        if self._options.raise_server_exceptions:
            raise error
        return httpx.Response(
            500, headers=_ERROR_HEADERS, content=b"Internal Server Error", request=self.request
        )

    def _unfinished_message(self) -> str:
        if self._phase == "trailers":
            return (
                "the app returned without sending the 'http.response.trailers' it announced "
                "with trailers=True in 'http.response.start'"
            )
        return (
            "the app returned before finishing the response: its last 'http.response.body' "
            "had more_body=True; end the body with more_body=False"
        )

    # -- the app's side ---------------------------------------------------------

    def _app_exited(self) -> None:
        self._pipe.end()
        self._answered.set()

    async def _receive(self) -> Message:
        if not self._request_done and not self._closed:
            event = await anext(self._request_events)
            self._request_done = not event["more_body"]
            return cast(Message, event)
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == DEBUG_EXTENSION:
            self._record_debug(message)
            return
        allowed = _ALLOWED[self._phase]
        if kind not in allowed:
            raise ASGIAppError(_misuse(kind, self._phase, allowed))
        if self._closed:
            raise ClientDisconnected("the test client closed the response")
        if kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.body":
            await self._body(message)
        elif kind == "http.response.pathsend":
            await self._pathsend(message)
        else:
            self._add_trailers(message)

    def _record_debug(self, message: Message) -> None:
        if not self._options.response_debug:
            raise ASGIAppError(
                f"the app sent {DEBUG_EXTENSION!r}, which this client did not offer: send it "
                "only when scope['extensions'] has it (TestClient offers it unless "
                "response_debug=False)"
            )
        if self._phase != "start":
            raise ASGIAppError(
                f"the app sent {DEBUG_EXTENSION!r} {_PHASE_WORDS[self._phase]}: "
                "it belongs before 'http.response.start'"
            )
        info = message.get("info")
        if not isinstance(info, Mapping):
            raise ASGIAppError(
                f"{DEBUG_EXTENSION!r} needs 'info', a mapping such as "
                "{'template': ..., 'context': ...}"
            )
        self._debug_info = dict(info)

    def _start(self, message: Message) -> None:
        status = message.get("status")
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ASGIAppError(
                f"'http.response.start' needs 'status', an int such as 200, not {status!r}"
            )
        self._status = status
        self._headers = _header_pairs(message.get("headers", []), "http.response.start")
        if message.get("trailers", False):
            self._trailers = httpx.Headers()
        self._phase = "body"
        self._answered.set()

    async def _body(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ASGIAppError(
                f"'http.response.body' needs 'body' as bytes, not {type(body).__name__}"
            )
        if body and self.request.method != "HEAD":  # no body on the wire for HEAD
            await self._pipe.put(bytes(body))
        if not message.get("more_body", False):
            self._body_done()

    async def _pathsend(self, message: Message) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ASGIAppError(
                f"'http.response.pathsend' needs 'path', an absolute file path, not {path!r}"
            )
        body = await asyncio.to_thread(Path(path).read_bytes)
        if body and self.request.method != "HEAD":
            await self._pipe.put(body)
        self._body_done()

    def _body_done(self) -> None:
        if self._trailers is None:
            self._complete()
        else:
            self._phase = "trailers"

    def _add_trailers(self, message: Message) -> None:
        self._trailer_fields += _header_pairs(message.get("headers", []), "http.response.trailers")
        if not message.get("more_trailers", False) and self._trailers is not None:
            self._trailers.update(httpx.Headers(self._trailer_fields))
            self._complete()

    def _complete(self) -> None:
        self._phase = "done"
        self._pipe.end()
        self._disconnected.set()  # ASGI: after the response, receive() says http.disconnect


class ResponseStream(httpx.AsyncByteStream):
    """The body of a response, read from the app as it sends it."""

    def __init__(self, exchange: HTTPExchange) -> None:
        self._exchange = exchange

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._exchange.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Close the response; see `HTTPExchange.aclose`."""
        await self._exchange.aclose()


def expose_debug_info(response: httpx.Response) -> httpx.Response:
    """`response` with what the app sent in ``http.response.debug`` (kept in
    ``response.extensions``) also set as ``response.template`` and
    ``response.context``, the attributes Starlette's TestClient sets."""
    info = response.extensions.get(DEBUG_EXTENSION)
    if info is not None:
        for name in ("template", "context"):
            if name in info:
                setattr(response, name, info[name])
    return response


def _client_went_away(exc: Exception) -> bool:
    # What `send` raised because the client closed the response is no app error.
    return isinstance(exc, ClientDisconnected)


async def _request_events(
    stream: httpx.SyncByteStream | httpx.AsyncByteStream,
) -> AsyncGenerator[HTTPRequestEvent, None]:
    # One chunk of look-ahead, so the last chunk carries more_body=False.
    previous: bytes | None = None
    async for chunk in _chunks(stream):
        if not chunk:
            continue
        if previous is not None:
            yield {"type": "http.request", "body": previous, "more_body": True}
        previous = chunk
    yield {"type": "http.request", "body": previous or b"", "more_body": False}


async def _chunks(stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    # The sync client hands over sync streams (a generator body is iterated in the
    # loop thread); httpx.AsyncClient hands over async ones.
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            yield chunk
    else:
        for chunk in stream:
            yield chunk


def _header_pairs(headers: object, where: str) -> list[tuple[bytes, bytes]]:
    error = ASGIAppError(f"{where!r} needs 'headers' as an iterable of (bytes, bytes) pairs")
    if not isinstance(headers, Iterable):
        raise error
    pairs = []
    for pair in headers:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise error
        name, value = pair
        if not (isinstance(name, bytes) and isinstance(value, bytes)):
            raise error
        pairs.append((name, value))
    return pairs


def _misuse(kind: object, phase: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(kind, str) or not kind.startswith("http.response."):
        return f"the app sent an unknown HTTP message type {kind!r}"
    after = " or ".join(repr(name) for name in allowed) or "nothing more"
    hint = "; send 'http.response.start' first" if phase == "start" else ""
    return f"the app sent {kind!r} {_PHASE_WORDS[phase]}: expected {after}{hint}"
