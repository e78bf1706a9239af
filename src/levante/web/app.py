"""`App`: a router with lifespan, middleware, exception handlers and debug mode."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from levante.asgi import AnyScope, ASGIApp, Receive, Send
from levante.web.apidocs import add_documentation_routes
from levante.web.asyncapi import asyncapi_document
from levante.web.errors import ServerErrorMiddleware
from levante.web.handlers import HANDLERS_KEY, ExceptionHandler, HandlerTables
from levante.web.lifespan import Lifespan
from levante.web.openapi import openapi_document
from levante.web.plain import State, URLPath
from levante.web.routing import BaseRoute, Decorated, Router

StateT = TypeVar("StateT")

ExceptionKey = int | type[BaseException]


def _split_handlers(
    handlers: Mapping[ExceptionKey, ExceptionHandler],
) -> tuple[ExceptionHandler | None, HandlerTables]:
    """(the server-error handler, the tables for everything else).

    `500` and `Exception` stay out of the tables: a route-level handler for
    `Exception` would swallow every error (never logged, no debug page), so
    they go to `ServerErrorMiddleware`, as in Starlette. `HTTPException(500)`
    is then answered by the default HTTP handler, as there too.
    """
    error_handler = None
    by_status: dict[int, ExceptionHandler] = {}
    by_class: dict[type[BaseException], ExceptionHandler] = {}
    for key, handler in handlers.items():
        if key in (500, Exception):
            error_handler = handler
        elif isinstance(key, int):
            by_status[key] = handler
        else:
            by_class[key] = handler
    return error_handler, (by_status, by_class)


class App(Generic[StateT]):
    """An ASGI app made of routes.

    - `lifespan(app)` is an async context manager factory; what it yields is the
      lifespan state (type it with ``App[MyState]``): a mapping is merged into the
      ASGI state, any other object is reachable as `request.lifespan_state` and by
      attribute on `request.state`. Mounted apps' lifespans run inside it.
    - `exception_handlers` maps a status code or an exception class to
      `handler(request, exc) -> Response` (sync or async). They answer what any
      route raises, handler, raw ASGI endpoint or mounted app, until the response
      has started. `500` and `Exception` both name the server-error handler (the
      one registered last wins): it answers errors nothing else took, and the
      error is still re-raised for the server to log (Starlette's rule).
    - `debug=True` answers unhandled errors with a traceback page, even with a
      server-error handler.
    - `middleware` is a list of `Middleware(cls, **options)`, outermost first.
    - `dependencies` are `Depends(...)` run before every handler, for their
      effects; `dependency_overrides` replaces a dependency (in tests).
    - `title`, `version`, `description`, `openapi_tags`, `servers` describe the API
      in its OpenAPI document at `openapi_url`, shown by Swagger UI at `docs_url`
      and ReDoc at `redoc_url`; WebSocket and SSE routes are in the AsyncAPI
      document at `asyncapi_url`. None for a URL leaves that out.
    """

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        *,
        debug: bool = False,
        middleware: Sequence[Any] | None = None,
        exception_handlers: Mapping[ExceptionKey, ExceptionHandler] | None = None,
        lifespan: Lifespan | None = None,
        redirect_slashes: bool = True,
        dependencies: Sequence[Any] | None = None,
        title: str = "Levante",
        version: str = "0.1.0",
        description: str | None = None,
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        asyncapi_url: str | None = "/asyncapi.json",
        openapi_tags: list[dict[str, Any]] | None = None,
        servers: list[dict[str, Any]] | None = None,
    ) -> None:
        self.debug = debug
        self.title, self.version, self.description = title, version, description
        self.openapi_url, self.docs_url, self.redoc_url = openapi_url, docs_url, redoc_url
        self.asyncapi_url = asyncapi_url
        self.openapi_tags = openapi_tags
        self.servers = servers
        self._documents: dict[tuple[str, int], dict[str, Any]] = {}
        self.state = State()
        #: Replacements for dependencies, by the function the handlers name (for
        #: tests): ``app.dependency_overrides[get_db] = fake_db``.
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.router = Router(
            routes, redirect_slashes=redirect_slashes, lifespan=lifespan, dependencies=dependencies
        )
        self.router.owner = self
        self.user_middleware: list[Any] = list(middleware or [])
        self.exception_handlers: dict[ExceptionKey, ExceptionHandler] = dict(
            exception_handlers or {}
        )
        self._stack: ASGIApp | None = None
        self._tables: HandlerTables = ({}, {})
        add_documentation_routes(self)

    # -- documents -------------------------------------------------------------

    def openapi(self, root_path: str = "") -> dict[str, Any]:
        """The app's OpenAPI 3.1 document (made once per set of routes)."""
        key = (root_path, len(self.routes))
        document = self._documents.get(key)
        if document is None:
            servers = self.servers or ([{"url": root_path}] if root_path else None)
            document = openapi_document(
                self.routes,
                title=self.title,
                version=self.version,
                description=self.description,
                servers=servers,
                tags=self.openapi_tags,
            )
            self._documents[key] = document
        return document

    def asyncapi(
        self, host: str = "localhost", root_path: str = "", secure: bool = False
    ) -> dict[str, Any] | None:
        """The AsyncAPI 3.0 document of the WebSocket and SSE routes (None if none)."""
        return asyncapi_document(
            self.routes,
            title=self.title,
            version=self.version,
            description=self.description,
            host=host,
            root_path=root_path,
            secure=secure,
        )

    # -- building --------------------------------------------------------------

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    def build_middleware_stack(self) -> ASGIApp:
        """ServerErrorMiddleware(user middleware(router)); the routes answer exceptions
        with the tables the app leaves in the scope."""
        error_handler, self._tables = _split_handlers(self.exception_handlers)
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)

    def _changed(self) -> None:
        if self._stack is not None:
            raise RuntimeError("cannot change middleware or handlers after the app has started")

    def add_middleware(self, cls: Callable[..., ASGIApp], *args: Any, **kwargs: Any) -> None:
        """Add a middleware outside the ones already added (before the app starts)."""
        self._changed()
        self.user_middleware.insert(0, (cls, args, kwargs))

    def add_exception_handler(self, key: ExceptionKey, handler: ExceptionHandler) -> None:
        self._changed()
        self.exception_handlers[key] = handler

    def exception_handler(
        self, key: ExceptionKey
    ) -> Callable[[ExceptionHandler], ExceptionHandler]:
        def decorate(handler: ExceptionHandler) -> ExceptionHandler:
            self.add_exception_handler(key, handler)
            return handler

        return decorate

    # -- routes (the router's) -----------------------------------------------------

    def route(self, path: str, methods: Iterable[str] | None = None, **options: Any) -> Decorated:
        return self.router.route(path, methods=methods, **options)

    def get(self, path: str, **options: Any) -> Decorated:
        return self.router.get(path, **options)

    def post(self, path: str, **options: Any) -> Decorated:
        return self.router.post(path, **options)

    def put(self, path: str, **options: Any) -> Decorated:
        return self.router.put(path, **options)

    def patch(self, path: str, **options: Any) -> Decorated:
        return self.router.patch(path, **options)

    def delete(self, path: str, **options: Any) -> Decorated:
        return self.router.delete(path, **options)

    def options(self, path: str, **options: Any) -> Decorated:
        return self.router.options(path, **options)

    def head(self, path: str, **options: Any) -> Decorated:
        return self.router.head(path, **options)

    def websocket(self, path: str, **options: Any) -> Decorated:
        return self.router.websocket(path, **options)

    def add_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self.router.add_route(path, endpoint, **options)

    def add_websocket_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self.router.add_websocket_route(path, endpoint, **options)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.router.mount(path, app, name)

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        self.router.host(host, app, name)

    def include_router(self, router: Router, prefix: str = "", **options: Any) -> None:
        self.router.include_router(router, prefix, **options)

    def url_path_for(self, name: str, /, **params: Any) -> URLPath:
        return self.router.url_path_for(name, **params)

    # -- serving -------------------------------------------------------------------

    async def __call__(self, scope: AnyScope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        stack = self._stack
        if stack is None:
            stack = self._stack = self.build_middleware_stack()
        scope[HANDLERS_KEY] = self._tables
        if "state" not in scope:
            fallback = self.router.lifespan_runner().state
            if fallback is not None:
                scope["state"] = dict(fallback)
        await stack(scope, receive, send)
