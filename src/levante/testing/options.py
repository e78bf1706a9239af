"""What every connection the test client opens needs to know about the app and the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from levante.asgi import ASGIApp


@dataclass(frozen=True)
class AppOptions:
    """The app, the scope fields the client fills in, and the failure policy."""

    app: ASGIApp
    raise_server_exceptions: bool = True
    root_path: str = ""
    client: tuple[str, int] = ("testclient", 50000)
    #: The lifespan state; every request and WebSocket scope gets a shallow copy.
    state: dict[str, Any] = field(default_factory=dict)
    #: The bound on every wait for the app, in seconds.
    timeout: float = 30.0
    #: After the client closes a response or WebSocket early, how long the app
    #: may keep running before its task is cancelled.
    close_grace: float = 0.5
    #: Offer the ``http.response.debug`` extension (see `levante.testing.exchange`).
    response_debug: bool = True
