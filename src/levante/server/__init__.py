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


def compiled() -> bool:
    """Whether the server's hot modules run compiled (mypyc) rather than as Python source."""
    from levante.server import stream

    return not stream.__file__.endswith(".py") if stream.__file__ else False


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
    "compiled",
    "run",
]
