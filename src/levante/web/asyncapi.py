"""The AsyncAPI 3.0 document of an app's WebSocket and Server-Sent Events routes,
which OpenAPI cannot describe.

A WebSocket route is a channel whose address is the route's path, with two
operations from the app's side: it *receives* the client's messages and *sends*
its own. An SSE route (a handler whose return annotation is
`EventSourceResponse`) is a channel the app only sends on. Message payloads are
any JSON unless the route says otherwise with ``messages={"receive": T,
"send": T}`` (types validated like handler parameters: Structs, dataclasses...).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from levante.web.openapi import openapi_path

ASYNCAPI_VERSION = "3.0.0"
_REF = "#/components/schemas/{name}"


def _channel_id(path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return slug or "root"


def _is_sse(route: Any) -> bool:
    from levante.web.sse import EventSourceResponse

    endpoint = getattr(route, "endpoint", None)
    if endpoint is None or not callable(endpoint):
        return False
    try:
        annotation = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return False
    return isinstance(annotation, type) and issubclass(annotation, EventSourceResponse)


def _iter_channels(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(kind, address, route) for each WebSocket route and SSE route."""
    from levante.web.routing import Mount, Route, WebSocketRoute

    for route in routes:
        if isinstance(route, WebSocketRoute) and route.include_in_schema:
            yield "websocket", openapi_path(prefix + route.path), route
        elif isinstance(route, Route) and route.include_in_schema and _is_sse(route):
            yield "sse", openapi_path(prefix + route.path), route
        elif isinstance(route, Mount):
            inner = getattr(route.inner, "routes", None)
            if isinstance(inner, list):
                yield from _iter_channels(inner, prefix + route.path)


def _messages(
    kind: str, channel_id: str, declared: dict[str, Any], typed: list[tuple[Any, dict[str, Any]]]
) -> dict[str, Any]:
    """The channel's messages by direction; declared payload types go to `typed`
    to get their schemas all at once."""
    directions = ["receive", "send"] if kind == "websocket" else ["send"]
    messages: dict[str, Any] = {}
    for direction in directions:
        message: dict[str, Any] = {"name": f"{channel_id}_{direction}"}
        if kind == "sse":
            message["contentType"] = "text/event-stream"
            message["payload"] = {"type": "string", "description": "the data of one event"}
        elif direction in declared:
            typed.append((declared[direction], message))
        else:
            message["payload"] = {}
        messages[f"{direction}Message"] = message
    return messages


def _channel(kind: str, address: str, route: Any, messages: dict[str, Any]) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": address,
        "messages": messages,
        "servers": [{"$ref": f"#/servers/{'websocket' if kind == 'websocket' else 'http'}"}],
    }
    names = re.findall(r"\{(\w+)\}", address)
    if names:
        channel["parameters"] = {name: {"description": f"path parameter {name}"} for name in names}
    doc = inspect.getdoc(getattr(route, "endpoint", None)) or ""
    if doc:
        channel["description"] = doc
    return channel


def asyncapi_document(
    routes: list[Any],
    *,
    title: str,
    version: str,
    host: str,
    root_path: str = "",
    secure: bool = False,
    description: str | None = None,
) -> dict[str, Any] | None:
    """The AsyncAPI 3.0 document, or None when the app has no such routes."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    typed: list[tuple[Any, dict[str, Any]]] = []
    for kind, address, route in _iter_channels(routes):
        channel_id = _channel_id(address)
        while channel_id in channels:
            channel_id += "_"
        messages = _messages(kind, channel_id, route.options.get("messages") or {}, typed)
        channels[channel_id] = _channel(kind, address, route, messages)
        for key in messages:
            direction = key.removesuffix("Message")
            operations[f"{channel_id}_{direction}"] = {
                "action": direction,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{key}"}],
            }
    if not channels:
        return None
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    pathname = root_path or "/"
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "servers": {
            "websocket": {
                "host": host,
                "pathname": pathname,
                "protocol": "wss" if secure else "ws",
            },
            "http": {"host": host, "pathname": pathname, "protocol": "https" if secure else "http"},
        },
        "channels": channels,
        "operations": operations,
    }
    if typed:
        schemas, found = msgspec.json.schema_components([t for t, _ in typed], ref_template=_REF)
        for (_, message), schema in zip(typed, schemas, strict=True):
            message["payload"] = schema
        document["components"] = {"schemas": found}
    return document
