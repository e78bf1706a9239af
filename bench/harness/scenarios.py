"""Scenarios: a request shape, the load that is sent, and what a correct answer is."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.targets import H1, H2, WS, Target

UPLOAD_SIZE = 1024 * 1024
HELLO = b"Hello, World!"

Check = Callable[[int, bytes, dict[str, str]], "str | None"]


@dataclass(frozen=True)
class Scenario:
    """One load shape. `kind`: wrk | h2load | ws | idle-http | idle-ws."""

    name: str
    kind: str
    path: str
    conns: int = 64
    method: str = "GET"
    body_size: int = 0
    streams: int = 1  # h2load -m
    ws_size: int = 64
    check: Check | None = None
    description: str = ""

    @property
    def protocol(self) -> str:
        if self.kind == "h2load":
            return H2
        return WS if self.kind in ("ws", "idle-ws") else H1

    @property
    def metric(self) -> str:
        return METRIC[self.kind]

    @property
    def idle(self) -> bool:
        return self.kind.startswith("idle")


METRIC = {
    "wrk": "rps",
    "h2load": "rps",
    "ws": "msgs_per_s",
    "idle-http": "held_rps",
    "idle-ws": "held_rps",
}


def skip_reason(target: Target, scenario: Scenario, explicit: bool) -> str | None:
    """Why `target` does not run `scenario` (None: it runs).

    A target that does not speak the scenario's protocol is skipped. In the default
    run (targets not named with --targets), the idle scenarios, which measure what a
    *server* holds per connection, leave out the framework targets. A target that
    names its scenarios runs only those.
    """
    if scenario.protocol not in target.serves:
        return {H2: "no HTTP/2", WS: "no WebSocket", H1: "no HTTP/1.1"}[scenario.protocol]
    if scenario.idle and not explicit and target.group == "framework":
        return "framework target (idle scenarios measure servers)"
    if target.scenarios is not None and scenario.name not in target.scenarios:
        return "not one of its scenarios"
    return None


def _check_plaintext(status: int, body: bytes, headers: dict[str, str]) -> str | None:
    if status != 200:
        return f"status {status}"
    if body != HELLO:
        return f"body {body[:40]!r}"
    if not headers.get("content-type", "").startswith("text/plain"):
        return f"content-type {headers.get('content-type')!r}"
    return None


def _check_json(expected: dict[str, Any]) -> Check:
    def check(status: int, body: bytes, headers: dict[str, str]) -> str | None:
        if status != 200:
            return f"status {status}"
        if "json" not in headers.get("content-type", ""):
            return f"content-type {headers.get('content-type')!r}"
        try:
            got = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:60]!r}"
        return None if got == expected else f"JSON {got!r} != {expected!r}"

    return check


def _check_length(n: int) -> Check:
    def check(status: int, body: bytes, headers: dict[str, str]) -> str | None:
        if status != 200:
            return f"status {status}"
        return None if len(body) == n else f"body length {len(body)} != {n}"

    return check


_SCENARIO_LIST = [
    Scenario(
        "plaintext",
        "wrk",
        "/plaintext",
        check=_check_plaintext,
        description="GET /plaintext, 13-byte text/plain, wrk -c64",
    ),
    Scenario(
        "json",
        "wrk",
        "/json",
        check=_check_json({"message": "Hello, World!"}),
        description="GET /json, small JSON object serialised per request, wrk -c64",
    ),
    Scenario(
        "params",
        "wrk",
        "/items/42?q=hello&limit=5",
        check=_check_json({"item_id": 42, "q": "hello", "limit": 5}),
        description="GET /items/42?q=hello&limit=5: path param + 2 query params -> JSON, wrk -c64",
    ),
    Scenario(
        "plaintext-c256",
        "wrk",
        "/plaintext",
        conns=256,
        check=_check_plaintext,
        description="GET /plaintext, wrk -c256",
    ),
    Scenario(
        "bytes64k",
        "wrk",
        "/bytes/64k",
        check=_check_length(65536),
        description="GET /bytes/64k, 65536-byte body, wrk -c64",
    ),
    Scenario(
        "upload1m",
        "wrk",
        "/upload",
        method="POST",
        body_size=UPLOAD_SIZE,
        check=_check_json({"length": UPLOAD_SIZE}),
        description="POST /upload with a 1 MiB body, answered with its length as JSON, wrk -c64",
    ),
    Scenario(
        "ws-echo",
        "ws",
        "/ws",
        conns=64,
        ws_size=64,
        description="WebSocket echo, 64 connections x 1 message in flight, 64-byte text (ws_load)",
    ),
    Scenario(
        "h2-plaintext",
        "h2load",
        "/plaintext",
        conns=32,
        streams=8,
        description="HTTP/2 cleartext (prior knowledge), GET /plaintext, h2load -c32 -m8",
    ),
    Scenario(
        "idle-http",
        "idle-http",
        "/plaintext",
        conns=5000,
        description="5000 keep-alive HTTP/1.1 connections (one request each) held open: "
        "server RSS per connection, then wrk -c64 on new connections while they are held",
    ),
    Scenario(
        "idle-ws",
        "idle-ws",
        "/ws",
        conns=5000,
        description="5000 WebSocket connections held open: server RSS per connection, "
        "then wrk -c64 on /plaintext while they are held",
    ),
]
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _SCENARIO_LIST}
HTTP1_SCENARIOS = ("plaintext", "json", "params", "plaintext-c256", "bytes64k", "upload1m")
