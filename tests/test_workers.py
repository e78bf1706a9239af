"""`--workers`: real supervisor and worker processes on loopback. Every worker
serves; a killed worker is replaced; SIGHUP restarts them all and
--limit-max-requests recycles them under load without a failed request; SIGTERM
lets requests in flight finish; SIGTTIN/SIGTTOU change the count; a worker whose
event loop stops is replaced."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.proc import Child, free_port

APP = "tests.apps.pids:app"
#: Bounds on waits (seconds) and on requests: deadlines against hangs, not timings.
DEADLINE = 30.0


def get(port: int, path: str = "/", timeout: float = 10.0) -> int:
    """One request on a fresh connection; the pid that answered (raises on failure)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise AssertionError(f"{path}: {response.status} {body!r}")
        import json

        pid: int = json.loads(body)["pid"]
        return pid
    finally:
        conn.close()


def pids_seen(port: int, want: int, tries: int = 400) -> set[int]:
    """Distinct pids answering, asking until `want` of them answered (or `tries` ran out)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(get(port))
        if len(seen) >= want:
            break
    return seen


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Load:
    """Requests, one after another on fresh connections, from a thread until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.done = 0
        self.failures: list[str] = []
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pids.add(get(self.port))
                self.done += 1
            except Exception as exc:  # every failure is recorded, not raised in the thread
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


@pytest.fixture
def supervisor(start: Callable[..., Child]) -> Iterator[Callable[..., tuple[Child, int]]]:
    def run(*args: str, env: dict[str, str] | None = None) -> tuple[Child, int]:
        port = free_port()
        child = start(APP, "--port", str(port), "--no-access-log", *args, env=env)
        child.wait_line("Started supervisor process")
        wait_until(lambda: _answers(port), "the workers to listen")
        return child, port

    yield run


def _answers(port: int) -> bool:
    try:
        get(port, timeout=2)
    except OSError:
        return False
    return True


def test_every_worker_serves(supervisor: Callable[..., tuple[Child, int]]) -> None:
    _, port = supervisor("--workers", "3")
    assert len(pids_seen(port, 3)) == 3


def test_a_killed_worker_is_replaced_and_later_requests_succeed(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor("--workers", "2")
    before = pids_seen(port, 2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    child.wait_line(f"Worker [{victim}] exited with signal SIGKILL")
    wait_until(lambda: len(pids_seen(port, 2, tries=50) - {victim}) == 2, "a replacement worker")
    answers = [get(port) for _ in range(100)]  # raises on any failure
    assert victim not in answers


def test_sighup_restarts_every_worker_under_load_without_a_failed_request(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor("--workers", "2")
    old = pids_seen(port, 2)
    with Load(port) as load:
        wait_until(lambda: load.done > 20, "load to start")
        child.popen.send_signal(signal.SIGHUP)
        for pid in old:  # each old worker hands over, then finishes what it has
            child.wait_line(f"Finished server process [{pid}]", DEADLINE)
        settled = load.done
        wait_until(lambda: load.done > settled + 50, "more requests after the restart")
    assert load.failures == []
    assert len(load.pids - old) == 2
    assert not (pids_seen(port, 2) & old)


def test_limit_max_requests_recycles_workers_under_load_without_a_failed_request(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor(
        "--workers", "2", "--limit-max-requests", "40", "--limit-max-requests-jitter", "10"
    )
    with Load(port) as load:
        wait_until(lambda: len(load.pids) >= 4 and load.done > 200, "workers to be recycled")
    assert load.failures == []
    assert "asking to be replaced" in child.output


def test_sigterm_lets_requests_in_flight_finish(
    supervisor: Callable[..., tuple[Child, int]], tmp_path: Path
) -> None:
    child, port = supervisor("--workers", "2", env={"LEVANTE_TEST_MARKS": str(tmp_path)})
    results: list[Any] = []

    def slow() -> None:
        try:
            results.append(get(port, "/slow?seconds=2", timeout=DEADLINE))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=slow) for _ in range(6)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(list(tmp_path.iterdir())) == 6, "six requests in flight")
    child.popen.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(DEADLINE)
    assert len(results) == 6 and all(isinstance(r, int) for r in results), results
    assert child.finish(DEADLINE) == 0


def test_sigttin_and_sigttou_add_and_remove_a_worker(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor("--workers", "1")
    first = pids_seen(port, 1)
    child.popen.send_signal(signal.SIGTTIN)
    child.wait_line("Received SIGTTIN: 2 workers")
    wait_until(lambda: len(pids_seen(port, 2, tries=100)) == 2, "a second worker")
    both = pids_seen(port, 2)
    child.popen.send_signal(signal.SIGTTOU)
    child.wait_line("Received SIGTTOU: 1 workers")
    # The removed worker stops gracefully: it may answer a request or two until it has.
    (removed,) = both - first
    child.wait_line(f"Finished server process [{removed}]")
    remaining = pids_seen(port, 2, tries=100)
    assert remaining == first


def test_a_worker_whose_event_loop_is_stuck_is_replaced(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor("--workers", "1", "--timeout-worker-healthcheck", "2")
    stuck = get(port)
    blocker = threading.Thread(
        target=lambda: _ignore(lambda: get(port, "/block?seconds=60", timeout=DEADLINE))
    )
    blocker.start()
    child.wait_line(f"Worker [{stuck}] missed its heartbeat")
    wait_until(lambda: _answers(port), "the replacement worker")
    assert get(port) != stuck
    blocker.join(DEADLINE)


def _ignore(call: Callable[[], Any]) -> Any:
    with contextlib.suppress(Exception):  # a request that dies with its worker
        return call()
    return None


def test_workers_stop_when_the_supervisor_is_killed(
    supervisor: Callable[..., tuple[Child, int]],
) -> None:
    child, port = supervisor("--workers", "2")
    workers = pids_seen(port, 2)
    child.popen.kill()
    child.popen.wait(DEADLINE)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(lambda: all(gone(pid) for pid in workers), "the orphaned workers to stop")


def test_an_app_that_never_starts_stops_the_supervisor_with_status_3(
    start: Callable[..., Child],
) -> None:
    child = start("tests.apps.broken_import:app", "--workers", "2", "--port", str(free_port()))
    assert child.finish(DEADLINE) == 3
    assert "failed to start" in child.output


def test_a_recycled_worker_is_replaced_before_it_stops(
    supervisor: Callable[..., tuple[Child, int]], tmp_path: Path
) -> None:
    child, port = supervisor(
        "--workers",
        "1",
        "--limit-max-requests",
        "5",
        "--timeout-graceful-shutdown",
        "2",
        env={"LEVANTE_TEST_MARKS": str(tmp_path)},
    )
    first = get(port)
    answered: list[Any] = []
    # A request in flight on the old worker keeps it serving while it is replaced.
    slow = threading.Thread(
        target=lambda: answered.append(
            _ignore(lambda: get(port, "/slow?seconds=60", timeout=DEADLINE))
        )
    )
    slow.start()
    wait_until(lambda: any(tmp_path.iterdir()), "the slow request to be in flight")
    for _ in range(5):
        assert get(port) == first
    child.wait_line("asking to be replaced")
    wait_until(lambda: get(port) != first, "the successor to answer")
    assert answered == []  # the old worker had not finished when its successor answered
    slow.join(DEADLINE)
