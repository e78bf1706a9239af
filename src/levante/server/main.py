"""The server: listen, run the lifespan, serve until a signal, shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from levante.asgi import ASGIApp
from levante.server.config import Config
from levante.server.errors import ConfigError
from levante.server.importer import load_app
from levante.server.interface import adapt
from levante.server.lifespan import Lifespan
from levante.server.metrics import serve_metrics, stop_metrics
from levante.server.protocols.http1 import HTTP1Protocol
from levante.server.protocols.http2 import HTTP2Protocol
from levante.server.sockets import bind_sockets, describe
from levante.server.state import ServerState
from levante.server.tls import SHUTDOWN_TIMEOUT as TLS_SHUTDOWN_TIMEOUT
from levante.server.tls import server_context

logger = logging.getLogger("levante.error")

#: Exit status when lifespan startup fails (the value uvicorn uses).
STARTUP_FAILURE = 3


class Server:
    """Serves one app with one `Config` in the running event loop.

    `serve()` runs until `should_exit` is set (SIGINT/SIGTERM do that), then
    shuts down: stop accepting, close idle connections, let requests in flight
    finish within ``timeout_graceful_shutdown``, then run lifespan shutdown.
    """

    def __init__(
        self,
        config: Config,
        app: ASGIApp | None = None,
        sockets: list[socket.socket] | None = None,
        on_tick: Callable[[Server], None] | None = None,
    ) -> None:
        self.config = config
        self.app = app
        #: Sockets bound by someone else (a supervisor); otherwise bound from `config`.
        self.given_sockets = sockets
        #: Called from the once-a-second tick (a worker's heartbeat).
        self.on_tick = on_tick
        self.should_exit = asyncio.Event()
        self.force_exit = False
        self.forced = asyncio.Event()
        self.started = asyncio.Event()
        self.sockets: list[socket.socket] = []
        self.state: ServerState | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tick_handle: asyncio.TimerHandle | None = None

    async def serve(self) -> None:
        """Serve until told to stop; raises `LifespanFailure` if startup fails."""
        loop = asyncio.get_running_loop()
        raise_gc_threshold(self.config.gc_threshold)  # before the import: a setting it makes wins
        app = self.app if self.app is not None else load_app(self.config.app, self.config.factory)
        app = adapt(app, self.config)
        logger.info("Started server process [%d]", os.getpid())
        state = self.state = ServerState(self.config, loop)
        metrics = self._serve_metrics()  # first: a port in use fails before the app starts
        lifespan = Lifespan(app, self.config.lifespan, state.app_state)
        try:
            await lifespan.startup()
        except BaseException:
            if metrics is not None:
                stop_metrics(metrics)
            raise
        try:
            await self._listen(state, app)
        except BaseException:
            await lifespan.shutdown()
            if metrics is not None:
                stop_metrics(metrics)
            raise
        self.started.set()
        self._tick()  # the first tick sees the server started (a worker reports ready)
        try:
            await self.should_exit.wait()
        finally:
            await self._shutdown(state)
            await lifespan.shutdown()
            if metrics is not None:
                stop_metrics(metrics)
            logger.info("Finished server process [%d]", os.getpid())

    async def _listen(self, state: ServerState, app: ASGIApp) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        context = server_context(config)
        scheme = "https" if context is not None else "http"

        def factory() -> asyncio.Protocol:
            if config.http == "h2":
                return HTTP2Protocol(state, app)
            return HTTP1Protocol(state, app)

        sockets = self.given_sockets or bind_sockets(config)
        for sock in sockets:
            tls: dict[str, Any] = {"ssl": context}
            if context is not None:
                tls["ssl_shutdown_timeout"] = TLS_SHUTDOWN_TIMEOUT
            server = await loop.create_server(factory, sock=sock, backlog=config.backlog, **tls)
            self._servers.append(server)
            self.sockets.extend(server.sockets)
            where = describe(sock, scheme)
            if self.given_sockets is None:  # a supervisor announces its own sockets
                logger.info(
                    "Levante running on %s (Press CTRL+C to quit)", where, extra={"url": where}
                )

    def _serve_metrics(self) -> Any:
        # A worker's figures are served by its supervisor, summed over the workers.
        port = self.config.metrics_port
        if port is None or self.given_sockets is not None:
            return None
        handle = serve_metrics(self.config.metrics_host, port)
        logger.info("Metrics on http://%s:%d/metrics", self.config.metrics_host, port)
        return handle

    def _tick(self) -> None:
        # Once a second: refresh the date header and enforce connection timeouts.
        # One timer for the whole server instead of one per connection or request.
        state = self.state
        if state is None:
            return
        loop = state.loop
        state.now = now = loop.time()
        state.refresh_headers()
        for conn in list(state.connections):
            conn.on_tick(now)
        if self.on_tick is not None:
            self.on_tick(self)
        self._tick_handle = loop.call_at(now + 1.0, self._tick)

    async def _shutdown(self, state: ServerState) -> None:
        logger.info("Shutting down")
        state.begin_shutdown()
        for server in self._servers:
            server.close()
        # Connections the loop accepted before the listeners closed may still be on
        # their way to connection_made: let them arrive, to be answered, not dropped.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        for conn in list(state.connections):
            conn.shutdown()
        state.check_drained()
        timeout = self.config.timeout_graceful_shutdown
        if not state.drained.is_set() and not self.force_exit:
            logger.info(
                "Waiting for %d connection(s) and %d request(s) to finish (up to %gs).",
                len(state.connections),
                len(state.tasks),
                timeout,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_drained(state), timeout)
        await self._force_stop(state)
        if self._tick_handle is not None:
            self._tick_handle.cancel()

    async def _wait_drained(self, state: ServerState) -> None:
        # Wakes when the last connection closes and the last app call ends,
        # or on a second Ctrl+C.
        waiter = asyncio.ensure_future(state.drained.wait())
        forced = asyncio.ensure_future(self.forced.wait())
        try:
            await asyncio.wait((waiter, forced), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            forced.cancel()

    async def _force_stop(self, state: ServerState) -> None:
        if state.connections:
            logger.warning("Closing %d connection(s) still open.", len(state.connections))
        for conn in list(state.connections):
            conn.force_close()
        tasks = list(state.tasks)
        if tasks:
            logger.warning("Cancelling %d request(s) still running.", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5.0)

    def handle_exit(self, sig: int, frame: FrameType | None = None) -> None:
        """First SIGINT/SIGTERM: graceful shutdown. A second SIGINT: stop now."""
        if self.should_exit.is_set() and sig == signal.SIGINT:
            self.force_exit = True
            self.forced.set()
        self.should_exit.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)


def new_event_loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop for `--loop`: uvloop where it is installed (auto), else asyncio."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise ConfigError("--loop uvloop: uvloop is not installed") from None
        else:
            new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return new_loop
    return asyncio.new_event_loop


def raise_gc_threshold(threshold: int) -> None:
    """Raise the young-generation GC threshold to `threshold` (see limits.GC_THRESHOLD)."""
    current = gc.get_threshold()
    if threshold and current[0] < threshold:
        gc.set_threshold(threshold, *current[1:])


def prepare(config: Config) -> None:
    """What happens before the app is imported: .env file, sys.path, logging."""
    from levante.server import logs

    if config.env_file is not None:
        from dotenv import load_dotenv

        if not os.path.isfile(config.env_file):
            raise ConfigError(f"--env-file: no such file {config.env_file!r}")
        load_dotenv(config.env_file, override=False)
    logs.configure(config.log_config, config.log_level_number, config.access_log, config.log_format)
    app_dir = os.path.abspath(config.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)


#: Seconds the interpreter may take to exit after the server has stopped; past that a
#: thread the app left running (a hung WSGI call) would keep the process alive forever.
EXIT_GRACE = 5.0


def exit_watchdog(status: int = 0) -> None:
    """End the process if its remaining threads keep it alive past `EXIT_GRACE`."""
    import threading

    def expire() -> None:
        names = [
            t.name
            for t in threading.enumerate()
            if not t.daemon and t is not threading.main_thread()
        ]
        logger.warning(
            "Threads still running after shutdown (%s): exiting without them", ", ".join(names)
        )
        logging.shutdown()
        os._exit(status)

    timer = threading.Timer(EXIT_GRACE, expire)
    timer.daemon = True
    timer.start()


def run_server(
    config: Config,
    app: ASGIApp | None = None,
    *,
    sockets: list[socket.socket] | None = None,
    on_tick: Callable[[Server], None] | None = None,
) -> None:
    """Serve in a new event loop until SIGINT/SIGTERM."""
    server = Server(config, app, sockets, on_tick)

    async def main() -> None:
        server.install_signal_handlers()
        await server.serve()

    with asyncio.Runner(loop_factory=new_event_loop_factory(config.loop)) as runner:
        runner.run(main())


def run(app: Any, **kwargs: Any) -> None:
    """Serve `app` (an ASGI app or a ``"module:attribute"`` string) until stopped.

    Keyword arguments are `Config` fields (``host``, ``port``, ``log_level``…);
    any not given are read from ``LEVANTE_*`` environment variables.
    """
    config = Config.resolve({**kwargs, "app": app})
    prepare(config)
    if uses_supervisor(config):
        from levante.server.supervisor import Supervisor

        raise SystemExit(Supervisor(config).run())
    run_server(config, None if isinstance(app, str) else app)


def uses_supervisor(config: Config) -> bool:
    """``--workers`` given, recycling by request count, or --reload: a supervisor process."""
    return config.workers is not None or config.limit_max_requests is not None or config.reload
