"""What the compiled build (mypyc, see setup.py) needs to know about a class.

`mypyc_attr` is read by mypyc when it compiles; a pure-Python install may not have
`mypy_extensions`, and then the decorator does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:

        def mypyc_attr(*args: object, **kwargs: object) -> Any:
            return lambda cls: cls


__all__ = ["mypyc_attr"]
