"""Every server setting, once: the CLI, `levante.run()` and ``LEVANTE_*`` come from here.

Each field of `Config` carries its help text; `levante.server.cli` builds the
argument parser from the fields, and `Config.resolve` merges explicit values,
environment variables (``LEVANTE_<FIELD>``) and defaults, in that order.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from levante.server import limits
from levante.server.errors import ConfigError

ENV_PREFIX = "LEVANTE_"

LOG_LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}


def option(default: Any, help: str, *, metavar: str | None = None) -> Any:
    """A `Config` field with the help text its CLI flag shows."""
    return field(default=default, metadata={"help": help, "metavar": metavar})


@dataclass(frozen=True)
class Config:
    """Server settings. Build with `Config.resolve` to read ``LEVANTE_*`` too."""

    app: Any = option(None, "The ASGI app, as module:attribute (e.g. main:app).")
    host: str = option("127.0.0.1", "Bind socket to this host.")
    port: int = option(8000, "Bind socket to this port (0 picks a free one).")
    uds: str | None = option(None, "Bind to this Unix domain socket instead of host and port.")
    uds_permissions: str = option(
        "666",
        "Octal permissions of the --uds socket file (e.g. 660 for one group).",
        metavar="MODE",
    )
    fd: int | None = option(
        None, "Serve on this inherited socket file descriptor (systemd socket activation)."
    )
    backlog: int = option(limits.BACKLOG, "Maximum number of connections waiting to be accepted.")
    ssl_keyfile: str | None = option(None, "TLS private key file (PEM).")
    ssl_certfile: str | None = option(
        None, "TLS certificate file (PEM, chain after the certificate)."
    )
    ssl_keyfile_password: str | None = option(None, "Password of an encrypted --ssl-keyfile.")
    ssl_cert_reqs: int = option(
        0, "Client certificates: 0 not asked for, 1 optional, 2 required (needs --ssl-ca-certs)."
    )
    ssl_ca_certs: str | None = option(None, "CA certificates to check client certificates against.")
    ssl_ciphers: str | None = option(
        None, "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults)."
    )
    workers: int | None = option(
        None,
        "Run a supervisor with this many worker processes (even 1: it restarts a worker "
        "that dies); without it, one process serves.",
    )
    limit_max_requests: int | None = option(
        None, "A worker stops gracefully after this many requests and is replaced."
    )
    limit_max_requests_jitter: int = option(
        0, "Add up to this many to each worker's --limit-max-requests (not all stop at once)."
    )
    timeout_worker_healthcheck: float = option(
        limits.WORKER_HEALTHCHECK_TIMEOUT,
        "Kill and replace a worker whose event loop has not beaten for this many seconds.",
    )
    reload: bool = option(
        False, "Restart when source files change (development; needs levante[reload])."
    )
    reload_dir: str | None = option(
        None,
        "Folders to watch with --reload, comma-separated (default: the current one).",
        metavar="DIRS",
    )
    reload_include: str = option(
        "*.py",
        "With --reload: globs of files whose changes count, comma-separated.",
        metavar="GLOBS",
    )
    reload_exclude: str = option(
        ".*,~*", "With --reload: globs of files to ignore, comma-separated.", metavar="GLOBS"
    )
    interface: Literal["auto", "asgi3", "wsgi"] = option(
        "auto",
        "What the app speaks: asgi3, wsgi (Flask, classic Django; through a2wsgi), or auto "
        "(wsgi for a callable taking (environ, start_response)).",
    )
    wsgi_threads: int = option(
        10, "Threads running a WSGI app's calls (requests beyond wait for one)."
    )
    loop: Literal["auto", "asyncio", "uvloop"] = option(
        "auto", "Event loop: uvloop where installed (auto), or asyncio."
    )
    lifespan: Literal["auto", "on", "off"] = option(
        "auto", "Lifespan events: on, off, or auto (on unless the app does not support them)."
    )
    app_dir: str = option(".", "Look for the app module in this directory (put first on sys.path).")
    factory: bool = option(
        False, "Treat APP as a factory: call it with no arguments to get the app."
    )
    env_file: str | None = option(None, "Load environment variables from this .env file.")
    root_path: str = option(
        "", "The path prefix the app is mounted under behind a proxy (ASGI root_path)."
    )
    proxy_headers: bool = option(
        True,
        "Take the client address, scheme and host from Forwarded / X-Forwarded-For, "
        "-Proto and -Host, when the peer is in --forwarded-allow-ips.",
    )
    forwarded_allow_ips: str = option(
        "127.0.0.1",
        "Peers trusted to send forwarding headers: addresses and networks, comma-separated; "
        "'unix' for Unix-socket peers, '*' for all.",
        metavar="IPS",
    )
    forwarded_headers: str = option(
        "x-forwarded-for,x-forwarded-proto",
        "The forwarding headers your proxy sets (or removes), comma-separated, from: "
        "forwarded, x-forwarded-for, x-forwarded-proto, x-forwarded-host. One it passes "
        "through from the client would let the client choose the value.",
        metavar="NAMES",
    )
    proxy_protocol: bool = option(
        False,
        "Expect a PROXY protocol header (HAProxy, v1 or v2) first on every connection; "
        "connections from peers not in --proxy-protocol-allow-ips are refused.",
    )
    proxy_protocol_allow_ips: str = option(
        "127.0.0.1", "Peers allowed to send the PROXY protocol header.", metavar="IPS"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = option(
        "info", "Log level."
    )
    log_config: str | None = option(
        None, "Logging configuration file: .json or .yaml (dictConfig), or .ini (fileConfig)."
    )
    access_log: bool = option(True, "Log one line per request.")
    access_log_format: str | None = option(
        None,
        "Access log line with Apache-style atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(b)s %(M)sms' "
        "(see levante.server.accesslog; default: uvicorn's line).",
        metavar="FORMAT",
    )
    log_format: Literal["text", "json"] = option(
        "text", "Log lines as text, or as one JSON object per line (access lines with fields)."
    )
    metrics_port: int | None = option(
        None, "Serve Prometheus metrics on this port (needs levante[metrics])."
    )
    metrics_host: str = option("127.0.0.1", "Bind the --metrics-port listener to this host.")
    server_header: bool = option(True, "Send a 'server: levante' header.")
    date_header: bool = option(True, "Send a 'date' header (refreshed once a second).")
    timeout_keep_alive: float = option(
        limits.KEEP_ALIVE_TIMEOUT, "Close idle keep-alive connections after this many seconds."
    )
    timeout_request_header: float = option(
        limits.REQUEST_HEADER_TIMEOUT,
        "Answer 408 and close if a request head takes longer than this many seconds.",
    )
    timeout_graceful_shutdown: float = option(
        limits.GRACEFUL_SHUTDOWN_TIMEOUT,
        "On shutdown, wait this many seconds for requests in flight before closing them.",
    )
    limit_concurrency: int | None = option(
        None, "Answer 503 once this many connections or requests are open."
    )
    limit_request_line: int = option(
        limits.MAX_REQUEST_LINE, "Longest request target in bytes (longer: 414)."
    )
    limit_request_fields: int = option(
        limits.MAX_REQUEST_FIELDS, "Most header fields in a request (more: 431)."
    )
    limit_request_field_size: int = option(
        limits.MAX_REQUEST_FIELD_SIZE, "Longest header field, name and value, in bytes (431)."
    )
    limit_request_head: int = option(
        limits.MAX_REQUEST_HEAD, "Largest request head (line and headers) in bytes (431)."
    )
    limit_request_body: int = option(
        limits.MAX_REQUEST_BODY, "Largest request body in bytes (larger: 413)."
    )
    request_body_buffer: int = option(
        limits.REQUEST_BUFFER,
        "Request body bytes buffered for the app before reading from the client pauses.",
    )
    gc_threshold: int = option(
        limits.GC_THRESHOLD,
        "Raise the garbage collector's young-generation threshold to this while serving "
        "(never lowered; 0 leaves the interpreter's setting).",
        metavar="N",
    )
    http: Literal["auto", "h1", "h2"] = option(
        "auto",
        "HTTP versions: auto (HTTP/1.1; HTTP/2 by ALPN over TLS, and in cleartext by prior "
        "knowledge or Upgrade: h2c), h1 (HTTP/1.1 only), h2 (HTTP/2 only).",
    )
    h2_max_concurrent_streams: int = option(
        limits.H2_MAX_CONCURRENT_STREAMS,
        "HTTP/2 streams a client may have open on one connection (more: REFUSED_STREAM).",
    )
    h2_max_reset_streams: int = option(
        limits.H2_MAX_RESET_STREAMS,
        f"HTTP/2 streams a client may cancel per {limits.H2_RESET_WINDOW:g} s before its "
        "connection is closed (rapid reset, CVE-2023-44487).",
    )
    h2_max_control_frames: int = option(
        limits.H2_MAX_CONTROL_FRAMES,
        f"HTTP/2 SETTINGS, PING, PRIORITY and empty DATA frames a client may send per "
        f"{limits.H2_CONTROL_WINDOW:g} s before its connection is closed (floods).",
    )

    ws: Literal["auto", "none"] = option(
        "auto", "WebSocket support: auto (on), or none (Upgrade requests are served as HTTP)."
    )
    ws_max_size: int = option(
        limits.WS_MAX_SIZE, "Largest WebSocket message in bytes (larger: close 1009)."
    )
    ws_max_queue: int = option(
        limits.WS_MAX_QUEUE, "WebSocket messages buffered for the app before reading pauses."
    )
    ws_ping_interval: float | None = option(
        limits.WS_PING_INTERVAL, "Seconds between keep-alive pings (none: no pings)."
    )
    ws_ping_timeout: float | None = option(
        limits.WS_PING_TIMEOUT, "Drop a WebSocket peer silent this long after a ping is due."
    )
    ws_per_message_deflate: bool = option(True, "Offer permessage-deflate compression (RFC 7692).")

    def __post_init__(self) -> None:
        hints = _hints()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = _choices(hints[f.name])
            if choices and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, not {value!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be from 0 to 65535, not {self.port}")
        for name in _POSITIVE:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, not {value}")
        for name in _NOT_NEGATIVE:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.http == "h2" and self.proxy_protocol:
            raise ConfigError(
                "--proxy-protocol with --http h2 is not supported: use --http auto, which "
                "reads the PROXY header and then HTTP/1.1 or HTTP/2"
            )
        if self.root_path.endswith("/"):
            object.__setattr__(self, "root_path", self.root_path.rstrip("/"))

    @classmethod
    def resolve(
        cls, values: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Explicit `values` first, then ``LEVANTE_<NAME>`` variables, then defaults."""
        values = dict(values or {})
        environ = os.environ if environ is None else environ
        hints = _hints()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name in names - set(values):
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = parse_value(name, hints[name], raw)
        return cls(**values)

    @property
    def log_level_number(self) -> int:
        return LOG_LEVELS[self.log_level]


