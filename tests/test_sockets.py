"""Listening sockets: a Unix domain socket with its permissions, an inherited file
descriptor (socket activation), and `::` serving IPv6 and IPv4 at once."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.proc import Child
from tests.conftest import Running, levante_cmd, read_response

APP = "tests.apps.basic:app"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = repr(scope["client"]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_unix_socket_serves_with_its_permissions(
    serve: Callable[..., Running], tmp_path: Path
) -> None:
    path = str(tmp_path / "app.sock")
    serve(hello, uds=path, uds_permissions="660")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
        response = client.get("http://localhost/")
    assert response.status_code == 200
    assert response.text == "None"  # no client address on a Unix socket


def test_a_stale_unix_socket_file_is_replaced(
    serve: Callable[..., Running], tmp_path: Path
) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    serve(hello, uds=path)
    with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
        assert client.get("http://localhost/").status_code == 200


def test_an_inherited_socket_is_served(tmp_path: Path) -> None:
    import subprocess

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        levante_cmd(APP, "--fd", str(fd), "--no-access-log"),
        pass_fds=[fd],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = Child(proc)
    try:
        child.wait_line("Levante running on")
        listener.close()  # the child has its own copy
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert response.status_code == 200
    finally:
        child.stop()


def test_double_colon_serves_ipv6_and_ipv4(serve: Callable[..., Running]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = serve(hello, host="::")
    except Exception as exc:  # an IPv6-less kernel
        pytest.skip(f"cannot bind ::: {exc}")
    for host in ("127.0.0.1", "::1"):
        with socket.create_connection((host, server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body = read_response(sock)
        assert status.startswith(b"HTTP/1.1 200")
        assert body.startswith(b"(")  # a client address, in either family


def test_a_regular_file_at_the_socket_path_is_not_removed(tmp_path: Path) -> None:
    from levante.server import Config
    from levante.server.errors import ConfigError
    from levante.server.sockets import bind_sockets

    path = tmp_path / "not-a-socket"
    path.write_text("data")
    with pytest.raises(ConfigError, match="could not bind to unix socket"):
        bind_sockets(Config.resolve({"uds": str(path)}, environ={}))
    assert path.read_text() == "data"
