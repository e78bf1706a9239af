"""`Request` (and what it shares with `WebSocket`): a typed view of one ASGI connection.

Everything is read from the scope on first use and cached, so a handler pays only
for what it touches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from http.cookies import _unquote
from typing import TYPE_CHECKING, Any

from levante.asgi import AnyScope, Message, Receive, Send
from levante.web.datastructures import URL, Address, Headers, QueryParams
from levante.web.exceptions import ASGIUsageError, ClientDisconnect
from levante.web.lifespan import lifespan_object
from levante.web.plain import State

if TYPE_CHECKING:
    from levante.web.forms import FormData

#: Defaults for `Request.form()` (Starlette's are 1000 files and 1000 fields;
#: part size 1 MiB as Starlette's `max_part_size`).
MAX_FORM_FILES = 1000
MAX_FORM_FIELDS = 1000
MAX_FORM_PART_SIZE = 1024 * 1024
#: Uploaded files are kept in memory up to this size, then spooled to disk
#: (Starlette and Django both use 1 MiB... Django's FILE_UPLOAD_MAX_MEMORY_SIZE is 2.5 MB).
FORM_SPOOL_MAX_SIZE = 1024 * 1024


def parse_cookies(header: str) -> dict[str, str]:
    """Cookie header → dict, as browsers send it (RFC 6265 §5.4), lenient like
    Django and Starlette: pairs without ``=`` are a value with an empty name."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        if "=" in chunk:
            key, value = chunk.split("=", 1)
        else:
            key, value = "", chunk
        key, value = key.strip(), value.strip()
        if key or value:
            cookies[key] = _unquote(value)
    return cookies


async def _empty_receive() -> Message:
    raise ASGIUsageError("This request has no body channel: it was built without `receive`.")


async def _empty_send(message: Message) -> None:
    raise ASGIUsageError("This connection was built without `send`.")


class HTTPConnection(Mapping[str, Any]):
    """What HTTP requests and WebSockets share: URL, headers, query, cookies, client,
    path parameters, state, and `url_for`. Indexing it reads the scope."""

    def __init__(self, scope: AnyScope, receive: Receive = _empty_receive) -> None:
        self.scope: Any = scope
        self._receive = receive
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._url: URL | None = None

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Any:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def app(self) -> Any:
        return self.scope.get("app")

    @property
    def url(self) -> URL:
        if self._url is None:
            self._url = URL.from_scope(self.scope)
        return self._url

    @property
    def base_url(self) -> URL:
        """The URL of the app's root (with the root path), ending in ``/``."""
        scope = dict(self.scope)
        root: str = scope.get("app_root_path", scope.get("root_path", "")) or ""
        scope.update(path=root.rstrip("/") + "/", root_path="", query_string=b"")
        return URL.from_scope(scope)

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(raw=self.scope["headers"])
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def path_params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            header = self.headers.get("cookie")
            self._cookies = parse_cookies(header) if header else {}
        return self._cookies

    @property
    def client(self) -> Address | None:
        client = self.scope.get("client")
        return None if client is None else Address(*client)

    @property
    def session(self) -> dict[str, Any]:
        if "session" not in self.scope:
            raise ASGIUsageError(
                "request.session needs SessionMiddleware: add "
                "Middleware(SessionMiddleware, secret_key=...) to the app."
            )
        session: dict[str, Any] = self.scope["session"]
        return session

    @property
    def state(self) -> State:
        """Per-request state; lifespan state (what the lifespan yielded) is readable
        here too, by attribute (`request.state.db`)."""
        state = self.scope.get("levante.request_state")
        if state is None:
            state = self.scope["levante.request_state"] = _RequestState(
                self.scope.setdefault("state", {}), self.scope
            )
        return state  # type: ignore[no-any-return]

    @property
    def lifespan_state(self) -> Any:
        """The object the lifespan of the app serving this request yielded (typed as
        the app declares it); a mounted app sees its own, not its parent's."""
        return lifespan_object(self.scope)

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """The absolute URL of the route called `name`, with these path parameters."""
        router = self.scope.get("router") or self.scope.get("app")
        if router is None:
            raise ASGIUsageError("url_for needs the request to be routed by a levante.web App")
        path = router.url_path_for(name, **path_params)
        url: URL = path.make_absolute_url(self.base_url)
        return url


class _RequestState(State):
    """State whose missing attributes fall back to the lifespan's yielded object."""

    _scope: Mapping[str, Any]

    def __init__(self, state: dict[str, Any], scope: Mapping[str, Any]) -> None:
        super().__init__(state)
        # The scope, not the object: a middleware may make this before a mounted
        # app takes the request, and the handler must see that app's object.
        object.__setattr__(self, "_scope", scope)

    def __getattr__(self, key: str) -> Any:
        state = self._state
        if key in state:
            return state[key]
        typed = lifespan_object(self._scope)
        if typed is not None and hasattr(typed, key):
            return getattr(typed, key)
        raise AttributeError(f"'State' object has no attribute {key!r}")


class Request(HTTPConnection):
    """An HTTP request: the scope, plus the body read from `receive`.

    The body can be read once as a stream (`stream()`), or as a whole (`body()`,
    `json()`, `form()`), which caches it so it can be read again.
    """

    def __init__(
        self, scope: AnyScope, receive: Receive = _empty_receive, send: Send = _empty_send
    ):
        super().__init__(scope, receive)
        self._send = send
        self._body: bytes | None = None
        self._json: Any = None
        self._form: FormData | None = None
        self._stream_consumed = False
        self._disconnected = False
        self._peeked: list[Message] = []

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def receive(self) -> Receive:
        return self._receive

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk; raises `ClientDisconnect` if the
        client goes away before the end."""
        if self._body is not None:
            yield self._body
            return
        if self._stream_consumed:
            raise ASGIUsageError("The request body was already streamed; it can be read once.")
        self._stream_consumed = True
        while True:
            message = self._peeked.pop(0) if self._peeked else await self._receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
            elif message["type"] == "http.disconnect":
                self._disconnected = True
                raise ClientDisconnect("The client disconnected before sending the whole body.")

    async def body(self) -> bytes:
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def json(self) -> Any:
        if self._json is None:
            self._json = json.loads(await self.body())
        return self._json

    async def form(
        self,
        *,
        max_files: int = MAX_FORM_FILES,
        max_fields: int = MAX_FORM_FIELDS,
        max_part_size: int = MAX_FORM_PART_SIZE,
        max_file_size: int | None = None,
        spool_max_size: int = FORM_SPOOL_MAX_SIZE,
    ) -> FormData:
        """The body as form data: urlencoded or multipart (files spooled to disk past
        `spool_max_size`). Breaking a limit raises `MultiPartException` (400/413)."""
        if self._form is None:
            from levante.web.forms import parse_form

            self._form = await parse_form(
                self,
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_part_size,
                max_file_size=max_file_size,
                spool_max_size=spool_max_size,
            )
        return self._form

    async def close(self) -> None:
        """Close uploaded files of a parsed form."""
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """True once the client has gone; never waits for it.

        Peeking may take a body chunk off `receive`; it is kept and `stream()`
        yields it first, so nothing is lost.
        """
        if self._disconnected:
            return True
        task = asyncio.ensure_future(self._receive())
        await asyncio.sleep(0)
        if not task.done():
            task.cancel()
            return False
        message = task.result()
        if message["type"] == "http.disconnect":
            self._disconnected = True
        elif message["type"] == "http.request" and not self._stream_consumed:
            self._peeked.append(message)
        return self._disconnected
