"""A worker process of the supervisor: serves the sockets it was handed, beats a
heartbeat from its event loop, says when it is listening, and stops gracefully
after ``--limit-max-requests`` (with jitter) so the supervisor replaces it."""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from levante.server.config import Config

logger = logging.getLogger("levante.error")


def worker_main(
    config: Config,
    sockets: list[socket.socket],
    heartbeat: Synchronized[float],
    ready: Any,
    recycle: Synchronized[int],
) -> None:
    """The target of each worker process (spawned: this runs in a fresh interpreter)."""
    from levante.server.errors import AppImportError, ConfigError, LifespanFailure
    from levante.server.main import Server, exit_watchdog, prepare, run_server

    prepare(config)
    limit = max_requests(config)
    supervisor = os.getppid()

    def beat(server: Server) -> None:
        if server.should_exit.is_set():
            heartbeat.value = math.inf  # shutting down: the loop may not tick again
            return
        heartbeat.value = time.monotonic()
        if os.getppid() != supervisor:
            # The supervisor is gone (killed): nobody would replace or stop us.
            logger.warning("The supervisor [%d] is gone: stopping", supervisor)
            heartbeat.value = math.inf
            server.should_exit.set()
        if not ready.is_set() and server.started.is_set():
            ready.set()
        state = server.state
        spent = limit is not None and state is not None and state.total_requests >= limit
        if spent and not recycle.value:
            # The supervisor starts our successor, then stops us: no gap in service.
            logger.info("Served %d requests: asking to be replaced", limit)
            recycle.value = 1

    try:
        run_server(config, sockets=sockets, on_tick=beat)
        exit_watchdog(0)
    except (AppImportError, ConfigError) as exc:
        logger.error("Worker cannot start: %s", exc)
        raise SystemExit(1) from None
    except LifespanFailure as exc:
        logger.error("Application startup failed: %s", exc)
        raise SystemExit(3) from None


def max_requests(config: Config) -> int | None:
    """This worker's request budget: the limit plus a random part of the jitter, so
    that workers started together do not all restart together."""
    if config.limit_max_requests is None:
        return None
    return config.limit_max_requests + random.randint(0, config.limit_max_requests_jitter)
