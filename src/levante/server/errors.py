"""Exceptions of `levante.server`: one root, and names that say what went wrong."""

from __future__ import annotations


class ServerError(Exception):
    """Root of every exception `levante.server` raises."""


class ConfigError(ServerError):
    """A setting has a value the server cannot use; the message names it."""


class AppImportError(ServerError):
    """``module:attribute`` could not be imported; the message says which part is missing."""


class LifespanFailure(ServerError):
    """The app reported ``lifespan.startup.failed`` (or raised) during startup."""


class ClientDisconnected(ServerError, OSError):
    """`send` was called after the client went away.

    ASGI 2.4 asks servers to raise an `OSError` subclass here, so apps can stop
    producing a response nobody will read.
    """


class ASGIProtocolError(ServerError, RuntimeError):
    """The app used the ASGI interface wrongly; the message says how to fix it."""


class UnexpectedMessage(ASGIProtocolError):
    """The app sent a message that is not allowed at this point of the exchange."""


class InvalidMessage(ASGIProtocolError):
    """The app sent a message with a missing key or a value of the wrong type."""


class RequestError(ServerError):
    """A request broke HTTP's rules or a limit; `status` is what to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
