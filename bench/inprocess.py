"""Drive ASGI apps in-process, with no server and no sockets, to see what the app costs.

Each request is a fresh scope, a `receive` that hands over an empty body and a
`send` that drops the messages: what is left is the framework's own work.

    .venv/bin/python bench/inprocess.py                      # levante.web vs Starlette, etc.
    .venv/bin/python bench/inprocess.py --profile levante_web --path /json

Apps are imported from bench/apps (bare names) and from bench (`apps.<name>`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_APPS = ["levante_web", "apps.starlette_app", "apps.fastapi_app", "apps.raw"]
DEFAULT_PATHS = ["/plaintext", "/json", "/items/42?q=hello&limit=5"]


def make_scope(target: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def drive(app: Any, target: str, count: int) -> float:
    """Requests per second for `count` sequential requests to `target`."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(make_scope(target), receive, send)  # first request builds route tables
    if sent[0].get("status") != 200:
        raise RuntimeError(f"{target} answered {sent[0]}")
    start = time.perf_counter()
    for _ in range(count):
        await app(make_scope(target), receive, send)
    elapsed = time.perf_counter() - start
    sent.clear()
    return count / elapsed


def load(name: str) -> Any:
    sys.path[:0] = [str(HERE / "apps"), str(HERE)]
    return importlib.import_module(name).app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default=",".join(DEFAULT_APPS))
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS))
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--profile", metavar="APP", help="cProfile one app on --path instead")
    parser.add_argument("--path", default="/json")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.profile:
        app = load(args.profile)
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(drive(app, args.path, args.count))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    for path in args.paths.split(","):
        for name in args.apps.split(","):
            rate = asyncio.run(drive(load(name), path, args.count))
            print(f"{path:32} {name:24} {rate:>10,.0f} req/s")


if __name__ == "__main__":
    main()
