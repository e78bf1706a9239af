"""Routing: routes compiled into a table at start-up, then one lookup per request.

Paths without parameters sit in a dict keyed by the whole path. The rest form a
trie of path segments: at each node a literal segment is one dict lookup, then the
parameter segments are tried narrowest first (``int`` before ``str``), then a
trailing ``path`` parameter, then mounts (the deepest one wins). No request scans
the route list. Matching is by specificity, not declaration order, so two routes
that would match exactly the same paths are refused when the table is built, with
both named.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final

from levante.asgi import AnyScope, ASGIApp, Receive, Send
from levante.native import chained, mypyc_attr
from levante.web.convertors import HostTemplate, PathTemplate, Segment, compile_host, compile_path
from levante.web.datastructures import URL, Headers, full_path
from levante.web.exceptions import HTTPException, NoMatchFound, RouteConflict
from levante.web.handlers import (
    Compiled,
    ExceptionMiddleware,
    compile_http_handler,
    compile_websocket_handler,
    respond_to_exception,
)
from levante.web.lifespan import Lifespan, LifespanRunner
from levante.web.plain import URLPath
from levante.web.plans import APP_DEPENDENCIES_KEY, AppDependencies
from levante.web.responses import RedirectResponse, Response


def route_path(scope: AnyScope) -> str:
    """The path below the app's mount point: ``path`` without ``root_path``.

    Servers put the whole path in ``path`` and the mount prefix in ``root_path``
    (as uvicorn and Levante do, and Starlette's mounts); an older convention
    strips the prefix from ``path``, which this accepts too.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


@mypyc_attr(allow_interpreted_subclasses=True)
class BaseRoute:
    """Something a router can hold: a route, a mount or a host."""

    name: str | None
    include_in_schema: bool = True

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        name = __name  # not `name`: mypyc ignores `/`, and a path parameter may be called so
        raise NoMatchFound(name)

    def describe(self) -> str:
        return repr(self)


def _endpoint_name(endpoint: Any) -> str:
    func = getattr(endpoint, "__name__", None) or type(endpoint).__name__
    return str(func)


def _is_handler(endpoint: Any) -> bool:
    """Plain functions and methods are handlers, except those written as ASGI apps,
    ``(scope, receive, send)``; anything else (a class instance) is an ASGI app."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    if not (inspect.isfunction(endpoint) or inspect.ismethod(endpoint)):
        return False
    names = list(inspect.signature(endpoint).parameters)
    return names != ["scope", "receive", "send"]


def _host_name(host: str) -> str:
    """The Host header without its port (``[::1]:8000`` → ``[::1]``)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def _wrap(app: ASGIApp, middleware: Sequence[Any]) -> ASGIApp:
    """`app` inside `middleware`, a list of ``(cls, args, kwargs)``, outermost first."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


def _guard(app: ASGIApp, answers_its_own: bool) -> ASGIApp:
    """`app` inside `ExceptionMiddleware`, unless it is a compiled handler alone."""
    return app if answers_its_own else ExceptionMiddleware(app)


def _set_path_params(scope: AnyScope, params: dict[str, Any]) -> None:
    prior = scope.get("path_params")
    scope["path_params"] = {**prior, **params} if prior else params


def _format(template: PathTemplate | HostTemplate, name: str, params: dict[str, Any]) -> str:
    expected = set(template.param_names)
    if set(params) != expected:
        raise NoMatchFound(
            f"route {name!r} takes path parameters {sorted(expected)}, got {sorted(params)}"
        )
    try:
        return template.format(params)
    except (ValueError, TypeError) as exc:
        raise chained(NoMatchFound(f"route {name!r}: {exc}"), None)


@mypyc_attr(allow_interpreted_subclasses=True)
class Route(BaseRoute):
    """An HTTP route: `path` and `methods` mapped to a handler or an ASGI app.

    A handler is a plain (`def`) or `async def` function taking the request
    and/or path parameters by name; what it returns is sent as the response
    (a `Response` as is, anything else as JSON). Any other callable is taken
    as an ASGI app. GET routes answer HEAD too, unless a HEAD route is given
    for the same path.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
        middleware: Sequence[Any] | None = None,
        status_code: int | None = None,
        **options: Any,
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.template = compile_path(path)
        self.name = _endpoint_name(endpoint) if name is None else name
        self.include_in_schema = include_in_schema
        self.status_code = status_code
        self.options = options
        is_handler = _is_handler(endpoint)
        if methods is None and is_handler:
            methods = ["GET"]
        self.methods: set[str] | None = None
        #: HEAD was added for GET, not asked for: an explicit HEAD route wins over it.
        self.implicit_head = False
        if methods is not None:
            self.methods = {m.upper() for m in methods}
            if "GET" in self.methods and "HEAD" not in self.methods:
                self.methods.add("HEAD")
                self.implicit_head = True
        #: The handler's plan (set by `compile_http_handler`; None for an ASGI app).
        self.compiled: Compiled | None = None
        if is_handler:
            self.app: ASGIApp = compile_http_handler(endpoint, self)
        else:
            self.app = endpoint
        #: As given, so that `include_router` can build the route again with it.
        self.middleware = list(middleware or ())
        self.app = _guard(_wrap(self.app, self.middleware), is_handler and not self.middleware)

    @property
    def declared_methods(self) -> set[str] | None:
        """The methods as given (HEAD only if asked for), to build the route again."""
        if self.methods is None or not self.implicit_head:
            return self.methods
        return self.methods - {"HEAD"}

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        name = __name
        if name != self.name:
            raise NoMatchFound(name)
        return URLPath(_format(self.template, name, params), "http")

    def describe(self) -> str:
        methods = "ANY" if self.methods is None else ",".join(sorted(self.methods))
        return f"Route({self.path!r}, {self.name}, methods={methods})"

    def __repr__(self) -> str:
        return self.describe()


@mypyc_attr(allow_interpreted_subclasses=True)
class WebSocketRoute(BaseRoute):
    """A WebSocket route: `endpoint(websocket, **path_params)` or an ASGI app."""

    methods = None

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        middleware: Sequence[Any] | None = None,
        include_in_schema: bool = True,
        **options: Any,
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.template = compile_path(path)
        self.name = _endpoint_name(endpoint) if name is None else name
        self.include_in_schema = include_in_schema
        self.options = options
        handler = _is_handler(endpoint)
        self.compiled: Compiled | None = None
        if handler:
            self.app: ASGIApp = compile_websocket_handler(endpoint, self)
        else:
            self.app = endpoint
        self.middleware = list(middleware or ())
        self.app = _guard(_wrap(self.app, self.middleware), handler and not self.middleware)

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        name = __name
        if name != self.name:
            raise NoMatchFound(name)
        return URLPath(_format(self.template, name, params), "websocket")

    def describe(self) -> str:
        return f"WebSocketRoute({self.path!r}, {self.name})"

    def __repr__(self) -> str:
        return self.describe()


@mypyc_attr(allow_interpreted_subclasses=True)
class Mount(BaseRoute):
    """Any ASGI app (a router, a `StaticFiles`, another framework's app) under a
    path prefix. The app sees the prefix added to ``root_path``; its own
    lifespan runs with the parent's."""

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
        *,
        middleware: Sequence[Any] | None = None,
    ) -> None:
        if path == "/":
            path = ""
        if path.endswith("/"):
            raise ValueError(f"a mount path must not end with '/': {path!r}")
        if (app is None) == (routes is None):
            raise ValueError("Mount takes either an app or routes")
        self.path = path
        self.app: ASGIApp = app if app is not None else Router(routes)
        self.inner = self.app
        self.name = name
        self.template = compile_path(path)
        self.middleware = list(middleware or ())
        self.app = _guard(_wrap(self.app, self.middleware), False)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(getattr(self.inner, "routes", []))

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        name = __name
        own = {k: params.pop(k) for k in self.template.param_names if k in params}
        prefix = _format(self.template, name, own) if self.path else ""
        if self.name is not None and name == self.name and "path" in params:
            return URLPath(prefix.rstrip("/") + "/" + str(params.pop("path")).lstrip("/"))
        if self.name is not None:
            if not name.startswith(self.name + ":"):
                raise NoMatchFound(name)
            name = name[len(self.name) + 1 :]
        for route in self.routes:
            try:
                inner = route.url_path_for(name, **params)
            except NoMatchFound:
                continue
            return URLPath(prefix + str(inner), inner.protocol, inner.host)
        raise NoMatchFound(name)

    def describe(self) -> str:
        return f"Mount({self.path!r}, {_endpoint_name(self.inner)})"

    def __repr__(self) -> str:
        return self.describe()


