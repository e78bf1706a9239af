"""Running blocking code without blocking the event loop.

`def` handlers, sync iterators and sync background tasks run in one bounded
thread pool per process. The bound (40 threads, as AnyIO's default limiter and so
Starlette/FastAPI) keeps a burst of slow sync handlers from spawning threads without
limit; excess calls queue until a thread is free.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Threads for `def` handlers and other blocking calls (AnyIO's default is 40).
DEFAULT_THREAD_LIMIT = 40

_executor: ThreadPoolExecutor | None = None
_limit = DEFAULT_THREAD_LIMIT


def set_thread_limit(limit: int) -> None:
    """Set how many threads blocking calls may use (call before serving)."""
    global _executor, _limit
    if limit < 1:
        raise ValueError(f"thread limit must be at least 1, got {limit}")
    _limit = limit
    if _executor is not None:
        _executor.shutdown(wait=False)
        _executor = None


def thread_limit() -> int:
    """How many threads blocking calls may use (what `set_thread_limit` set last)."""
    return _limit


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_limit, thread_name_prefix="levante-web")
    return _executor


async def run_in_threadpool(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call `func` in the thread pool with the caller's context variables."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)


class _Exhausted(Exception):
    pass


def _next(iterator: Iterator[_T]) -> _T:
    try:
        return next(iterator)
    except StopIteration:
        raise _Exhausted from None


async def iterate_in_threadpool(iterable: Iterable[_T]) -> AsyncIterator[_T]:
    """Iterate a blocking iterable, one `next` per thread-pool call."""
    iterator = iter(iterable)
    while True:
        try:
            yield await run_in_threadpool(_next, iterator)
        except _Exhausted:
            return


def is_async_callable(obj: object) -> bool:
    """True for `async def` functions, also behind `functools.partial` or `__call__`."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return asyncio.iscoroutinefunction(obj) or (
        callable(obj) and asyncio.iscoroutinefunction(type(obj).__call__)
    )
