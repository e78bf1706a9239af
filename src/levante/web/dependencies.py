"""Dependencies: `Depends(fn)` in a handler's signature, resolved per request or
once for the app's lifetime.

A dependency is a function (``def`` or ``async def``, plain or a generator that
yields once) whose own parameters are read like a handler's: path, query,
headers, cookies, body, the request, other dependencies. Its value is computed
once per request and shared by everything that asks for it (``use_cache=False``
asks for a fresh call). A generator's code after ``yield`` runs after the
response is sent, and sees the handler's exception if it raised.

``Depends(fn, scope="app")`` creates the value when the app starts (inside its
lifespan) and cleans it up at shutdown: a database pool, an HTTP client. Such a
dependency may only depend on other app-scoped ones.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

from levante.web.concurrency import run_in_threadpool

DependencyScope = Literal["request", "app"]


class Depends:
    """Marks a parameter (as its default or in `Annotated`) as the value of `dependency`."""

    __slots__ = ("dependency", "scope", "use_cache")

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: DependencyScope = "request",
    ) -> None:
        if scope not in ("request", "app"):
            raise ValueError(f"Depends(scope=...) is 'request' or 'app', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope: DependencyScope = scope

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        return f"{type(self).__name__}({name})"


class Security(Depends):
    """A `Depends` for a security scheme, with the OAuth2 scopes this use requires;
    the scheme reads them from a `SecurityScopes` parameter."""

    __slots__ = ("scopes",)

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        scopes: Sequence[str] | None = None,
        use_cache: bool = True,
    ) -> None:
        super().__init__(dependency, use_cache=use_cache)
        self.scopes = list(scopes or ())


class SecurityScopes:
    """The OAuth2 scopes required along the chain of `Security` dependencies that
    led to this one (`scopes`, and `scope_str` joined with spaces)."""

    __slots__ = ("scopes",)

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes = list(scopes or ())

    @property
    def scope_str(self) -> str:
        return " ".join(self.scopes)


# -- calling ---------------------------------------------------------------------


def call_kind(func: Callable[..., Any]) -> str:
    """'async', 'sync', 'async_gen' or 'sync_gen' for a function or a callable object."""
    target: Any = func
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target) or inspect.isclass(target)):
        target = type(target).__call__  # a callable object: its __call__ says
    if inspect.isasyncgenfunction(target):
        return "async_gen"
    if inspect.isgeneratorfunction(target):
        return "sync_gen"
    if inspect.iscoroutinefunction(target):
        return "async"
    return "sync"


async def enter(
    kind: str, func: Callable[..., Any], kwargs: dict[str, Any], stack: contextlib.AsyncExitStack
) -> Any:
    """Call `func` as its kind asks; a generator's cleanup goes on `stack`."""
    if kind == "async":
        return await func(**kwargs)
    if kind == "sync":
        return await run_in_threadpool(func, **kwargs)
    if kind == "async_gen":
        return await stack.enter_async_context(contextlib.asynccontextmanager(func)(**kwargs))
    manager = contextlib.contextmanager(func)(**kwargs)
    return await stack.enter_async_context(_ThreadedContext(manager))


class _ThreadedContext(contextlib.AbstractAsyncContextManager[Any]):
    """A sync generator dependency, stepped in the thread pool (its code may block)."""

    def __init__(self, manager: contextlib.AbstractContextManager[Any]) -> None:
        self.manager = manager

    async def __aenter__(self) -> Any:
        return await run_in_threadpool(self.manager.__enter__)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await run_in_threadpool(self.manager.__exit__, *exc_info)
