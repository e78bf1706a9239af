"""The ASGI lifespan protocol for apps and routers, sub-apps included.

An app's lifespan is an async context manager factory, ``lifespan(app)``: what
it yields becomes the lifespan state (a mapping is merged into the ASGI state
dict, any other object is kept whole, for that app alone, and reachable from its
requests as `request.lifespan_state` and by attribute on `request.state`). The
lifespans of mounted apps (another `App`, a Starlette app, anything that speaks
ASGI lifespan) run too, inside the parent's, and are shut down first.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from levante.asgi import AnyScope, ASGIApp, Message, Receive, Send
from levante.web.exceptions import WebError

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]

#: Where the objects lifespans yielded are kept in the ASGI lifespan state: a dict
#: from the app they belong to to the object, so that a mounted app's object does
#: not replace its parent's. (Mappings are merged into the state itself, which all
#: the apps share, as the ASGI spec has it.)
LIFESPAN_STATE_KEY = "levante.lifespan"

logger = logging.getLogger("levante.web")


class LifespanError(WebError):
    """A mounted app's lifespan failed; the message is the app's."""


def serving_app(scope: Mapping[str, Any]) -> Any:
    """The app whose lifespan object a connection (or a mounted lifespan) sees: the
    innermost `App` (each sets ``scope["app"]`` to itself, and a mounted `Router`
    is part of the app around it), else the outermost router (a bare `Router`)."""
    return scope.get("app") or scope.get("router")


def lifespan_object(scope: Mapping[str, Any]) -> Any:
    """The object the lifespan of `serving_app(scope)` yielded, or None."""
    objects = scope.get("state", {}).get(LIFESPAN_STATE_KEY)
    return None if objects is None else objects.get(serving_app(scope))


def _keep_object(state: dict[str, Any], app: Any, value: Any, own: bool) -> None:
    objects: dict[Any, Any] = state.setdefault(LIFESPAN_STATE_KEY, {})
    if not own:
        # A mounted `Router` runs after the app it belongs to: the app's own wins.
        if value is not None:
            objects.setdefault(app, value)
    elif value is None:
        objects.pop(app, None)  # a state dict reused from an earlier run
    else:
        objects[app] = value


class LifespanRunner:
    """Answers one ASGI lifespan scope for `owner` (an `App` or a `Router`)."""

    def __init__(
        self,
        owner: Any,
        contexts: Sequence[Lifespan],
        subapps: Sequence[ASGIApp],
        on_startup: Callable[[], Any],
        on_started: Callable[[AsyncExitStack, dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.owner = owner
        self.contexts = contexts
        self.subapps = subapps
        self.on_startup = on_startup
        #: Runs once the app's own lifespans have started, before mounted apps':
        #: app-scoped dependencies are made there, closed by `stack`.
        self.on_started = on_started
        #: The state dict, kept for servers that run lifespan but give no state.
        self.state: dict[str, Any] | None = None

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            state = {}
            self.state = state
        started = False
        try:
            async with AsyncExitStack() as stack:
                await self._start(stack, state, serving_app(scope) or self.owner)
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except Exception:
            kind = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": kind, "message": traceback.format_exc()})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self, stack: AsyncExitStack, state: dict[str, Any], app: Any) -> None:
        self.on_startup()
        owner = getattr(self.owner, "owner", None) or self.owner
        objects: list[Any] = []
        for context in self.contexts:
            value = await stack.enter_async_context(context(owner))
            if isinstance(value, Mapping):
                state.update(value)
            elif value is not None:
                objects.append(value)
        # An app's own lifespan comes before its included routers': the first wins.
        _keep_object(state, app, objects[0] if objects else None, own=app in (owner, self.owner))
        if self.on_started is not None:
            await self.on_started(stack, state)
        for subapp in self.subapps:
            await stack.enter_async_context(run_sub_lifespan(subapp, state, app))


@asynccontextmanager
async def run_sub_lifespan(
    app: ASGIApp, state: dict[str, Any], parent: Any = None
) -> AsyncIterator[None]:
    """Run `app`'s lifespan around the block, sharing `state`. `parent` is the app
    mounting it: a mounted `Router` belongs to it (a mounted `App` sets its own).

    An app that raises or returns before answering startup does not support
    lifespan (Django, plain ASGI functions); the ASGI spec tells servers to carry
    on without it, and so do we.
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    if parent is not None:
        scope["app"] = parent

    async def run() -> None:
        try:
            await app(scope, inbox.get, outbox.put)
        except Exception as exc:
            logger.debug("mounted app %r has no lifespan: %r", app, exc)
            await outbox.put({"type": "levante.lifespan.ended"})
        else:
            await outbox.put({"type": "levante.lifespan.ended"})

    task = asyncio.ensure_future(run())
    await inbox.put({"type": "lifespan.startup"})
    answer = await outbox.get()
    if answer["type"] == "lifespan.startup.failed":
        await task
        raise LifespanError(f"mounted app {app!r} failed to start: {answer.get('message', '')}")
    if answer["type"] != "lifespan.startup.complete":
        await task
        yield
        return
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        answer = await outbox.get()
        await task
        if answer["type"] == "lifespan.shutdown.failed":
            raise LifespanError(f"mounted app {app!r} failed to stop: {answer.get('message', '')}")
