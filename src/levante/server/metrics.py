"""``--metrics-port``: Prometheus metrics on a port of their own (prometheus-client).

- ``levante_requests_total{method,status}``: responses sent;
- ``levante_request_duration_seconds{method}``: time from the request head to the
  end of the response (a histogram);
- ``levante_connections_open``: HTTP connections open now;
- ``levante_websockets_open``: WebSocket connections open now.

With a supervisor, each worker writes its figures to files in a folder of the
supervisor's (prometheus-client's multiprocess mode) and the supervisor serves
their sum, so one scrape sees every worker.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from levante.server.errors import ConfigError

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets in seconds: 1 ms to 10 s, closer together where APIs answer.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "--metrics-port needs prometheus-client: pip install 'levante[metrics]'"
        ) from None
    return prometheus_client


class Metrics:
    """The server's metrics; the protocol code calls these (cheap) methods."""

    def __init__(self) -> None:
        prometheus = _client()
        multiprocess = MULTIPROCESS_ENV in os.environ
        gauge_mode = {"multiprocess_mode": "livesum"} if multiprocess else {}
        self.requests = prometheus.Counter(
            "levante_requests_total", "Responses sent", ["method", "status"]
        )
        self.duration = prometheus.Histogram(
            "levante_request_duration_seconds",
            "Request head to end of response",
            ["method"],
            buckets=BUCKETS,
        )
        self.connections = prometheus.Gauge(
            "levante_connections_open", "HTTP connections open", **gauge_mode
        )
        self.websockets = prometheus.Gauge(
            "levante_websockets_open", "WebSocket connections open", **gauge_mode
        )

    def response(self, method: str, status: int, seconds: float) -> None:
        self.requests.labels(method, str(status)).inc()
        self.duration.labels(method).observe(seconds)


def serve_metrics(host: str, port: int) -> Any:
    """Serve the metrics of this process (or, in multiprocess mode, of all workers)
    from a thread; returns what `stop_metrics` takes."""
    prometheus = _client()
    if MULTIPROCESS_ENV in os.environ:
        from prometheus_client import multiprocess

        registry = prometheus.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = prometheus.REGISTRY
    try:
        return prometheus.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: could not bind to {host}: {exc}") from exc


def stop_metrics(handle: Any) -> None:
    if isinstance(handle, tuple) and handle:
        server = handle[0]
        server.shutdown()
        server.server_close()


def multiprocess_dir() -> str:
    """A fresh folder for the workers' metric files (the supervisor's, for its life)."""
    folder = tempfile.mkdtemp(prefix="levante-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder  # workers are spawned with this environment
    return folder


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges from the sum (its counters stay counted)."""
    if MULTIPROCESS_ENV in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
