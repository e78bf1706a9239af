"""What the compiled build (mypyc, see setup.py) needs from the modules it compiles.

`mypyc_attr` is read by mypyc when it compiles; a pure-Python install may not have
`mypy_extensions`, and then the decorator does nothing. `chained` stands for
``raise ... from ...``, whose ``from`` mypyc ignores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:

        def mypyc_attr(*args: object, **kwargs: object) -> Any:
            return lambda cls: cls


_E = TypeVar("_E", bound=BaseException)


def chained(error: _E, cause: BaseException | None) -> _E:
    """`error` with `cause` as its cause: ``raise chained(X(...), exc)`` is ``raise
    X(...) from exc``, and ``chained(X(...), None)`` hides the exception being
    handled, as ``from None`` does. The modules setup.py compiles use this: mypyc
    ignores the ``from`` of a raise statement."""
    error.__cause__ = cause  # also sets __suppress_context__, as `from` does
    return error


__all__ = ["chained", "mypyc_attr"]
