"""Work that runs after the response has been sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec

from levante.web.concurrency import is_async_callable, run_in_threadpool

_P = ParamSpec("_P")


class BackgroundTask:
    """One call, made after the response is sent; `def` functions run in the thread pool."""

    __slots__ = ("args", "func", "is_async", "kwargs")

    def __init__(self, func: Callable[_P, Any], *args: _P.args, **kwargs: _P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async_callable(func)

    async def __call__(self) -> None:
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await run_in_threadpool(self.func, *self.args, **self.kwargs)


class BackgroundTasks(BackgroundTask):
    """Several calls run in order after the response; add them with `add_task`.

    A handler that declares a `BackgroundTasks` parameter gets one that runs
    after its response, whatever response it returns.
    """

    __slots__ = ("tasks",)

    def __init__(self, tasks: list[BackgroundTask] | None = None) -> None:
        self.tasks: list[BackgroundTask] = list(tasks or [])

    def add_task(self, func: Callable[_P, Any], *args: _P.args, **kwargs: _P.kwargs) -> None:
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        for task in self.tasks:
            await task()
