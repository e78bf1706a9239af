"""The access log: one line per response.

By default the uvicorn line (``127.0.0.1:5000 - "GET / HTTP/1.1" 200 1.2ms``).
``--access-log-format`` takes gunicorn's Apache-style atoms::

    h  client address          l  '-'                 u  user ('-')
    t  [time]                  r  request line        m  method
    U  path                    q  query string        H  protocol
    s  status                  B  body bytes sent     b  same, '-' for 0
    f  Referer                 a  User-Agent          T  seconds (int)
    D  microseconds            M  milliseconds        L  seconds (decimal)
    p  process id              {name}i  a request header   {name}o  a response header

e.g. ``'%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'`` (the Apache
"combined" format). With ``--log-format json`` each line carries the atoms as
fields too.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

access_logger = logging.getLogger("levante.access")


class Atoms(dict[str, Any]):
    """The atoms of one request; ``{name}i`` and ``{name}o`` look headers up."""

    def __init__(self, values: dict[str, Any], request: Any, response: Any) -> None:
        super().__init__(values)
        self.request_headers = request
        self.response_headers = response

    def __missing__(self, key: str) -> str:
        if key.startswith("{") and key[-2:] in ("}i", "}o"):
            name = key[1:-2].lower().encode("latin-1")
            headers = self.request_headers if key.endswith("i") else self.response_headers
            for header, value in headers:
                if header.lower() == name:
                    return str(value.decode("latin-1"))
        return "-"


def atoms(
    scope: dict[str, Any],
    status: int,
    sent: int,
    response_headers: list[tuple[bytes, bytes]],
    seconds: float,
) -> Atoms:
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("raw_path", b"").decode("latin-1")
    method = scope.get("method", "GET")
    protocol = f"HTTP/{scope.get('http_version', '1.1')}"
    headers = scope.get("headers", [])
    values = {
        "h": client[0] if client else "-",
        "l": "-",
        "u": "-",
        "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "r": f"{method} {path}{'?' + query if query else ''} {protocol}",
        "m": method,
        "U": path,
        "q": query,
        "H": protocol,
        "s": status,
        "B": sent,
        "b": str(sent) if sent else "-",
        "T": int(seconds),
        "D": int(seconds * 1_000_000),
        "M": int(seconds * 1000),
        "L": f"{seconds:.6f}",
        "p": f"<{os.getpid()}>",
    }
    found = Atoms(values, headers, response_headers)
    found["f"] = found["{referer}i"]
    found["a"] = found["{user-agent}i"]
    return found


class AccessLog:
    """Writes the line for a response in the configured format."""

    def __init__(self, fmt: str | None, json_fields: bool) -> None:
        self.fmt = fmt
        self.json_fields = json_fields
        if fmt is not None:
            check_format(fmt)

    def log(
        self,
        scope: dict[str, Any],
        status: int,
        sent: int,
        response_headers: list[tuple[bytes, bytes]],
        seconds: float,
    ) -> None:
        if self.fmt is None and not self.json_fields:
            self._default(scope, status, seconds)
            return
        found = atoms(scope, status, sent, response_headers, seconds)
        extra = {"fields": _fields(found)} if self.json_fields else None
        if self.fmt is None:
            access_logger.info(
                '%s - "%s" %d %.1fms', found["h"], found["r"], status, seconds * 1000, extra=extra
            )
        else:
            access_logger.info(self.fmt % found, extra=extra)

    def _default(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        query = scope["query_string"]
        target = scope["raw_path"] + (b"?" + query if query else b"")
        client = scope.get("client")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %.1fms',
            f"{client[0]}:{client[1]}" if client else "-",
            scope.get("method", "GET"),
            target.decode("latin-1"),
            scope["http_version"],
            status,
            seconds * 1000.0,
        )


def check_format(fmt: str) -> None:
    """Refuse a format that cannot be filled in (at start-up, not on every request)."""
    from levante.server.errors import ConfigError

    sample = {
        "client": ("127.0.0.1", 1),
        "method": "GET",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
    }
    try:
        fmt % atoms(sample, 200, 0, [], 0.0)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"--access-log-format {fmt!r}: {exc} (atoms are written %(h)s; a literal % is %%)"
        ) from None


def _fields(found: Atoms) -> dict[str, Any]:
    return {
        "client": found["h"],
        "method": found["m"],
        "path": found["U"],
        "query": found["q"],
        "protocol": found["H"],
        "status": found["s"],
        "bytes": found["B"],
        "duration_ms": round(found["D"] / 1000, 3),
        "referer": found["f"],
        "user_agent": found["a"],
    }
