"""Raw ASGI 3 app implementing the benchmark endpoint contract (no framework).

Endpoints (every app in apps/ serves the same contract, see README.md):
  GET  /plaintext        -> 200 text/plain "Hello, World!"
  GET  /json             -> 200 application/json {"message": "Hello, World!"}, built per request
  GET  /items/{id}?q=&limit=  -> 200 application/json {"item_id": int, "q": str, "limit": int}
  GET  /bytes/64k        -> 200 application/octet-stream, 65536 bytes
  POST /upload           -> 200 application/json {"length": <body bytes>}
  WS   /ws               -> echo every text/binary message
"""

import json
from urllib.parse import parse_qsl

PLAINTEXT = b"Hello, World!"
BYTES_64K = b"x" * 65536

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON = b"application/json"
_OCTET = [(b"content-type", b"application/octet-stream"), (b"content-length", b"65536")]


async def _send(send, status, headers, body):
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json_headers(body):
    return [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _websocket(receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes")})
        elif kind == "websocket.disconnect":
            return


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        path = scope["path"]
        if path in {"/plaintext", "/"}:
            headers = [*_TEXT, (b"content-length", b"13")]
            await _send(send, 200, headers, PLAINTEXT)
        elif path == "/json":
            body = json.dumps({"message": "Hello, World!"}).encode()
            await _send(send, 200, _json_headers(body), body)
        elif path.startswith("/items/"):
            try:
                item_id = int(path[7:])
                query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
                limit = int(query.get("limit", 10))
            except ValueError:
                await _send(send, 422, _TEXT, b"invalid parameters")
                return
            body = json.dumps(
                {"item_id": item_id, "q": query.get("q", ""), "limit": limit}
            ).encode()
            await _send(send, 200, _json_headers(body), body)
        elif path == "/bytes/64k":
            await _send(send, 200, _OCTET, BYTES_64K)
        elif path == "/upload" and scope["method"] == "POST":
            length = 0
            more = True
            while more:
                message = await receive()
                length += len(message.get("body", b""))
                more = message.get("more_body", False)
            body = json.dumps({"length": length}).encode()
            await _send(send, 200, _json_headers(body), body)
        else:
            await _send(send, 404, _TEXT, b"not found")
    elif kind == "websocket":
        await _websocket(receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
