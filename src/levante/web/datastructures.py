"""Values a request is made of: URL, headers, query parameters, addresses, state.

They are views over the ASGI scope, built lazily and cheaply: `Headers` keeps the
raw ``(name, value)`` byte pairs the server passed and decodes on lookup.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any, NamedTuple, TypeVar
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlencode, urlsplit

from levante.native import mypyc_attr
from levante.web.plain import State  # noqa: F401  (re-exported: where users import it from)

_T = TypeVar("_T")


class Address(NamedTuple):
    """The client or server end of a connection, as the scope gives it."""

    host: str
    port: int | None


@mypyc_attr(allow_interpreted_subclasses=True)
class URL:
    """An absolute or relative URL with cheap access to its parts.

    `replace` and `include_query_params` return new objects; a URL never changes.
    """

    __slots__ = ("_parts", "_url")

    def __init__(self, url: str = "") -> None:
        self._url = url
        self._parts: SplitResult | None = None

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> URL:
        """The full URL of the request that `scope` describes."""
        scheme = scope.get("scheme", "http")
        # ``path`` is percent-decoded, so a ``%3F`` or ``%23`` the client sent is a
        # bare ``?`` or ``#`` here; escaped again (as Starlette does) it stays part of
        # the path instead of starting a query or fragment (RFC 3986 section 3.3).
        # A backslash too: WHATWG URL parsing reads it as ``/`` in http(s) URLs.
        path = full_path(scope).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
        query = scope.get("query_string", b"")
        host = _scope_host(scope)
        url = path if host is None else f"{scheme}://{host}{path}"
        if query:
            url += "?" + query.decode("latin-1")
        return cls(url)

    @property
    def parts(self) -> SplitResult:
        if self._parts is None:
            self._parts = urlsplit(self._url)
        return self._parts

    @property
    def scheme(self) -> str:
        return self.parts.scheme

    @property
    def netloc(self) -> str:
        return self.parts.netloc

    @property
    def path(self) -> str:
        return self.parts.path

    @property
    def query(self) -> str:
        return self.parts.query

    @property
    def fragment(self) -> str:
        return self.parts.fragment

    @property
    def hostname(self) -> str | None:
        return self.parts.hostname

    @property
    def port(self) -> int | None:
        return self.parts.port

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """A copy with some parts changed: scheme, netloc, path, query, fragment,
        or hostname/port (which rebuild the netloc)."""
        if "hostname" in kwargs or "port" in kwargs:
            hostname = kwargs.pop("hostname", None) or self.hostname or ""
            port = kwargs.pop("port", self.port)
            if ":" in hostname and not hostname.startswith("["):
                hostname = f"[{hostname}]"
            kwargs["netloc"] = hostname if port is None else f"{hostname}:{port}"
        return URL(self.parts._replace(**kwargs).geturl())

    def include_query_params(self, **params: Any) -> URL:
        query = dict(parse_qsl(self.query, keep_blank_values=True))
        query.update({str(k): str(v) for k, v in params.items()})
        return self.replace(query=urlencode(query))

    def remove_query_params(self, *keys: str) -> URL:
        pairs = parse_qsl(self.query, keep_blank_values=True)
        return self.replace(query=urlencode([(k, v) for k, v in pairs if k not in keys]))

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"URL({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._url)


def full_path(scope: Mapping[str, Any]) -> str:
    """The whole request path, ``root_path`` included.

    ASGI servers (uvicorn, Levante, and the `TestClient`) put the whole path in
    ``path``, of which ``root_path`` is a prefix; an older convention strips the
    prefix from ``path``, so a path outside ``root_path`` gets it put back (as
    `routing.route_path` reads both).
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or path == root or path.startswith(root.rstrip("/") + "/"):
        return path
    return root + path


