"""The ASGI lifespan protocol: startup and shutdown of the app, and its state."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from levante.asgi import ASGIApp, Message
from levante.server.errors import InvalidMessage, LifespanFailure, UnexpectedMessage

logger = logging.getLogger("levante.error")

_SEND_ORDER = {
    "lifespan.startup.complete": "startup",
    "lifespan.startup.failed": "startup",
    "lifespan.shutdown.complete": "shutdown",
    "lifespan.shutdown.failed": "shutdown",
}


class Lifespan:
    """Runs the app's lifespan task; `mode` is ``auto``, ``on`` or ``off``."""

    def __init__(
        self, app: ASGIApp, mode: Literal["auto", "on", "off"], state: dict[str, Any]
    ) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.phase = "startup"  # what the app is expected to answer next
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.failure: str | None = None
        self.unsupported = False
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Run startup; raise `LifespanFailure` when the app reports failure."""
        if self.mode == "off":
            return
        logger.info("Waiting for application startup.")
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.messages.put({"type": "lifespan.startup"})
        await self.started.wait()
        if self.failure is not None:
            raise LifespanFailure(self.failure)
        if not self.unsupported:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.mode == "off" or self.unsupported or self.task is None or self.task.done():
            return
        logger.info("Waiting for application shutdown.")
        self.phase = "shutdown"
        await self.messages.put({"type": "lifespan.shutdown"})
        await self.stopped.wait()
        if self.failure is not None:
            logger.error("Application shutdown failed: %s", self.failure)
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except Exception as exc:
            self._app_raised(exc)
        else:
            if not self.started.is_set() and self.mode == "on":
                self.failure = "the app returned before completing lifespan startup"
            elif not self.started.is_set():
                self.unsupported = True
        finally:
            self.started.set()
            self.stopped.set()

    def _app_raised(self, exc: Exception) -> None:
        if self.failure is not None:
            return  # already reported through lifespan.*.failed
        if self.phase == "startup" and not self.started.is_set() and self.mode == "auto":
            self.unsupported = True
            logger.info("ASGI 'lifespan' protocol appears unsupported (%r).", exc)
            return
        logger.error("Exception in 'lifespan' protocol", exc_info=exc)
        self.failure = f"{type(exc).__name__}: {exc}"

    async def receive(self) -> Message:
        return await self.messages.get()

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        phase = _SEND_ORDER.get(kind) if isinstance(kind, str) else None
        if phase is None or not isinstance(kind, str):
            raise InvalidMessage(
                f"unknown lifespan message {kind!r}; expected 'lifespan.startup.complete', "
                "'lifespan.startup.failed', 'lifespan.shutdown.complete' or "
                "'lifespan.shutdown.failed'"
            )
        if phase != self.phase or (phase == "startup" and self.started.is_set()):
            raise UnexpectedMessage(f"{kind!r} sent during lifespan {self.phase}")
        if kind.endswith(".failed"):
            self.failure = str(message.get("message") or "") or f"{kind} (no message)"
        if phase == "startup":
            self.started.set()
        else:
            self.stopped.set()
