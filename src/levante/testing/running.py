"""One call of the app, run as a task: the bounded waits and failure policy of every connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from levante.testing.errors import AppTimeoutError
from levante.testing.options import AppOptions

T = TypeVar("T")


class AppTask:
    """Runs ``app(scope, receive, send)`` for one connection and keeps what it raised.

    The app's exception is kept here rather than left on the task, so asyncio
    never logs "exception was never retrieved" for an error the test chose to ignore.
    """

    def __init__(self, options: AppOptions, label: str) -> None:
        self.options = options
        self.label = label  # names the connection in error messages, e.g. "GET /items"
        self._task: asyncio.Task[None] | None = None
        self._exception: Exception | None = None
        self._reported = False

    def start(self, call: Awaitable[None], on_exit: Callable[[], None]) -> None:
        """Run `call` (the app) in a task; `on_exit` runs however it ends."""
        self._task = asyncio.get_running_loop().create_task(
            self._main(call, on_exit), name=f"levante.testing app: {self.label}"
        )

    async def _main(self, call: Awaitable[None], on_exit: Callable[[], None]) -> None:
        try:
            await call
        except Exception as exc:
            self._exception = exc
        finally:
            on_exit()

    @property
    def running(self) -> bool:
        """Whether the app was started and has not finished yet."""
        return self._task is not None and not self._task.done()

    async def bounded(self, awaitable: Awaitable[T], owed: str) -> T:
        """Await `awaitable` for at most ``options.timeout`` seconds.

        On expiry the app is cancelled and `AppTimeoutError` says what it owed.
        """
        timeout = self.options.timeout
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise
            self.cancel()
            raise AppTimeoutError(
                f"{self.label}: the app sent no {owed} within {timeout:g} s "
                "(set the client's timeout= if it is just slow)"
            ) from None

    def cancel(self) -> None:
        """Cancel the app if it is still running; do not wait for it."""
        if self._task is not None:
            self._task.cancel()

    async def finish(self, patience: float, overdue: str | None = None) -> None:
        """Give the app `patience` seconds to return, then cancel it.

        `overdue`, when given, is the error message for an app that had to be
        cancelled; without it cancelling is the expected way to stop the app.
        """
        task = self._task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=patience)
        if task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=self.options.timeout)
        if not task.done():
            raise AppTimeoutError(
                f"{self.label}: the app ignored cancellation for {self.options.timeout:g} s"
            )
        if overdue is not None:
            raise AppTimeoutError(f"{self.label}: {overdue}")

    def error(self, ignore: Callable[[Exception], bool] = lambda exc: False) -> Exception | None:
        """What the app raised, returned once; None if it raised nothing or `ignore` says so."""
        exc = self._exception
        if self._reported or exc is None or ignore(exc):
            return None
        self._reported = True
        return exc

    def raise_error(self, ignore: Callable[[Exception], bool] = lambda exc: False) -> None:
        """Re-raise what the app raised, if the client's ``raise_server_exceptions`` is on."""
        if not self.options.raise_server_exceptions:
            return
        exc = self.error(ignore)
        if exc is not None:
            raise exc
