"""`levante.server`: an ASGI 3 server for HTTP/1.1 (uvicorn's role)."""

from levante.server.config import Config
from levante.server.errors import (
    AppImportError,
    ASGIProtocolError,
    ClientDisconnected,
    ConfigError,
    InvalidMessage,
    LifespanFailure,
    ServerError,
    UnexpectedMessage,
)
from levante.server.main import Server, run

__all__ = [
    "ASGIProtocolError",
    "AppImportError",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "InvalidMessage",
    "LifespanFailure",
    "Server",
    "ServerError",
    "UnexpectedMessage",
    "run",
]