@mypyc_attr(allow_interpreted_subclasses=True)
class Host(BaseRoute):
    """Route by the Host header: ``Host("{tenant}.example.com", app)``. Parameters
    are converted like path ones, and a host their convertor refuses does not
    match (``{id:int}`` and ``abc``)."""

    def __init__(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        self.host = host
        self.app = app
        self.guarded = _guard(app, False)  # what the router calls
        self.name = name
        self.template = compile_host(host)

    def match(self, host: str) -> dict[str, Any] | None:
        return self.template.match(host)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(getattr(self.app, "routes", []))

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        """The path of the route `name` in the app, carrying this host (its
        parameters filled from `params`), so that `url_for` is absolute on it."""
        name = __name
        if self.name is not None:
            if not name.startswith(self.name + ":"):
                raise NoMatchFound(name)
            name = name[len(self.name) + 1 :]
        own = {k: params.pop(k) for k in self.template.param_names if k in params}
        for route in self.routes:
            try:
                inner = route.url_path_for(name, **params)
            except NoMatchFound:
                continue
            return URLPath(str(inner), inner.protocol, _format(self.template, name, own))
        raise NoMatchFound(name)

    def describe(self) -> str:
        return f"Host({self.host!r})"


# -- the compiled table -----------------------------------------------------------


@dataclass(slots=True)
class _Leaf:
    """The routes that end at one trie node, by method (None: any method)."""

    http: dict[str | None, Route] = field(default_factory=dict)
    websocket: WebSocketRoute | None = None

    def add(self, route: BaseRoute) -> None:
        if isinstance(route, WebSocketRoute):
            if self.websocket is not None:
                raise _conflict(self.websocket, route)
            self.websocket = route
            return
        if not isinstance(route, Route):
            raise TypeError(f"not a route: {route!r}")
        for method in [None] if route.methods is None else sorted(route.methods):
            clash = self._clash(method)
            if clash is not None and method == "HEAD" and route.implicit_head:
                continue  # an explicit HEAD route keeps HEAD
            if clash is not None and not (method == "HEAD" and clash.implicit_head):
                raise _conflict(clash, route)
            self.http[method] = route

    def _clash(self, method: str | None) -> Route | None:
        if method is None:
            return next(iter(self.http.values()), None)
        return self.http.get(method) or self.http.get(None)

    @property
    def methods(self) -> set[str]:
        return {m for m in self.http if m is not None}

    def accepts(self, want: str) -> bool:
        if want == "websocket":
            return self.websocket is not None
        return want in self.http or None in self.http

    def any_route(self) -> Route | WebSocketRoute | None:
        return next(iter(self.http.values()), self.websocket)


def _allow(methods: set[str]) -> str:
    """The Allow header (RFC 9110 section 10.2.1): OPTIONS is always answered, so
    it is listed too (last, after the routes' methods)."""
    return ", ".join([*sorted(methods - {"OPTIONS"}), "OPTIONS"])


def _conflict(first: BaseRoute, second: BaseRoute) -> RouteConflict:
    return RouteConflict(
        f"{second.describe()} conflicts with {first.describe()}: both match the same "
        "paths and methods. Remove one, or give them different methods or paths."
    )


def _tail_conflict(route: BaseRoute | None, mount: Mount) -> RouteConflict:
    # Routes beat a mount on its prefix, so a {name:path} route there would take
    # every path below it and leave the mount only the methods the route lacks.
    return RouteConflict(
        f"{route!r} conflicts with {mount.describe()}: its path parameter takes every "
        "path under the mount. Serve those paths in the mounted app, or move one of them."
    )


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    params: list[tuple[Segment, _Node]] = field(default_factory=list)
    tail: tuple[Segment, _Leaf] | None = None
    leaf: _Leaf | None = None
    mount: Mount | None = None

    def child(self, segment: Segment) -> _Node:
        if segment.is_literal:
            return self.literal.setdefault(segment.text, _Node())
        for existing, node in self.params:
            if existing.key == segment.key:
                return node
        node = _Node()
        self.params.append((segment, node))
        self.params.sort(key=lambda item: item[0].priority)
        return node


@dataclass(slots=True)
class Match:
    """What a path resolved to. `route` is None for a mount; `leaf` without a route
    for the method means 405."""

    leaf: _Leaf | None = None
    mount: Mount | None = None
    raw: list[str] = field(default_factory=list)
    prefix_length: int = 0
    #: For a 405: what every route matching the path accepts, as the Allow header.
    allow: str = ""


class RouteTable:
    """The compiled form of a router's routes."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.static: dict[str, _Leaf] = {}
        self.root = _Node()
        self.hosts: list[Host] = []
        for route in routes:
            self._add(route)

    def _add(self, route: BaseRoute) -> None:
        if isinstance(route, Host):
            self.hosts.append(route)
            return
        if isinstance(route, Mount):
            self._add_mount(route)
            return
        if not isinstance(route, Route | WebSocketRoute):
            raise TypeError(f"a router holds Route, WebSocketRoute, Mount or Host, not {route!r}")
        node = self.root
        segments = route.template.segments
        for segment in segments[:-1] if segments and segments[-1].is_tail else segments:
            node = node.child(segment)
        if segments and segments[-1].is_tail:
            if node.mount is not None:
                raise _tail_conflict(route, node.mount)
            if node.tail is None:
                node.tail = (segments[-1], _Leaf())
            leaf = node.tail[1]
        else:
            if node.leaf is None:
                node.leaf = _Leaf()
            leaf = node.leaf
        leaf.add(route)
        if route.template.is_static:
            self.static[route.path] = leaf

    def _add_mount(self, mount: Mount) -> None:
        node = self.root
        for segment in mount.template.segments:
            node = node.child(segment)
        if node.mount is not None:
            raise _conflict(node.mount, mount)
        if node.tail is not None:
            raise _tail_conflict(node.tail[1].any_route(), mount)
        node.mount = mount

    def match(self, path: str, want: str) -> Match | None:
        """The best match for `path` (which starts with ``/``) and `want` (a method,
        or ``"websocket"``): a full match, else a leaf with other methods (405)."""
        leaf = self.static.get(path)
        if leaf is not None and leaf.accepts(want):
            return Match(leaf)
        partial: list[Match] = []
        found = _walk(self.root, path[1:].split("/"), 0, [], want, partial)
        if found is None and partial:
            # No route takes the method, so the walk went through every route
            # matching the path: Allow lists what each of them accepts.
            found = partial[0]
            found.allow = _allow({m for p in partial if p.leaf for m in p.leaf.methods})
        return found


def _walk(
    node: _Node, segments: list[str], index: int, raw: list[str], want: str, partial: list[Match]
) -> Match | None:
    if index == len(segments):
        leaf = node.leaf
        if leaf is not None:
            if leaf.accepts(want):
                return Match(leaf, raw=list(raw))
            partial.append(Match(leaf, raw=list(raw)))
    else:
        found = _walk_children(node, segments, index, raw, want, partial)
        if found is not None:
            return found
    if node.mount is not None:
        return Match(mount=node.mount, raw=list(raw), prefix_length=index)
    return None


def _walk_children(
    node: _Node, segments: list[str], index: int, raw: list[str], want: str, partial: list[Match]
) -> Match | None:
    text = segments[index]
    child = node.literal.get(text)
    if child is not None:
        found = _walk(child, segments, index + 1, raw, want, partial)
        if found is not None:
            return found
    for segment, child in node.params:
        values = segment.match(text)
        if values is None:
            continue
        raw.extend(values)
        found = _walk(child, segments, index + 1, raw, want, partial)
        del raw[len(raw) - len(values) :]
        if found is not None:
            return found
    if node.tail is not None:
        leaf = node.tail[1]
        match = Match(leaf, raw=[*raw, "/".join(segments[index:])])
        if leaf.accepts(want):
            return match
        partial.append(match)
    return None


# -- the router --------------------------------------------------------------------


Decorated = Callable[[Callable[..., Any]], Callable[..., Any]]


def _decorator(add: Callable[..., object], path: str, **options: Any) -> Decorated:
    """A decorator that registers what it decorates: ``add(path, func, **options)``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        add(path, func, **options)
        return func

    return decorate


@mypyc_attr(allow_interpreted_subclasses=True)
class Router:
    """A set of routes, itself an ASGI app. Compiled into a `RouteTable` on the
    first request or at start-up, whichever comes first; adding a route later
    recompiles."""

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        *,
        redirect_slashes: bool = True,
        default: ASGIApp | None = None,
        lifespan: Lifespan | None = None,
        dependencies: Sequence[Any] | None = None,
    ) -> None:
        #: `Depends(...)` run before every handler route of this router (for their
        #: effects: authentication, say), outside the routes' own.
        self.dependencies: list[Any] = list(dependencies or ())
        self.routes: list[BaseRoute] = [self._with_ours(route) for route in routes or ()]
        self.redirect_slashes = redirect_slashes
        self.default = default
        self.lifespan_context = lifespan
        self.included_lifespans: list[Lifespan] = []
        self._table: RouteTable | None = None
        self._lifespan: LifespanRunner | None = None
        #: The `App` serving this router as its own (its dependency overrides apply).
        self.owner: Any = None

    # -- building ------------------------------------------------------------

    def compile(self) -> RouteTable:
        """Build the route table now; raises `RouteConflict` naming both routes."""
        self._table = RouteTable(self.routes)
        return self._table

    def _changed(self) -> None:
        self._table = None

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Route:
        route = Route(path, endpoint, methods=methods, name=name, **self._options(options))
        self.routes.append(route)
        self._changed()
        return route

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        if not self.dependencies:
            return options
        return {**options, "dependencies": [*self.dependencies, *options.get("dependencies", ())]}

    def _with_ours(self, route: BaseRoute) -> BaseRoute:
        if not self.dependencies or not isinstance(route, Route | WebSocketRoute):
            return route
        return _prefixed(route, "", {"dependencies": self.dependencies})

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Any], name: str | None = None, **options: Any
    ) -> WebSocketRoute:
        route = WebSocketRoute(path, endpoint, name=name, **self._options(options))
        self.routes.append(route)
        self._changed()
        return route

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Mount(path, app=app, name=name))
        self._changed()

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Host(host, app=app, name=name))
        self._changed()

    def include_router(self, router: Router, prefix: str = "", **options: Any) -> None:
        """Copy `router`'s routes in under `prefix` (its lifespan runs with ours)."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"a prefix starts with '/' and does not end with one: {prefix!r}")
        options = self._options(options)
        for route in router.routes:
            self.routes.append(_prefixed(route, prefix, options))
        if router.lifespan_context is not None:
            self.included_lifespans.append(router.lifespan_context)
        self.included_lifespans.extend(router.included_lifespans)
        self._changed()

    def route(
        self,
        path: str,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Decorated:
        return _decorator(self.add_route, path, methods=methods, name=name, **options)

    def get(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["POST"], **options)

    def put(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["DELETE"], **options)

    def options(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["OPTIONS"], **options)

    def head(self, path: str, **options: Any) -> Decorated:
        return self.route(path, methods=["HEAD"], **options)

    def websocket(self, path: str, name: str | None = None, **options: Any) -> Decorated:
        return _decorator(self.add_websocket_route, path, name=name, **options)

    def url_path_for(self, __name: str, /, **params: Any) -> URLPath:
        name = __name
        for route in self.routes:
            try:
                return route.url_path_for(name, **dict(params))
            except NoMatchFound:
                continue
        raise NoMatchFound(f"no route named {name!r} with parameters {sorted(params)}")

    def iter_routes(self) -> Iterator[BaseRoute]:
        yield from self.routes

    # -- serving -------------------------------------------------------------

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.lifespan_runner()(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        table = self._table or self.compile()
        if table.hosts and await self._route_host(table, scope, receive, send):
            return
        path = route_path(scope)
        want = scope["method"] if kind == "http" else "websocket"
        found = table.match(path, want)
        if found is not None:
            if found.mount is not None:
                await _call_mount(found, path, scope, receive, send)
                return
            leaf = found.leaf
            if leaf is not None and leaf.accepts(want):
                route: Route | WebSocketRoute | None
                route = leaf.http.get(want) or leaf.http[None] if kind == "http" else leaf.websocket
                if route is not None:
                    if found.raw:
                        _set_path_params(scope, route.template.convert(found.raw))
                    await route.app(scope, receive, send)
                    return
            if kind == "http" and leaf is not None and leaf.http:
                await self._method_not_allowed(found.allow, scope, receive, send)
                return
        await self.not_found(scope, receive, send, path)

    async def _route_host(
        self, table: RouteTable, scope: AnyScope, receive: Receive, send: Send
    ) -> bool:
        host = _host_name(Headers(scope=scope).get("host", ""))
        for route in table.hosts:
            params = route.match(host)
            if params is not None:
                _set_path_params(scope, params)
                await route.guarded(scope, receive, send)
                return True
        return False

    async def _method_not_allowed(
        self, allow: str, scope: AnyScope, receive: Receive, send: Send
    ) -> None:
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={"allow": allow})(scope, receive, send)
            return
        error = HTTPException(405, headers={"allow": allow})
        await respond_to_exception(scope, receive, send, error)

    async def not_found(self, scope: AnyScope, receive: Receive, send: Send, path: str) -> None:
        if self.default is not None:
            await self.default(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        if self.redirect_slashes and path != "/" and scope["method"] in ("GET", "HEAD"):
            other = path[:-1] if path.endswith("/") else path + "/"
            table = self._table or self.compile()
            found = table.match(other, "GET")
            if found is not None and (found.mount is not None or _accepts(found, "GET")):
                whole = full_path(scope)  # the mount points above us, then `path`
                target = {**scope, "path": whole[: len(whole) - len(path)] + other}
                await RedirectResponse(URL.from_scope(target))(scope, receive, send)
                return
        await respond_to_exception(scope, receive, send, HTTPException(404))

    def lifespan_runner(self) -> LifespanRunner:
        if self._lifespan is None:
            contexts = [c for c in [self.lifespan_context, *self.included_lifespans] if c]
            subapps = [
                r.inner if isinstance(r, Mount) else r.app
                for r in self.routes
                if isinstance(r, Mount | Host)
            ]
            self._lifespan = LifespanRunner(
                self, contexts, subapps, on_startup=self.compile, on_started=self._start_app_scoped
            )
        return self._lifespan

    async def _start_app_scoped(self, stack: AsyncExitStack, state: dict[str, Any]) -> None:
        """Make the app-scoped dependencies of every handler route (with the app's
        `dependency_overrides`), to be closed when the lifespan ends."""
        overrides = getattr(self.owner, "dependency_overrides", None)
        plans = [
            compiled.plan_with(overrides)
            for route in self.routes
            if (compiled := getattr(route, "compiled", None)) is not None
        ]
        if not any(plan.has_app_calls for plan in plans):
            return
        registry = state.get(APP_DEPENDENCIES_KEY)
        if registry is None:
            registry = state[APP_DEPENDENCIES_KEY] = AppDependencies()
            stack.push_async_callback(registry.aclose)
        await registry.start(plans)


def _accepts(found: Match, want: str) -> bool:
    return found.leaf is not None and found.leaf.accepts(want)


async def _call_mount(
    found: Match, path: str, scope: AnyScope, receive: Receive, send: Send
) -> None:
    mount = found.mount
    if mount is None:
        return
    segments = path[1:].split("/")
    matched = "/" + "/".join(segments[: found.prefix_length]) if found.prefix_length else ""
    if found.raw:
        _set_path_params(scope, mount.template.convert(found.raw))
    root = scope.get("root_path", "")
    scope["app_root_path"] = scope.get("app_root_path", root)
    scope["path"] = full_path(scope)  # an already-stripped path: make it whole again
    scope["root_path"] = root + matched
    await mount.app(scope, receive, send)


def _prefixed(route: BaseRoute, prefix: str, options: dict[str, Any]) -> BaseRoute:
    """`route` built again under `prefix` with `options` added, keeping everything
    it was given (middleware included). `options` are for routes; a mount or host
    passes the request on to an app that has its own."""
    if not prefix and not options:
        return route
    if isinstance(route, Route):
        own = {**_settings(route), "status_code": route.status_code, **route.options}
        return Route(
            prefix + route.path,
            route.endpoint,
            methods=route.declared_methods,
            name=route.name,
            **_merged(own, options),
        )
    if isinstance(route, WebSocketRoute):
        own = {**_settings(route), **route.options}
        merged = _merged(own, options)
        return WebSocketRoute(prefix + route.path, route.endpoint, name=route.name, **merged)
    if isinstance(route, Mount):
        path = prefix + route.path
        return Mount(path, app=route.inner, name=route.name, middleware=route.middleware)
    if isinstance(route, Host) and prefix:
        # The router's routes all live under `prefix`, on that host too.
        return Host(route.host, Router([Mount(prefix, app=route.app)]), name=route.name)
    return route


#: Route settings that `include_router` adds to a route's own instead of replacing
#: them (FastAPI's rule): the router's go first, outside the route's.
_LISTS: Final = ("middleware", "dependencies")


def _settings(route: Route | WebSocketRoute) -> dict[str, Any]:
    return {"include_in_schema": route.include_in_schema, "middleware": route.middleware}


def _merged(own: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """A route's settings with `include_router`'s `options`: lists are joined, a
    route is in the schema only if both say so, anything else is replaced."""
    merged = {**own, **options}
    for key in _LISTS:
        if key in own and key in options:
            merged[key] = [*(options[key] or ()), *(own[key] or ())]
    if "include_in_schema" in options:
        merged["include_in_schema"] = own["include_in_schema"] and options["include_in_schema"]
    return merged


def request_response(func: Callable[..., Awaitable[Response]]) -> ASGIApp:
    """Wrap `func(request) -> Response` as an ASGI app (Starlette's helper)."""
    return compile_http_handler(func, None)
