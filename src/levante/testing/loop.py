"""`LoopThread`: an event loop in a background thread, driven from synchronous test code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from levante.testing.errors import AppTimeoutError, TestingError

T = TypeVar("T")


class LoopThread:
    """Runs an asyncio event loop in a daemon thread until `stop`.

    All of an app's connections for one `TestClient` live on this loop, so
    objects an app creates in startup (locks, queues, clients) work in requests.
    When the loop stops, whatever still runs on it is cancelled (waiting at most
    `patience` seconds for it) and the loop is closed, in its own thread.
    """

    def __init__(self, patience: float) -> None:
        self._patience = patience
        self._loop = asyncio.new_event_loop()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="levante-testclient", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            try:
                self._loop.run_until_complete(_cancel_remaining(self._patience))
            finally:
                self._loop.close()

    @property
    def stopped(self) -> bool:
        """Whether `stop` was called (or the thread ended)."""
        return self._stopping or not self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and return its result (or raise its exception).

        `timeout` only guards against a loop that stopped answering: the
        coroutines bound their own waits on the app. A loop that is still busy
        after `timeout` seconds is blocked by synchronous code in the app.
        """
        if self.stopped or threading.current_thread() is self._thread:
            coro.close()
            raise TestingError(_unusable(self.stopped))
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done():
                raise  # the coroutine's own timeout error
            future.cancel()
            raise AppTimeoutError(
                f"the app's event loop did not answer for {timeout:g} s: something in the "
                "app blocks it (time.sleep, blocking I/O, a busy loop without await?)"
            ) from None

    def stop(self, wait: float | None = None) -> None:
        """Stop the loop; wait up to `wait` seconds for its thread to finish (None: do not wait)."""
        if self._stopping:
            return
        self._stopping = True
        try:
            self._loop.call_soon_threadsafe(self._loop.stop)
        except RuntimeError:  # the loop is already closed
            return
        if wait is not None and threading.current_thread() is not self._thread:
            self._thread.join(wait)


def _unusable(stopped: bool) -> str:
    if stopped:
        return (
            "the TestClient's event loop has stopped (its `with` block ended or it was "
            "closed); open responses and WebSockets must be used inside the block"
        )
    return (
        "the TestClient was called from inside the app it tests (its event loop "
        "thread); call the app's code directly, or use AppTransport with httpx.AsyncClient"
    )


async def _cancel_remaining(patience: float) -> None:
    loop = asyncio.get_running_loop()
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=patience)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
