"""A WebSocket connection after an HTTP/1.1 ``Upgrade``: the socket, under a session.

The HTTP/1.1 protocol hands the transport to `WebSocketProtocol` once the app
accepts; from then on bytes go to the `WebSocketSession`. Flow control, keep-alive
pings, dead-peer detection and shutdown (close 1001) live here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from websockets.protocol import State

from levante.native import mypyc_attr
from levante.server import limits
from levante.server.flow import WriteGate

if TYPE_CHECKING:
    from levante.server.state import ServerState
    from levante.server.websocket import WebSocketSession


@mypyc_attr(allow_interpreted_subclasses=True)  # HTTP/2's WebSocket streams subclass it
class WebSocketTimers:
    """Keep-alive pings, dead-peer detection and the closing timeout of one WebSocket.

    Shared by a WebSocket on its own connection (after an HTTP/1.1 Upgrade) and
    one on an HTTP/2 stream: the server's tick calls `on_tick`.
    """

    state: ServerState
    session: WebSocketSession
    last_seen: float
    closing_since: float
    next_ping: float

    def start_timers(self, now: float) -> None:
        self.last_seen = now
        self.closing_since = 0.0
        self.next_ping = self._ping_due(now)

    def _ping_due(self, now: float) -> float:
        interval = self.state.config.ws_ping_interval
        return now + interval if interval else 0.0

    def on_tick(self, now: float) -> None:
        if self.session.protocol.state is State.CLOSING:
            # We sent a close frame; a peer that never answers it is dropped.
            if not self.closing_since:
                self.closing_since = now
            elif now - self.closing_since > limits.WS_CLOSE_TIMEOUT:
                self.force_close()
            return
        config = self.state.config
        timeout = config.ws_ping_timeout
        interval = config.ws_ping_interval
        if interval and timeout and now - self.last_seen > interval + timeout:
            # Nothing, not even a pong, for a ping interval plus the timeout: a dead peer.
            self.force_close()
            return
        if self.next_ping and now >= self.next_ping:
            self.next_ping = self._ping_due(now)
            self.session.ping()

    def force_close(self) -> None:
        raise NotImplementedError


class WebSocketProtocol(WebSocketTimers, asyncio.Protocol):
    """The transport side of one WebSocket over HTTP/1.1."""

    def __init__(
        self, state: ServerState, session: WebSocketSession, transport: asyncio.Transport
    ) -> None:
        self.state = state
        self.session = session
        self.transport = transport
        self.gate = WriteGate()
        self.closing = False
        self.start_timers(state.now)

    # -- asyncio.Protocol ---------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.state.now
        self.session.feed_data(data)

    def eof_received(self) -> bool | None:
        self.session.feed_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.state.connections.discard(self)
        if self.state.metrics is not None:
            self.state.metrics.websockets.dec()
        self.session.feed_disconnect()
        self.gate.close()
        self.state.check_drained()

    @property
    def write_paused(self) -> bool:
        """Whether the transport asked to stop writing (its buffer is full)."""
        return self.gate.paused

    def pause_writing(self) -> None:
        self.gate.pause()
        self.session.writing_paused = True

    def resume_writing(self) -> None:
        self.gate.resume()
        self.session.writing_paused = False

    # -- WebSocketTransport ---------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()

    def pause_reading(self) -> None:
        if not self.closing:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.closing:
            self.transport.resume_reading()

    async def wait_writable(self) -> None:
        await self.gate.wait()

    # -- Connection (server ticks and shutdown) -----------------------------

    def shutdown(self) -> None:
        self.session.going_away()

    def force_close(self) -> None:
        self.closing = True
        self.transport.abort()