def _scope_host(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    if not server:
        return None
    host, port = server
    default = 443 if scope.get("scheme") in ("https", "wss") else 80
    if ":" in host:
        host = f"[{host}]"
    return host if port in (None, default) else f"{host}:{port}"


@mypyc_attr(allow_interpreted_subclasses=True)
class ImmutableMultiDict(Mapping[str, _T]):
    """A mapping where a key may have several values; `[]` gives the last one,
    `getlist` all of them in order (as Starlette and Werkzeug do)."""

    __slots__ = ("_dict", "_list")

    def __init__(self, items: Iterable[tuple[str, _T]] | Mapping[str, _T] = ()) -> None:
        if type(items) is list:  # the common case, without the ABC check below
            pairs: list[tuple[str, _T]] = items.copy()
        else:
            pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        self._list: list[tuple[str, _T]] = pairs
        self._dict: dict[str, _T] = dict(pairs)

    def getlist(self, key: str) -> list[_T]:
        return [v for k, v in self._list if k == key]

    def multi_items(self) -> list[tuple[str, _T]]:
        return list(self._list)

    def keys(self) -> KeysView[str]:
        return self._dict.keys()

    def values(self) -> ValuesView[_T]:
        return self._dict.values()

    def items(self) -> ItemsView[str, _T]:
        return self._dict.items()

    def __getitem__(self, key: str) -> _T:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImmutableMultiDict):
            return False
        return sorted(self._list) == sorted(other._list)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


def parse_query(query: str) -> list[tuple[str, str]]:
    """``a=1&b=x+y&c`` → [("a", "1"), ("b", "x y"), ("c", "")]: what
    ``parse_qsl(query, keep_blank_values=True)`` gives, about three times faster.
    Only pairs with a ``%`` or ``+`` are unquoted (most are not)."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        pairs.append((name, value))
    return pairs


@mypyc_attr(allow_interpreted_subclasses=True)
class QueryParams(ImmutableMultiDict[str]):
    """The query string, decoded: `request.query_params["page"]`, `.getlist("tag")`."""

    __slots__ = ()

    def __init__(
        self, query: str | bytes | Iterable[tuple[str, str]] | Mapping[str, str] = ""
    ) -> None:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        if isinstance(query, str):
            super().__init__(parse_query(query))
        else:
            super().__init__(query)

    def __str__(self) -> str:
        return urlencode(self._list)


@mypyc_attr(allow_interpreted_subclasses=True)
class Headers(Mapping[str, str]):
    """Request or response headers: case-insensitive, several values per name.

    `headers["accept"]` gives the first value, `getlist` all of them. Lookups work
    on the raw byte pairs, so building a `Headers` costs nothing.
    """

    __slots__ = ("_list",)

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        if headers is not None:
            self._list = [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]
        elif raw is not None:
            self._list = raw
        elif scope is not None:
            self._list = scope["headers"]
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._list

    def get(self, key: str, default: Any = None) -> Any:
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return v.decode("latin-1")
        return default

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._list if k == name]

    def keys(self) -> list[str]:  # type: ignore[override]
        return [k.decode("latin-1") for k, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        return [v.decode("latin-1") for _, v in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._list]

    def mutablecopy(self) -> MutableHeaders:
        return MutableHeaders(raw=list(self._list))

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return False
        return sorted(self._list) == sorted(other._list)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


@mypyc_attr(allow_interpreted_subclasses=True)
class MutableHeaders(Headers):
    """Headers a response or middleware can change; writes go to the raw list,
    so a middleware can edit the headers of an ASGI message in place."""

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        """Set one value for `key`, replacing any others."""
        name = key.lower().encode("latin-1")
        encoded = value.encode("latin-1")
        found = [i for i, (k, _) in enumerate(self._list) if k == name]
        for i in reversed(found[1:]):
            del self._list[i]
        if found:
            self._list[found[0]] = (name, encoded)
        else:
            self._list.append((name, encoded))

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        self._list[:] = [(k, v) for k, v in self._list if k != name]

    def setdefault(self, key: str, value: str) -> str:
        current = self.get(key)
        if current is None:
            self.append(key, value)
            return value
        return str(current)

    def append(self, key: str, value: str) -> None:
        """Add a value for `key`, keeping the ones already there (Set-Cookie, Vary)."""
        self._list.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    def update(self, other: Mapping[str, str]) -> None:
        for key, value in other.items():
            self[key] = value

    def add_vary_header(self, vary: str) -> None:
        existing = self.get("vary")
        if existing is None:
            self["vary"] = vary
        elif vary.lower() not in [v.strip().lower() for v in existing.split(",")]:
            self["vary"] = f"{existing}, {vary}"
