"""Classes that stay plain Python in the compiled build (see setup.py).

mypyc compiles `datastructures` and `routing`; a compiled class cannot subclass
`str` (`URLPath`) or take arbitrary attributes (`State`), so these two live here
and those modules re-export them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from levante.web.datastructures import URL


class State:
    """An object for arbitrary attributes: `app.state`, `request.state`.

    Lifespan state (what the lifespan yields) is reached with `request.state.<name>`.
    """

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__setattr__("_state", {} if state is None else state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: str) -> Any:
        try:
            return self._state[key]
        except KeyError:
            raise AttributeError(f"'State' object has no attribute {key!r}") from None

    def __delattr__(self, key: str) -> None:
        del self._state[key]

    def __contains__(self, key: str) -> bool:
        return key in self._state


class URLPath(str):
    """A path from `url_path_for`, which `make_absolute_url` can anchor to a base URL.
    A route under a `Host` carries that host, which replaces the base URL's."""

    __slots__ = ("host", "protocol")

    def __new__(cls, path: str, protocol: str = "", host: str = "") -> URLPath:
        return super().__new__(cls, path)

    def __init__(self, path: str, protocol: str = "", host: str = "") -> None:
        self.protocol = protocol
        self.host = host

    def make_absolute_url(self, base_url: str | URL) -> URL:
        # Imported here: datastructures (compiled) re-exports State from this module.
        from levante.web.datastructures import URL

        base = base_url if isinstance(base_url, URL) else URL(base_url)
        scheme = base.scheme
        if self.protocol == "websocket":
            scheme = "wss" if base.is_secure else "ws"
        elif self.protocol == "http":
            scheme = "https" if base.is_secure else "http"
        path = base.path.rstrip("/") + str(self)
        return URL(f"{scheme}://{self.host or base.netloc}{path}")
