"""Shared fixtures: a real Levante server on a loopback port, and raw-socket helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop

from levante.server import Config, Server

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def pytest_report_header() -> str:
    import levante.server

    build = "compiled (mypyc)" if levante.server.compiled() else "pure Python"
    return f"levante: {build}, from {Path(levante.server.__file__ or '').parent}"


@dataclass
class Running:
    """A server running in a background thread with its own uvloop event loop."""

    server: Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    port: int
    errors: list[BaseException] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` in the server's loop thread and return its result."""
        done = threading.Event()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        if not done.wait(10):
            raise TimeoutError("server loop did not answer")
        return box[0]

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (as SIGTERM does), waiting for the thread to end."""
        self.loop.call_soon_threadsafe(self.server.should_exit.set)
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError("server did not stop")


def start_server(app: Any, **settings: Any) -> Running:
    """Start `app` on 127.0.0.1 with a free port; `settings` are Config fields."""
    settings.setdefault("port", 0)
    settings.setdefault("access_log", False)
    settings.setdefault("lifespan", "auto")
    config = Config.resolve(settings, environ={})
    loop = uvloop.new_event_loop()
    server = Server(config, app)
    started = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def serve() -> None:
            task = asyncio.ensure_future(server.serve())
            waiter = asyncio.ensure_future(server.started.wait())
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                started.set()
            await task

        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            errors.append(exc)  # recorded before `started` is set, so start() sees it
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    if not started.wait(10):
        raise TimeoutError("server did not start")
    if errors:
        raise errors[0]
    name = server.sockets[0].getsockname()
    port = name[1] if isinstance(name, tuple) else 0  # a Unix socket has no port
    return Running(server, loop, thread, port, errors)


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """``serve(app, **config)`` starts a server; every one started is stopped afterwards."""
    running: list[Running] = []

    def start(app: Any, **settings: Any) -> Running:
        r = start_server(app, **settings)
        running.append(r)
        return r

    yield start
    for r in running:
        if r.thread.is_alive():
            r.stop()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes (or `timeout` passes with no data)."""
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def read_response(
    sock: socket.socket, timeout: float = 5.0
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Read one response with a Content-Length or chunked body: (status line, headers, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2 :]
            if size == 0:
                break
        return lines[0], headers, body
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return lines[0], headers, rest[:length]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll `predicate` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def levante_cmd(*args: str) -> list[str]:
    """The levante command of this environment, for subprocess tests."""
    return [sys.executable, "-m", "levante", *args]


def spawn(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``levante ARGS`` as a child process with output captured as text."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        levante_cmd(*args),
        cwd=cwd or ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_port(proc: subprocess.Popen[str], timeout: float = 15.0) -> tuple[int, list[str]]:
    """Read the child's log until its 'running on' line; return (port, lines read)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("server exited before listening:\n" + "".join(lines))
        lines.append(line)
        if "Levante running on" in line:
            return int(line.rsplit(":", 1)[1].split()[0]), lines
    raise AssertionError("no 'running on' line:\n" + "".join(lines))


@pytest.fixture
def start() -> Iterator[Callable[..., Any]]:
    """``start(*args, env=...)`` runs ``python -m levante ARGS``; stopped at the end."""
    from tests.apps.proc import Child

    children: list[Child] = []

    def run(*args: str, env: dict[str, str] | None = None) -> Child:
        child = Child(spawn(*args, env=env))
        children.append(child)
        return child

    yield run
    for child in children:
        child.stop()


# -- TLS: a CA and a server certificate made for the tests (trustme) --------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile), "ca": str(cafile)}
