"""Write flow control, shared by every protocol.

The transport calls `pause_writing`/`resume_writing` on its protocol as its
buffer crosses the high/low water marks; the protocol forwards them to a
`WriteGate`, and a sender awaits `WriteGate.wait()` only while it is paused.
"""

from __future__ import annotations

import asyncio


class WriteGate:
    """Open unless the transport asked to pause writing; shut once the connection is lost."""

    __slots__ = ("closed", "paused", "waiters")

    def __init__(self) -> None:
        self.paused = False
        self.closed = False
        self.waiters: list[asyncio.Future[None]] = []

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._release()

    def close(self) -> None:
        """The connection is gone: nobody waits any more (their next write fails)."""
        self.closed = True
        self._release()

    async def wait(self) -> None:
        """Return once writing may go on (or the connection is gone)."""
        while self.paused and not self.closed:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter

    def _release(self) -> None:
        waiters, self.waiters = self.waiters, []
        wake(waiters)


def wake(waiters: list[asyncio.Future[None]]) -> None:
    """Resolve every future a task is blocked on (those not cancelled meanwhile)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
