"""`--workers N`: one supervisor process, N worker processes serving the same sockets.

The supervisor binds the listening sockets once and keeps them open for its whole
life; workers get them by inheritance (multiprocessing's spawn hands descriptors
over). Where the kernel has SO_REUSEPORT, each worker slot gets its own socket
bound to the same address, so the kernel spreads connections across workers;
because the supervisor holds every slot's socket, a worker that stops or is
replaced never closes its slot's socket, and connections waiting in its accept
queue are taken by the next worker of that slot instead of being reset. (That is
why a rolling restart drops nothing.) Elsewhere all workers share one socket.

Signals, as gunicorn and uvicorn take them:

- SIGTERM, SIGINT: graceful stop of every worker, then exit;
- SIGHUP: rolling restart, one slot at a time: a new worker starts, and only once
  it listens does the old one get SIGTERM (it finishes its requests);
- SIGTTIN / SIGTTOU: one worker more / fewer.

A worker that exits is replaced (after a pause that grows while workers keep
dying at start-up); one whose event loop stops beating for
``--timeout-worker-healthcheck`` seconds is killed and replaced;
``--limit-max-requests`` makes a worker stop gracefully after that many requests
(plus up to ``--limit-max-requests-jitter``), to be replaced the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from levante.server.config import Config
from levante.server.errors import ConfigError
from levante.server.metrics import multiprocess_dir, serve_metrics, stop_metrics, worker_exited
from levante.server.sockets import bind_sockets, describe

logger = logging.getLogger("levante.error")

_SPAWN = multiprocessing.get_context("spawn")
#: Seconds a new worker has to start listening before it counts as failed.
START_TIMEOUT = 60.0
#: Restart pause after a worker died young: doubles up to this many seconds.
MAX_BACKOFF = 10.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
#: Not a signal: the reloader's request for a rolling restart, queued the same way.
_RELOAD = -1


@dataclass
class Worker:
    process: SpawnProcess
    heartbeat: Synchronized[float]
    ready: Any  # multiprocessing Event
    recycle: Synchronized[int]  # the worker asks to be replaced (--limit-max-requests)
    retiring: bool = False


@dataclass
class Slot:
    """A worker position: its sockets (kept by the supervisor) and who serves them."""

    sockets: list[socket.socket]
    workers: list[Worker] = field(default_factory=list)
    backoff: float = 0.0
    restart_at: float = 0.0


class Supervisor:
    """Runs the workers of `config` until SIGINT/SIGTERM; `run()` returns the exit status."""

    def __init__(self, config: Config) -> None:
        if not isinstance(config.app, str):
            raise ConfigError("--workers needs the app as an import string (module:attribute)")
        self.config = config
        self.reuse_port = (
            hasattr(socket, "SO_REUSEPORT") and config.uds is None and config.fd is None
        )
        self.slots: list[Slot] = []
        #: Removed slots whose workers are still finishing.
        self.closing: list[Slot] = []
        self.shared: list[socket.socket] | None = None
        self.pending: deque[int] = deque()
        self.stopping = False
        #: 3 when the app never started (as gunicorn's "worker failed to boot").
        self.exit_status = 0
        #: A worker has listened since the supervisor started.
        self.ever_ready = False
        self.metrics_dir: str | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- the loop --------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        watcher = self._watcher()
        metrics = None
        try:
            metrics = self._serve_metrics()
            for _ in range(self.config.workers or 1):
                self._add_slot()
            self._announce()
            logger.info(
                "Started supervisor process [%d] with %d workers", os.getpid(), len(self.slots)
            )
            while not self.stopping:
                self._wait()
                self._handle_signals()
                self._reap()
                self._check_recycling()
                self._check_health()
        finally:
            self._stop_all()  # also after an unexpected error: no worker outlives us
            if watcher is not None:
                watcher.stop()
            if metrics is not None:
                stop_metrics(metrics[0])
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self._close_sockets()
        logger.info("Stopped supervisor process [%d]", os.getpid())
        return self.exit_status

    def _wait(self) -> None:
        sentinels = [w.process.sentinel for s in self.slots for w in s.workers]
        timeout = 1.0
        due = [s.restart_at for s in self.slots if not self._serving(s)]
        if due:
            timeout = max(0.0, min(timeout, min(due) - time.monotonic()))
        multiprocessing.connection.wait([self._wake_r, *sentinels], timeout)
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(64):
                pass

    def _serve_metrics(self) -> tuple[Any, str] | None:
        """With --metrics-port: the workers' metric files folder, and its server."""
        port = self.config.metrics_port
        if port is None:
            return None
        self.metrics_dir = folder = multiprocess_dir()
        handle = serve_metrics(self.config.metrics_host, port)
        logger.info(
            "Metrics of all workers on http://%s:%d/metrics", self.config.metrics_host, port
        )
        return handle, folder

    def _watcher(self) -> Any:
        if not self.config.reload:
            return None
        from levante.server.reload import Watcher

        watcher = Watcher(self.config, self._on_change)
        watcher.start()
        return watcher

    def _on_change(self, paths: list[str]) -> None:
        # From the watcher's thread: queued like a signal, handled by the loop.
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        logger.info("Changed: %s; reloading", shown)
        self._on_signal(_RELOAD, None)

    # -- signals ----------------------------------------------------------------

    def _install_signals(self) -> None:
        for sig in _SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, sig: int, frame: Any) -> None:
        self.pending.append(sig)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _handle_signals(self) -> None:
        while self.pending and not self.stopping:
            sig = self.pending.popleft()
            if sig == _RELOAD and _RELOAD in self.pending:
                continue  # several saves in a row: one restart, for the last
            if sig in (signal.SIGINT, signal.SIGTERM):
                logger.info("Received %s: stopping the workers", signal.Signals(sig).name)
                self.stopping = True
            elif sig == signal.SIGHUP:
                logger.info("Received SIGHUP: restarting the workers one by one")
                self._rolling_restart()
            elif sig == _RELOAD:
                self._rolling_restart()
            elif sig == signal.SIGTTIN:
                self._add_slot()
                logger.info("Received SIGTTIN: %d workers", len(self.slots))
            elif sig == signal.SIGTTOU:
                if len(self.slots) > 1:
                    self._remove_slot()
                logger.info("Received SIGTTOU: %d workers", len(self.slots))

    # -- workers ------------------------------------------------------------------

    def _add_slot(self) -> None:
        slot = Slot(self._sockets_for_new_slot())
        self.slots.append(slot)
        slot.workers.append(self._spawn(slot))

    def _sockets_for_new_slot(self) -> list[socket.socket]:
        if self.reuse_port and len(self.slots) >= (self.config.workers or 1):
            # A worker added by SIGTTIN shares the first slot's socket: removing it
            # later (SIGTTOU) then closes no socket, and so resets no queued connection.
            return self.slots[0].sockets
        if self.reuse_port:
            config = self.config
            if self.slots:  # the same address as the first slot (--port 0 picked one)
                port = self.slots[0].sockets[0].getsockname()[1]
                config = dataclasses.replace(config, port=port)
            return bind_sockets(config, reuse_port=True)
        if self.shared is None:
            self.shared = bind_sockets(self.config)
        return self.shared

    def _remove_slot(self) -> None:
        slot = self.slots.pop()
        for worker in slot.workers:
            self._retire(worker)
        self.closing.append(slot)  # its sockets close once its workers are gone

    def _spawn(self, slot: Slot) -> Worker:
        from levante.server.worker import worker_main

        # No locks on these: a worker killed while holding one must not hang us.
        heartbeat: Synchronized[float] = _SPAWN.Value("d", time.monotonic(), lock=False)
        recycle: Synchronized[int] = _SPAWN.Value("b", 0, lock=False)
        ready = _SPAWN.Event()
        process = _SPAWN.Process(
            target=worker_main,
            args=(self.config, slot.sockets, heartbeat, ready, recycle),
            name=f"levante-worker-{self.slots.index(slot)}",
        )
        process.start()
        return Worker(process, heartbeat, ready, recycle)

    def _retire(self, worker: Worker) -> None:
        """Ask a worker to stop gracefully (it finishes what it has)."""
        worker.retiring = True
        if worker.process.pid is not None and worker.process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signal.SIGTERM)

    def _serving(self, slot: Slot) -> bool:
        return any(not w.retiring for w in slot.workers)

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in list(self.closing):
            for worker in [w for w in slot.workers if not w.process.is_alive()]:
                worker.process.join()
                slot.workers.remove(worker)
            if not slot.workers:
                self.closing.remove(slot)
                for sock in slot.sockets:
                    if not any(sock is other for s in self.slots for other in s.sockets):
                        sock.close()
        for slot in self.slots:
            for worker in [w for w in slot.workers if not w.process.is_alive()]:
                worker.process.join()
                slot.workers.remove(worker)
                if worker.process.pid is not None:
                    worker_exited(worker.process.pid)
                if not worker.retiring and not self.stopping:
                    self._note_death(slot, worker, now)
            if not self.stopping and not self._serving(slot) and now >= slot.restart_at:
                slot.workers.append(self._spawn(slot))

    def _note_death(self, slot: Slot, worker: Worker, now: float) -> None:
        code = worker.process.exitcode
        if not worker.ready.is_set() and not self.ever_ready and not self.config.reload:
            # The app has never started under this supervisor: retrying would only
            # hold the socket with nobody serving it. Stop, as gunicorn does.
            logger.error(
                "Worker [%s] failed to start (%s): stopping", worker.process.pid, _status(code)
            )
            self.exit_status = 3
            self.stopping = True
            return
        logger.warning(
            "Worker [%s] exited with %s; starting another", worker.process.pid, _status(code)
        )
        if not worker.ready.is_set():
            slot.backoff = min(MAX_BACKOFF, max(0.5, slot.backoff * 2))
            slot.restart_at = now + slot.backoff
        else:
            slot.backoff = 0.0
            slot.restart_at = now

    def _check_health(self) -> None:
        limit = self.config.timeout_worker_healthcheck
        now = time.monotonic()
        for slot in self.slots:
            for worker in slot.workers:
                if worker.ready.is_set():
                    self.ever_ready = True
                if worker.retiring or worker.heartbeat.value == math.inf:
                    continue  # stopping (it said so by an infinite heartbeat): no ticks now
                # Until it listens, a worker has START_TIMEOUT (its app may import slowly).
                allowed = limit if worker.ready.is_set() else START_TIMEOUT
                silent = now - worker.heartbeat.value
                if silent > allowed and worker.process.pid is not None:
                    logger.error(
                        "Worker [%d] missed its heartbeat for %.1fs: killing it",
                        worker.process.pid,
                        silent,
                    )
                    worker.retiring = True  # replaced below, without the young-death pause
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.process.pid, signal.SIGKILL)
                    slot.restart_at = now

    def _check_recycling(self) -> None:
        """Workers that asked to be replaced get a successor first, then stop."""
        for slot in self.slots:
            asking = [w for w in slot.workers if w.recycle.value and not w.retiring]
            if asking and not self.stopping:
                self._replace(slot, asking)

    def _rolling_restart(self) -> None:
        for slot in list(self.slots):
            if self.stopping:
                return
            self._replace(slot, [w for w in slot.workers if not w.retiring])

    def _replace(self, slot: Slot, old: list[Worker]) -> None:
        """Start a new worker in `slot`; once it listens, retire `old`."""
        new = self._spawn(slot)
        slot.workers.append(new)
        if not self._wait_ready(new):
            if not self.stopping:
                logger.error("New worker [%s] did not start; keeping the old one", new.process.pid)
            self._retire(new)
            return
        for worker in old:
            self._retire(worker)

    def _wait_ready(self, worker: Worker) -> bool:
        """Until `worker` listens (True), dies, or a stop signal comes (False)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if worker.ready.wait(0.1):
                return True
            if not worker.process.is_alive():
                return False
            if any(sig in (signal.SIGINT, signal.SIGTERM) for sig in self.pending):
                self.stopping = True
                return False
        return False

    # -- stopping ---------------------------------------------------------------------

    def _stop_all(self) -> None:
        workers = [w for s in [*self.slots, *self.closing] for w in s.workers]
        for worker in workers:
            self._retire(worker)
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown + 10.0
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.warning("Worker [%s] did not stop: killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join()

    def _close_sockets(self) -> None:
        for slot in [*self.slots, *self.closing]:
            for sock in slot.sockets:
                sock.close()
        if self.config.uds is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.config.uds)
        self._wake_r.close()
        self._wake_w.close()

    def _announce(self) -> None:
        scheme = "https" if self.config.ssl_certfile else "http"
        for sock in self.slots[0].sockets:
            logger.info("Levante running on %s (Press CTRL+C to quit)", describe(sock, scheme))


def _status(code: int | None) -> str:
    if code is None:
        return "no status"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