#: Settings that must be above zero (when set), and those that must not be below it.
_POSITIVE = (
    "backlog",
    "workers",
    "wsgi_threads",
    "limit_max_requests",
    "timeout_worker_healthcheck",
    "limit_concurrency",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "limit_request_head",
    "limit_request_body",
    "request_body_buffer",
    "h2_max_concurrent_streams",
    "h2_max_reset_streams",
    "h2_max_control_frames",
    "ws_max_size",
    "ws_max_queue",
)
_NOT_NEGATIVE = (
    "gc_threshold",
    "limit_max_requests_jitter",
    "timeout_keep_alive",
    "timeout_request_header",
    "timeout_graceful_shutdown",
)


def fields() -> list[tuple[dataclasses.Field[Any], Any]]:
    """The settings with their resolved types, in declaration order."""
    hints = _hints()
    return [(f, hints[f.name]) for f in dataclasses.fields(Config)]


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def _choices(hint: Any) -> tuple[str, ...]:
    if typing.get_origin(hint) is Literal:
        return tuple(typing.get_args(hint))
    return ()


def base_type(hint: Any) -> Any:
    """``int | None`` -> int; Literal -> str; others unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return base_type(args[0]) if len(args) == 1 else str
    if typing.get_origin(hint) is Literal:
        return str
    return hint


def optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint)
    )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(name: str, hint: Any, raw: str) -> Any:
    """Turn the text of an environment variable into the field's type."""
    kind = base_type(hint)
    if optional(hint) and raw.strip().lower() in ("", "none"):
        return None
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
            return low in _TRUE
        if kind in (int, float):
            return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from None
    return raw
