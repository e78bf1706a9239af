"""Responses: each one is an ASGI app that sends itself.

A `Response` builds its raw header list once, in the constructor, so sending it
is two ASGI messages with nothing left to compute. Returned from a WebSocket
handler before `accept`, a response is sent as the denial (the
``websocket.http.response`` extension).
"""

from __future__ import annotations

import asyncio
import http.cookies
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from levante.asgi import AnyScope, Receive, Send
from levante.web.background import BackgroundTask
from levante.web.concurrency import iterate_in_threadpool
from levante.web.datastructures import URL, MutableHeaders

#: Statuses whose responses carry no body, so no Content-Length either
#: (RFC 9110 §8.6: 1xx and 204 must not send one; 304 describes another response).
BODYLESS_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))


def _encode_default(obj: Any) -> Any:
    """What msgspec cannot encode by itself: pydantic models, objects with `__json__`."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    to_json = getattr(obj, "__json__", None)
    if to_json is not None:
        return to_json()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: One encoder for the process: dataclasses, msgspec Structs, datetimes, dates,
#: UUIDs, Decimals (as strings), enums, sets and pydantic models.
json_encoder = msgspec.json.Encoder(enc_hook=_encode_default)


class Response:
    """A complete response: status, headers and a body known up front.

    `content` may be `bytes` or `str` (encoded with `charset`). `media_type`
    becomes Content-Type (with the charset for ``text/*``). `background` runs
    after the body has been sent.
    """

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self.raw_headers = self._make_headers(headers)

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        if isinstance(content, bytes | bytearray | memoryview):
            return bytes(content)
        return str(content).encode(self.charset)

    def _make_headers(self, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
        raw = (
            []
            if headers is None
            else [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        )
        names = {k for k, _ in raw} if raw else ()
        if b"content-length" not in names and self.status_code not in BODYLESS_STATUSES:
            raw.append((b"content-length", str(len(self.body)).encode()))
        if self.media_type is not None and b"content-type" not in names:
            raw.append((b"content-type", _content_type(self.media_type, self.charset)))
        return raw

    @property
    def headers(self) -> MutableHeaders:
        """The headers, editable in place."""
        return MutableHeaders(raw=self.raw_headers)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a Set-Cookie header (RFC 6265) with the usual attributes."""
        cookie: http.cookies.BaseCookie[str] = http.cookies.SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
        if expires is not None:
            morsel["expires"] = (
                format_datetime(expires, usegmt=True) if isinstance(expires, datetime) else expires
            )
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            if samesite.lower() not in ("strict", "lax", "none"):
                raise ValueError("samesite must be 'strict', 'lax' or 'none'")
            morsel["samesite"] = samesite
        header = cookie.output(header="").strip()
        if partitioned:
            header += "; Partitioned"
        self.raw_headers.append((b"set-cookie", header.encode("latin-1")))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        """Tell the browser to drop a cookie (an expired, empty one)."""
        self.set_cookie(
            key,
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        prefix = "websocket." if scope["type"] == "websocket" else ""
        await send(
            {
                "type": prefix + "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        await send({"type": prefix + "http.response.body", "body": self.body})
        if self.background is not None:
            await self.background()


#: Content-Type values by (media type, charset): a handful per app, built once each.
_CONTENT_TYPES: dict[tuple[str, str], bytes] = {}


def _content_type(media_type: str, charset: str) -> bytes:
    """The Content-Type value: `media_type`, with the charset for ``text/*``."""
    value = _CONTENT_TYPES.get((media_type, charset))
    if value is None:
        text = media_type
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            text = f"{media_type}; charset={charset}"
        value = text.encode("latin-1")
        if len(_CONTENT_TYPES) < 256:
            _CONTENT_TYPES[(media_type, charset)] = value
    return value


class PlainTextResponse(Response):
    media_type = "text/plain"


class HTMLResponse(Response):
    media_type = "text/html"


class JSONResponse(Response):
    """`content` encoded as JSON by msgspec: dicts, lists, dataclasses, msgspec
    Structs, datetimes, UUIDs, Decimals, enums, pydantic models."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_encoder.encode(content)


class RedirectResponse(Response):
    """A redirect to `url` (307 by default, which keeps the method and body)."""

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(None, status_code, headers, None, background)
        location = quote(str(url), safe=":/%#?=@[]!$&'()*+,;")
        self.raw_headers.append((b"location", location.encode("latin-1")))


ContentStream = AsyncIterable[str | bytes] | Iterable[str | bytes]


class StreamingResponse(Response):
    """A body sent piece by piece as an iterator yields it.

    `content` may be an async iterator or a plain one (run in the thread pool).
    When the client disconnects, the iterator is closed and the response ends
    quietly: the handler's `finally` blocks run.
    """

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = b""
        if isinstance(content, AsyncIterable):
            self.body_iterator: AsyncIterable[str | bytes] = content
        else:
            self.body_iterator = iterate_in_threadpool(content)
        self.raw_headers = self._make_headers(headers)
        self.raw_headers[:] = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        disconnected = await _until_disconnect(self._stream(send), receive)
        if not disconnected and self.background is not None:
            await self.background()

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        charset = self.charset
        try:
            async for chunk in self.body_iterator:
                body = chunk.encode(charset) if isinstance(chunk, str) else chunk
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            aclose: Callable[[], Awaitable[Any]] | None = getattr(
                self.body_iterator, "aclose", None
            )
            if aclose is not None:
                await aclose()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _until_disconnect(work: Awaitable[None], receive: Receive) -> bool:
    """Run `work` until it ends or the client disconnects; True if it disconnected.

    Servers of ASGI spec 2.4 also raise `OSError` from `send` once the client has
    gone; both ways end the response quietly.
    """
    task = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((task, listener), return_when=asyncio.FIRST_COMPLETED)
    finally:
        listener.cancel()
        task.cancel()
        await asyncio.wait((task, listener))
    if task.cancelled():
        return True
    exc = task.exception()
    if isinstance(exc, OSError):
        return True
    if exc is not None:
        raise exc
    return False


def __getattr__(name: str) -> Any:
    # FileResponse lives with StaticFiles; offered here too, where Starlette users look.
    if name == "FileResponse":
        from levante.web.files import FileResponse

        return FileResponse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
