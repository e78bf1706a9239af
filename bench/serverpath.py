"""Drive Levante's HTTP/1.1 and WebSocket protocol code in-process, without sockets.

What is measured is the server's own Python work per request (parse, scope, app
call, response framing) on a uvloop loop, with transports that only count what
is written: the part of the time a profile of the real server can change. The
socket side (epoll, recv, send) is the same for every server and is left out.

    .venv/bin/python bench/serverpath.py                       # plaintext, json, ws-echo
    .venv/bin/python bench/serverpath.py --profile plaintext   # cProfile one case
    PYTHONPATH=$(scripts/compiled) .venv/bin/python bench/serverpath.py   # the compiled build

The app is the benchmark contract's raw app (bench/apps/raw.py) unless --app names
another module of bench/apps (`--app levante_web`: the framework on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import importlib
import os
import pstats
import struct
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "apps"))
sys.path.append(str(HERE.parent / "src"))  # after PYTHONPATH: a compiled build there wins

from levante.server.config import Config  # noqa: E402
from levante.server.protocols.http1 import HTTP1Protocol  # noqa: E402
from levante.server.state import ServerState  # noqa: E402

REQUESTS = {
    "plaintext": b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "json": b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "params": b"GET /items/42?q=hello&limit=5 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
}


class Transport:
    """Counts written bytes; flow-control calls do nothing."""

    def __init__(self) -> None:
        self.written = 0
        self.protocol: Any = None
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.written += len(part)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def _state(loop: asyncio.AbstractEventLoop) -> ServerState:
    config = Config(app="raw:app", access_log=False, log_level="error")
    return ServerState(config, loop)


def _app(name: str) -> Any:
    return importlib.import_module(name).app


async def http_case(name: str, connections: int, rounds: int, app_name: str = "raw") -> float:
    """Requests per second of the server's own work for one request shape."""
    app = _app(app_name)

    loop = asyncio.get_running_loop()
    state = _state(loop)
    protocols = []
    for _ in range(connections):
        protocol = HTTP1Protocol(state, app)
        protocol.connection_made(Transport())  # type: ignore[arg-type]
        protocols.append(protocol)
    request = REQUESTS[name]

    async def run(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            for protocol in protocols:
                protocol.data_received(request)
            # Let every app task run and answer (plain ones finish in one step).
            while state.tasks:  # noqa: ASYNC110 (one loop pass at a time is what is measured)
                await asyncio.sleep(0)
        return time.perf_counter() - start

    await run(50)
    elapsed = await run(rounds)
    return rounds * connections / elapsed


def _ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


async def ws_case(connections: int, rounds: int, app_name: str = "raw") -> float:
    """Echoed messages per second of the server's own work (64-byte text messages)."""
    app = _app(app_name)

    loop = asyncio.get_running_loop()
    state = _state(loop)
    key = base64.b64encode(os.urandom(16))
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    transports = []
    for _ in range(connections):
        transport = Transport()
        protocol = HTTP1Protocol(state, app)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(handshake)
        transports.append(transport)
    for _ in range(20):
        await asyncio.sleep(0)
    if not all(t.protocol is not None for t in transports):
        raise RuntimeError("WebSocket handshakes did not complete")
    frame = _ws_frame(b"x" * 64)

    async def run(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            before = [t.written for t in transports]
            for transport in transports:
                transport.protocol.data_received(frame)
            while any(t.written == b for t, b in zip(transports, before, strict=True)):  # noqa: ASYNC110
                await asyncio.sleep(0)
        return time.perf_counter() - start

    await run(50)
    elapsed = await run(rounds)
    return rounds * connections / elapsed


def measure(case: str, connections: int, rounds: int, app_name: str = "raw") -> float:
    coro = (
        ws_case(connections, rounds, app_name)
        if case == "ws-echo"
        else http_case(case, connections, rounds, app_name)
    )
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="plaintext,json,params,ws-echo")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--profile", metavar="CASE", help="cProfile one case instead")
    parser.add_argument("--app", default="raw", help="module of bench/apps serving the contract")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        measure(args.profile, args.connections, args.rounds, args.app)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    for case in args.cases.split(","):
        best = max(
            measure(case, args.connections, args.rounds, args.app) for _ in range(args.repeat)
        )
        print(f"{case:10s} {best:10.0f} per s  {1e6 / best:6.2f} us each")


if __name__ == "__main__":
    main()
