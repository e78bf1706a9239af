"""An answer given before the request body was read survives the close (lingering close)."""

from __future__ import annotations

from typing import Any

from tests.conftest import connect, read_response


async def refuse_without_reading(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 401, "headers": []})
    await send({"type": "http.response.body", "body": b"no"})


def test_early_answer_to_a_large_upload_reaches_the_client_intact(serve: Any) -> None:
    server = serve(refuse_without_reading)
    body = b"x" * (4 * 1024 * 1024)
    with connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        # The server answers at once and drains the rest: sending it all must not be
        # cut short by a reset, and the answer must still be readable afterwards.
        sock.sendall(body)
        status, headers, payload = read_response(sock)
        assert status == b"HTTP/1.1 401 Unauthorized"
        assert headers[b"connection"] == b"close"
        assert payload == b"no"
        assert sock.recv(1) == b""  # the server half-closed after its answer


async def read_all(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


def test_body_over_the_limit_gets_413_even_while_the_client_keeps_sending(serve: Any) -> None:
    server = serve(read_all, limit_request_body=1024)
    with connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (4096, b"y" * 4096)
        for _ in range(256):  # 1 MiB of chunks, far past the limit
            sock.sendall(chunk)
        status, headers, payload = read_response(sock)
        assert status.startswith(b"HTTP/1.1 413 ")
        assert headers[b"connection"] == b"close"
        assert b"too large" in payload
