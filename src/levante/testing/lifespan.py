"""`LifespanManager`: runs an app's ASGI lifespan around a test."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self, cast

from levante.asgi import HTTP_SPEC_VERSION, ASGIApp, LifespanScope, Message
from levante.testing.errors import ASGIAppError, LifespanFailure
from levante.testing.options import AppOptions
from levante.testing.running import AppTask


class LifespanManager:
    """Sends ``lifespan.startup`` on `startup` and ``lifespan.shutdown`` on `shutdown`.

    Use it as ``async with LifespanManager(app) as lifespan:`` and pass
    ``lifespan.state`` to `AppTransport`, so request scopes see what startup stored.

    As in servers, an app that raises or returns before it ever called
    ``receive()`` does not speak lifespan, and the tests go on without it. An app
    that answers ``lifespan.startup.failed`` makes `startup` raise: the exception
    the app raised, if it raised one, else `LifespanFailure` with its message.
    """

    def __init__(
        self, app: ASGIApp, *, state: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> None:
        self.state: dict[str, Any] = {} if state is None else state
        options = AppOptions(app=app, state=self.state, timeout=timeout)
        self._options = options
        self._run = AppTask(options, "lifespan")
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()  # None: the app returned
        self._phase: str | None = None  # the phase whose answer is due
        self._received = False  # the app called receive(): it speaks lifespan
        self.supported = True

    async def __aenter__(self) -> Self:
        await self.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def startup(self) -> None:
        """Run the app's startup; return once it sent ``lifespan.startup.complete``."""
        scope: LifespanScope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": HTTP_SPEC_VERSION},
            "state": self.state,
        }
        call = self._options.app(cast("dict[str, Any]", scope), self._receive, self._send)
        self._run.start(call, lambda: self._from_app.put_nowait(None))
        await self._exchange("startup")

    async def shutdown(self) -> None:
        """Run the app's shutdown and wait for its lifespan task to return."""
        if not self.supported or not self._run.running:
            return
        await self._exchange("shutdown")
        await self._run.finish(
            self._options.timeout, "the app kept its lifespan running after shutdown completed"
        )

    async def _exchange(self, phase: str) -> None:
        self._phase = phase
        self._to_app.put_nowait({"type": f"lifespan.{phase}"})
        owed = f"'lifespan.{phase}.complete'"
        message = await self._run.bounded(self._from_app.get(), owed)
        if message is None:
            self._app_returned(phase)
        elif message["type"].endswith(".failed"):
            await self._run.finish(self._options.close_grace)
            if (exc := self._run.error()) is not None:
                raise exc  # the app's own exception, as Starlette's TestClient raises it
            raise LifespanFailure(phase, str(message.get("message") or ""))

    def _app_returned(self, phase: str) -> None:
        exc = self._run.error()
        if phase == "startup" and not self._received:
            self.supported = False  # ASGI: such an app does not support lifespan
            return
        if exc is not None:
            raise exc
        raise ASGIAppError(
            f"the app returned from the lifespan scope without sending 'lifespan.{phase}.complete' "
            f"(or 'lifespan.{phase}.failed')"
        )

    async def _receive(self) -> Message:
        self._received = True
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        phase = self._phase
        expected = (f"lifespan.{phase}.complete", f"lifespan.{phase}.failed")
        if phase is None or kind not in expected:
            due = "nothing" if phase is None else " or ".join(repr(name) for name in expected)
            raise ASGIAppError(f"the app sent {kind!r} during lifespan, where {due} was due")
        self._phase = None
        self._from_app.put_nowait(message)
