"""--metrics-port: Prometheus metrics of one process, and of every worker summed by
the supervisor."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from websockets.sync.client import connect

from tests.apps.proc import Child, free_ports

DEADLINE = 30.0


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + labels + r"\}" if labels else "") + r" ([0-9.e+]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_one_process_counts_requests_latency_connections_and_websockets(
    start: Callable[..., Child],
) -> None:
    port, metrics_port = free_ports(2)
    child = start(
        "tests.apps.autobahn_echo:app",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--no-access-log",
    )
    child.wait_line("Metrics on")
    with httpx.Client() as client:
        for _ in range(3):
            client.get(f"http://127.0.0.1:{port}/")
        text = scrape(metrics_port)
        assert (
            metric(text, "levante_connections_open") == 1.0
        )  # this client's keep-alive connection
    assert metric(text, "levante_requests_total", 'method="GET",status="404"') == 3.0
    assert metric(text, "levante_request_duration_seconds_count", 'method="GET"') == 3.0
    with connect(f"ws://127.0.0.1:{port}/") as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        assert metric(scrape(metrics_port), "levante_websockets_open") == 1.0
    wait_for(
        lambda: metric(scrape(metrics_port), "levante_websockets_open") == 0.0,
        "the WebSocket to close",
    )


def test_the_supervisor_sums_its_workers(start: Callable[..., Child]) -> None:
    port, metrics_port = free_ports(2)
    child = start(
        "tests.apps.pids:app",
        "--workers",
        "2",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--no-access-log",
    )
    child.wait_line("Metrics of all workers")
    wait_for(lambda: _answers(port), "the workers")
    pids = set()
    for _ in range(40):
        pids.add(
            httpx.get(f"http://127.0.0.1:{port}/", headers={"connection": "close"}).json()["pid"]
        )
    text = scrape(metrics_port)
    total = metric(text, "levante_requests_total", 'method="GET",status="200"')
    assert total >= 40  # the readiness probes count too
    assert len(pids) == 2


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.HTTPError:
        return False
    return True
