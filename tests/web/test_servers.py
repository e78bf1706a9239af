"""The same `levante.web` app (tests/apps/web_smoke.py) on real ASGI servers.

Each server runs as a child process, started as a user would start it, on a
loopback port; every check goes over the socket with httpx or the websockets
client. The app must behave the same everywhere, except where a server lacks
a protocol feature: daphne has no lifespan, so /state shows the fallback
(nothing set) and no shutdown runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.apps.proc import Child, free_port
from tests.apps.web_smoke import STREAM_CHUNKS
from tests.conftest import ROOT

APP = "tests.apps.web_smoke:app"
TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True)
class ServerKind:
    name: str
    args: tuple[str, ...]  # after `python -m`; {port} is filled in
    lifespan: bool = True  # does the server speak the ASGI lifespan protocol?
    # Does it send the reason of websocket.close (ASGI websocket spec 2.3)?
    close_reason: bool = True

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", *(a.format(port=port) for a in self.args)]


SERVERS = [
    ServerKind("levante", ("levante", APP, "--host", "127.0.0.1", "--port", "{port}")),
    ServerKind(
        "uvicorn",
        ("uvicorn", APP, "--host", "127.0.0.1", "--port", "{port}", "--lifespan", "on"),
    ),
    ServerKind("hypercorn", ("hypercorn", APP, "--bind", "127.0.0.1:{port}")),
    # Daphne 4 implements HTTP and WebSocket but not the lifespan protocol, and
    # its close frame carries only the code (`WebSocketProtocol.serverClose`).
    ServerKind(
        "daphne",
        ("daphne", "-b", "127.0.0.1", "-p", "{port}", APP),
        lifespan=False,
        close_reason=False,
    ),
    ServerKind(
        "granian",
        ("granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}", APP),
    ),
]


@dataclass
class Served:
    kind: ServerKind
    child: Child
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def launch(kind: ServerKind, env: dict[str, str] | None = None) -> Served:
    """Start `kind` serving the smoke app and wait until it answers HTTP."""
    port = free_port()
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    popen = subprocess.Popen(
        kind.command(port),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, for the SIGKILL fallback
    )
    served = Served(kind, Child(popen), port)
    try:
        wait_until_serving(served)
    except BaseException:
        stop(served)
        raise
    return served


def wait_until_serving(served: Served, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if served.child.popen.poll() is not None:
            raise AssertionError(f"{served.kind.name} exited early:\n{served.child.output}")
        try:
            httpx.get(served.url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{served.kind.name} did not answer within {timeout}s:\n{served.child.output}"
                ) from None
            time.sleep(0.05)  # polling a port, with a deadline


def stop(served: Served, timeout: float = 15.0) -> int | None:
    """SIGTERM the server by its pid and wait; SIGKILL its process group if it
    hangs. Returns the exit code of a graceful stop, None if it had to be killed."""
    popen = served.child.popen
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
    try:
        code: int | None = popen.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)  # the group holds only this server's processes
        popen.wait(10)
        code = None
    served.child.stop()
    return code


@pytest.fixture(scope="module", params=SERVERS, ids=lambda kind: kind.name)
def server(request: pytest.FixtureRequest) -> Iterator[Served]:
    served = launch(request.param)
    yield served
    stop(served)


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


# -- HTTP --------------------------------------------------------------------------


def test_root_is_plain_text(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len("Hello from levante.web"))
    assert response.text == "Hello from levante.web"


def test_head_answers_with_the_get_headers_and_no_body(http: httpx.Client) -> None:
    response = http.head("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b""


def test_path_parameter_is_converted_to_int_and_query_is_read(http: httpx.Client) -> None:
    response = http.get("/items/42", params={"q": "ñandú & co"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"item_id": 42, "q": "ñandú & co"}

    assert http.get("/items/7").json() == {"item_id": 7, "q": None}


def test_int_path_parameter_does_not_match_text(http: httpx.Client) -> None:
    assert http.get("/items/forty-two").status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "widget", "tags": ["a", "b"], "price": 2.5, "stock": None},
        # Large enough that servers deliver it in several http.request messages.
        {"blob": "x" * 300_000, "n": list(range(1000))},
    ],
    ids=["small", "300k"],
)
def test_post_echo_returns_the_json_body(http: httpx.Client, payload: dict[str, object]) -> None:
    response = http.post("/echo", json=payload)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == payload


def test_streaming_response_arrives_chunked_and_whole(http: httpx.Client) -> None:
    with http.stream("GET", "/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_bytes())
    assert body == "".join(STREAM_CHUNKS).encode()


def test_lifespan_state_reaches_handlers_or_is_absent_without_lifespan(
    http: httpx.Client, server: Served
) -> None:
    response = http.get("/state")
    assert response.status_code == 200
    if server.kind.lifespan:
        assert response.json() == {"greeting": "hello from the lifespan", "started": True}
    else:
        # No lifespan protocol: the lifespan never ran, so there is no state to
        # read, and reading it is not an error.
        assert response.json() == {"greeting": None, "started": False}


def test_unknown_path_is_404(http: httpx.Client) -> None:
    response = http.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Not Found"


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    response = http.post("/items/1", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.text == "Method Not Allowed"

    response = http.delete("/echo")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"


# -- WebSocket ---------------------------------------------------------------------


def test_websocket_echoes_text_and_json_then_closes_with_its_code(server: Served) -> None:
    with ws_connect(server.ws_url("/ws"), open_timeout=10, close_timeout=10) as ws:
        ws.send("hello, ñandú")
        assert ws.recv(timeout=10) == "hello, ñandú"
        ws.send('{"n": 1, "list": [1, 2, 3]}')
        echoed = ws.recv(timeout=10)
        assert isinstance(echoed, str)
        assert json.loads(echoed) == {"n": 1, "list": [1, 2, 3]}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert ws.close_code == 4000
    assert ws.close_reason == ("done" if server.kind.close_reason else "")


def test_websocket_to_an_unknown_path_is_refused(server: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server.ws_url("/no-such-socket"), open_timeout=10)
    assert refused.value.response.status_code == 403


# -- shutdown ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS, ids=lambda kind: kind.name)
def test_sigterm_stops_the_server_and_runs_lifespan_shutdown(
    kind: ServerKind, tmp_path: Path
) -> None:
    marker = tmp_path / "shutdown"
    served = launch(kind, env={"SMOKE_SHUTDOWN_MARKER": str(marker)})
    try:
        assert httpx.get(served.url + "/", timeout=TIMEOUT).status_code == 200
    finally:
        code = stop(served)
    assert code is not None, f"{kind.name} ignored SIGTERM:\n{served.child.output}"
    if kind.lifespan:
        assert marker.read_text() == "lifespan shutdown ran\n", served.child.output
    else:
        assert not marker.exists()
