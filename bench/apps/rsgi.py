"""The benchmark endpoint contract as a Granian RSGI app (granian --interface rsgi)."""

import json
from urllib.parse import parse_qsl

from granian.rsgi import ProtocolClosed, WebsocketMessageType

PLAINTEXT = b"Hello, World!"
BYTES_64K = b"x" * 65536
_TEXT = [("content-type", "text/plain; charset=utf-8")]
_JSON = [("content-type", "application/json")]
_OCTET = [("content-type", "application/octet-stream")]


async def _http(scope, proto):
    path = scope.path
    if path in {"/plaintext", "/"}:
        proto.response_bytes(200, _TEXT, PLAINTEXT)
    elif path == "/json":
        proto.response_bytes(200, _JSON, json.dumps({"message": "Hello, World!"}).encode())
    elif path.startswith("/items/"):
        try:
            item_id = int(path[7:])
            query = dict(parse_qsl(scope.query_string))
            limit = int(query.get("limit", 10))
        except ValueError:
            proto.response_bytes(422, _TEXT, b"invalid parameters")
            return
        body = json.dumps({"item_id": item_id, "q": query.get("q", ""), "limit": limit}).encode()
        proto.response_bytes(200, _JSON, body)
    elif path == "/bytes/64k":
        proto.response_bytes(200, _OCTET, BYTES_64K)
    elif path == "/upload" and scope.method == "POST":
        length = 0
        async for chunk in proto:
            length += len(chunk)
        proto.response_bytes(200, _JSON, json.dumps({"length": length}).encode())
    else:
        proto.response_bytes(404, _TEXT, b"not found")


async def _ws(scope, proto):
    transport = await proto.accept()
    try:
        while True:
            message = await transport.receive()
            if message.kind == WebsocketMessageType.close:
                break
            if message.kind == WebsocketMessageType.string:
                await transport.send_str(message.data)
            else:
                await transport.send_bytes(message.data)
    except ProtocolClosed:
        pass
    proto.close(None)


async def app(scope, proto):
    if scope.proto == "http":
        await _http(scope, proto)
    elif scope.proto == "ws":
        await _ws(scope, proto)
