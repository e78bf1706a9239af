"""Exceptions of `levante.testing`: one root, and names that say what went wrong.

Exceptions the *app* raises are not wrapped: with ``raise_server_exceptions=True``
the test sees the app's own exception, as it would in a traceback from a server.
"""

from __future__ import annotations


class TestingError(Exception):
    """Root of every exception `levante.testing` raises on purpose."""

    __test__ = False  # not a pytest test class, despite the name


class ASGIAppError(TestingError, RuntimeError):
    """The app used the ASGI interface wrongly; the message says what to do instead."""


class AppTimeoutError(TestingError, TimeoutError):
    """The app did not answer within the client's ``timeout``; the message says what it owed."""


class UnexpectedMessage(TestingError, TypeError):
    """The app sent another kind of message than the test asked for (bytes for text)."""


class LifespanFailure(TestingError):
    """The app answered ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``.

    `message` is the text the app sent with the failure (empty if it sent none).
    """

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(f"lifespan {phase} failed: {message or '(the app sent no message)'}")
        self.phase = phase
        self.message = message


class ClientDisconnected(TestingError, OSError):
    """Raised in the app's `send` after the test client went away.

    ASGI 2.4 asks servers to raise an `OSError` subclass here (as `levante.server`
    does), so an app streaming a response can stop once nobody reads it.
    """
