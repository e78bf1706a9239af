"""Targets: one server process each, started fresh per run, stopped by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BENCH_DIR = Path(__file__).resolve().parent.parent  # targets run here, so `apps.raw:app` imports
BIN = Path(sys.executable).parent  # the venv's bin/, put first on PATH for targets
HOST = "127.0.0.1"

H1, WS, H2 = "h1", "ws", "h2"
ALL_PROTOCOLS = frozenset({H1, WS, H2})


@dataclass(frozen=True)
class Target:
    """A named shell command that starts one server with one worker on ``{host}:{port}``.

    `serves` says which protocols it speaks; a scenario that needs another is skipped
    for it (reported as n/a, not as a failure). `group` is "server" (the raw contract
    app on a server), "framework" (a framework's contract app) or "floor".
    `default` targets run when no --targets is given; `scenarios`, if set, limits
    the target to those.
    """

    name: str
    command: str
    serves: frozenset[str] = ALL_PROTOCOLS
    group: str = "server"
    default: bool = True
    note: str = ""
    scenarios: frozenset[str] | None = None  # None: every scenario of its protocols


_LEVANTE = "python -m levante {app} --host {host} --port {port} --log-level error --no-access-log"
_UV = "uvicorn {app} --host {host} --port {port} --workers 1 --log-level error --no-access-log"
# httptools + uvloop, and the WebSocket implementation `--ws auto` picks (websockets-sansio)
_UV_FAST = _UV + " --http httptools --loop uvloop --ws auto"
_GRANIAN = (
    "granian {app} --interface asgi --host {host} --port {port} --workers 1"
    " --runtime-threads 1 --log-level error --no-access-log"
)
_NO_H2 = frozenset({H1, WS})
_PLAINTEXT = frozenset({"plaintext", "plaintext-c256"})


def _on(template: str, app: str) -> str:
    return template.replace("{app}", app)


_TARGET_LIST = [
    Target("levante", _on(_LEVANTE, "apps.raw:app"), note="Levante server, raw ASGI app"),
    Target(
        "levante-web",
        _on(_LEVANTE, "apps.levante_web:app"),
        group="framework",
        note="levante.web app (apps/levante_web.py) on the Levante server",
    ),
    Target(
        "levante-typed",
        _on(_LEVANTE, "apps.levante_typed:app"),
        group="framework",
        note="levante.web typed handlers (apps/levante_typed.py) on the Levante server",
    ),
    Target(
        "levante-web-uvicorn",
        _on(_UV_FAST, "apps.levante_web:app"),
        serves=_NO_H2,
        group="framework",
        note="apps/levante_web.py on uvicorn, as the other frameworks",
    ),
    Target("uvicorn", _on(_UV_FAST, "apps.raw:app"), serves=_NO_H2, note="httptools + uvloop"),
    Target("granian", _on(_GRANIAN, "apps.raw:app"), note="ASGI interface"),
    Target(
        "hypercorn",
        "hypercorn apps.raw:app --bind {host}:{port} --workers 1 --log-level error",
        note="asyncio worker",
    ),
    # Daphne speaks HTTP/2 only over TLS.
    Target("daphne", "daphne -b {host} -p {port} -v 0 apps.raw:app", serves=_NO_H2),
    *(
        Target(name, _on(_UV_FAST, f"apps.{name}_app:app"), serves=_NO_H2, group="framework")
        for name in ("starlette", "fastapi", "litestar", "blacksheep")
    ),
    Target(
        "floor",
        "python apps/floor.py --host {host} --port {port}",
        serves=frozenset({H1}),
        group="floor",
        note="bare uvloop + httptools protocol, no ASGI: the limit of this stack",
    ),
    # The floor with what every ASGI server adds, one part at a time (apps/floor.py):
    # where the plaintext figures of a server on this stack can reach at most.
    *(
        Target(
            f"floor-{mode}",
            f"python apps/floor.py --host {{host}} --port {{port}} --mode {mode}",
            serves=frozenset({H1}),
            group="floor",
            note=note,
            scenarios=_PLAINTEXT,
        )
        for mode, note in (
            ("task", "the floor, each answer written by its own asyncio task"),
            (
                "app",
                "floor-task running apps/raw.py with a four-key scope and sends that only write",
            ),
        )
    ),
    # Not in the default run: the pure-Python modules in place of the compiled build, and
    # the shared harness's variants, for a closer look.
    Target(
        "levante-pure",
        "PYTHONPATH=" + str(BENCH_DIR.parent / "src") + " " + _on(_LEVANTE, "apps.raw:app"),
        default=False,
        note="Levante server from the source tree (no compiled modules), raw ASGI app",
    ),
    Target(
        "uvicorn-h11",
        _on(_UV + " --http h11 --loop uvloop --ws auto", "apps.raw:app"),
        serves=_NO_H2,
        default=False,
    ),
    Target(
        "hypercorn-uvloop",
        "hypercorn apps.raw:app --bind {host}:{port} --workers 1 -k uvloop --log-level error",
        default=False,
    ),
    Target(
        "granian-rsgi",
        _on(_GRANIAN, "apps.rsgi:app").replace("--interface asgi", "--interface rsgi"),
        default=False,
        note="Granian's own interface, not ASGI",
    ),
]
TARGETS: dict[str, Target] = {t.name: t for t in _TARGET_LIST}


def added_target(spec: str) -> Target:
    """A target from ``-T NAME=CMD``; CMD must contain ``{port}``."""
    name, sep, command = spec.partition("=")
    if not sep or not name.strip() or "{port}" not in command:
        raise ValueError(f"-T wants NAME=CMD with {{port}} in CMD, got {spec!r}")
    return Target(name.strip(), command.strip(), note="added with -T")


class PortAllocator:
    """Hands out ports from a range, skipping any that cannot be bound right now."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi, self.next = lo, hi, lo

    def take(self) -> int:
        for _ in range(self.hi - self.lo + 1):
            port = self.next
            self.next = self.lo if self.next >= self.hi else self.next + 1
            if port_is_free(port):
                return port
        raise RuntimeError(f"no free port in {self.lo}-{self.hi}")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel says is free now (for tests; runs use a PortAllocator)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One started target. `cpu` pins it (and its children) to that CPU; None leaves it free."""

    target: Target
    port: int
    log_path: Path
    cpu: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def command(self) -> str:
        return self.target.command.format(port=self.port, host=HOST)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def start(self) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        # taskset sets the affinity and execs the shell, so the pid (and group) stay ours and
        # the server's children inherit the CPU; no preexec_fn, which is unsafe with threads.
        pin = [] if self.cpu is None else ["taskset", "-c", str(self.cpu)]
        # Kept open for the server's life and closed in stop().
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self._log.write(f"\n=== {self.target.name} port {self.port}: {self.command}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [*pin, "bash", "-c", self.command],
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until the port answers an HTTP request (any status); returns the start-up time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                rc = self.proc.returncode if self.proc else None
                raise RuntimeError(f"server exited with {rc} (see {self.log_path})")
            if _answers_http(self.port):
                return time.monotonic() - self.started_at
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s (see {self.log_path})")

    def stop(self) -> None:
        """SIGTERM the process group we started, then SIGKILL what is left."""
        if self.proc is not None:
            pgid = self.proc.pid  # start_new_session: the group id is the pid we started
            for sig, wait in ((signal.SIGTERM, 8.0), (signal.SIGKILL, 5.0)):
                if self._gone(pgid):
                    break
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and not self._gone(pgid):
                    time.sleep(0.05)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _gone(self, pgid: int) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not _group_alive(pgid)


def _answers_http(port: int) -> bool:
    request = f"GET /plaintext HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(request)
            s.settimeout(2)
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
