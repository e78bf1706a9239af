"""The echo app that scripts/autobahn serves to the Autobahn|Testsuite fuzzing client.

Every WebSocket connection is accepted and every message, text or binary, is sent
back as it came until the client disconnects (or a send finds the connection
closing). The protocol checks Autobahn makes (framing, UTF-8, closing handshake,
compression) are the server's, not the app's.
Plain HTTP requests get a short 404; lifespan events are answered.
"""

from __future__ import annotations

from typing import Any

from tests.apps.basic import run_lifespan


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await echo(receive, send)
    elif scope["type"] == "http":
        await not_found(send)
    elif scope["type"] == "lifespan":
        await run_lifespan(receive, send)


async def echo(receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            reply = {"type": "websocket.send", "text": message["text"]}
        elif message.get("bytes") is not None:
            reply = {"type": "websocket.send", "bytes": message["bytes"]}
        else:
            continue
        try:
            await send(reply)
        except OSError:
            # ASGI 2.4: the server raises an OSError subclass when the socket is
            # closing (Autobahn often closes right after sending). Stop quietly.
            return


async def not_found(send: Any) -> None:
    body = b"WebSocket echo for Autobahn|Testsuite\n"
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
