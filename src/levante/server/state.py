"""What all connections of one server share: settings, clocks, counters, tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from levante.server.config import Config
    from levante.server.stream import HTTPStream
from levante.server.accesslog import AccessLog
from levante.server.metrics import Metrics
from levante.server.proxy import TrustedPeers, honoured_headers
from levante.server.tls import server_certificate


class Connection(Protocol):
    """What the server asks of every open connection, whatever its protocol."""

    def on_tick(self, now: float) -> None: ...
    def shutdown(self) -> None: ...
    def force_close(self) -> None: ...


class RequestSettings:
    """The settings every request reads, copied once from the `Config` (a plain
    dataclass): in the compiled build these are native attribute reads."""

    def __init__(self, config: Config) -> None:
        self.request_line = config.limit_request_line
        self.request_fields = config.limit_request_fields
        self.field_size = config.limit_request_field_size
        self.request_head = config.limit_request_head
        self.request_body = config.limit_request_body
        self.body_buffer = config.request_body_buffer
        self.header_timeout = config.timeout_request_header
        self.keep_alive_timeout = config.timeout_keep_alive
        self.concurrency = config.limit_concurrency
        self.websockets = config.ws == "auto"
        self.root_path = config.root_path


class ServerState:
    """Shared by the server and every connection it accepted."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.settings = RequestSettings(config)
        self.loop = loop
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        #: The app's lifespan state; each request gets a shallow copy.
        self.app_state: dict[str, Any] = {}
        self.access_log = config.access_log
        self.access = AccessLog(config.access_log_format, config.log_format == "json")
        #: Prometheus metrics, or None without --metrics-port.
        self.metrics = Metrics() if config.metrics_port is not None else None
        #: PEM of our certificate, for the ``tls`` scope extension (None without TLS).
        self.tls_server_cert = server_certificate(config)
        #: Who may speak for the client (forwarding headers, PROXY protocol); None: off.
        self.forwarded = (
            TrustedPeers(config.forwarded_allow_ips, "--forwarded-allow-ips")
            if config.proxy_headers
            else None
        )
        self.forwarded_headers = honoured_headers(config.forwarded_headers)
        self.proxy_protocol = (
            TrustedPeers(config.proxy_protocol_allow_ips, "--proxy-protocol-allow-ips")
            if config.proxy_protocol
            else None
        )
        self.shutting_down = False
        self.total_requests = 0
        self.drained = asyncio.Event()
        #: `loop.time()` at the last tick (one-second resolution, for timeouts).
        self.now = loop.time()
        #: `server` and `date` header lines and the blank line ending a head.
        self.default_headers = b"\r\n"
        self.refresh_headers()

    def refresh_headers(self) -> None:
        """Rebuild the `date` header; the server calls this once a second."""
        lines = []
        #: The ``date`` header value (HTTP/2 encodes its own fields).
        self.date = formatdate(usegmt=True).encode("ascii")
        if self.config.server_header:
            lines.append(b"server: levante\r\n")
        if self.config.date_header:
            lines.append(b"date: %s\r\n" % self.date)
        lines.append(b"\r\n")
        self.default_headers = b"".join(lines)

    def check_drained(self) -> None:
        if self.shutting_down and not self.connections and not self.tasks:
            self.drained.set()

    def begin_shutdown(self) -> None:
        """From now on, the end of the last app call may complete the drain."""
        self.shutting_down = True
        for task in self.tasks:
            task.add_done_callback(self.task_done)

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.check_drained()


#: The name of every app call's task (a named task skips formatting ``Task-<n>``).
TASK_NAME: Final = "levante-app-call"


def start_task(state: ServerState, stream: HTTPStream, coro: Coroutine[Any, Any, None]) -> None:
    """Run the app call of `stream` as a task the server tracks in `state.tasks` until it ends.

    The call's coroutine (`HTTPStream.run`, `WebSocketSession.run`) takes its task
    out of `state.tasks` itself as it ends, as `stream.task`: a done-callback per
    task would cost a scheduled loop callback per request, and on CPython 3.11
    `asyncio.current_task()` is Python code that costs 0.4 us. From shutdown on
    every task also gets `task_done` as a done-callback, which completes the drain
    (and covers a task cancelled before it started, whose coroutine never runs).
    A task an app's eager task factory ran to its end at once is not tracked.

    CPython 3.12's eager task start was measured here and left out: with uvloop
    0.23 it served fewer requests per second than a plain task (median ratios to
    uvicorn, same run: plaintext 1.36 eager vs 1.41 plain, json 1.14 vs 1.32).
    """
    loop = state.loop
    if loop.get_task_factory() is None:
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, name=TASK_NAME)
    else:
        task = loop.create_task(coro)  # the app's task factory decides
        if task.done():
            return
    stream.task = task
    state.tasks.add(task)
    if state.shutting_down:
        task.add_done_callback(state.task_done)
