"""The optional compiled build: the hot modules compiled with mypyc.

Everything else about the package is in pyproject.toml. A normal install
(``pip install levante``, ``pip install .``, a wheel) compiles the modules in
`COMPILED` to C extensions, which Python imports in place of the .py files
beside them; the pure-Python modules stay in the package as the fallback.

- ``LEVANTE_COMPILE=0`` builds pure Python; ``LEVANTE_COMPILE=1`` compiles even
  an editable install (``pip install -e .``), which is otherwise left pure so
  that an edited module is what runs, not an older compiled copy of it.
- If compiling fails (no C compiler, an unsupported Python), the build goes on
  without the extensions and says so: the package works, slower.

``python -c "import levante.server as s; print(s.compiled())"`` tells which
build is installed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: The modules every request runs through (profiled in docs/benchmarks.md). Not
#: protocols/http2.py: compiled, it served HTTP/2 at less than half the speed of the
#: source (h2load, 50 000 against 115 000 requests/s), so it stays Python.
COMPILED = [
    "src/levante/server/connection.py",
    "src/levante/server/flow.py",
    "src/levante/server/stream.py",
    "src/levante/server/websocket.py",
    "src/levante/server/protocols/http1.py",
    "src/levante/server/protocols/websocket.py",
    "src/levante/server/state.py",
    # The framework's request path: routing, the handler plan, the error layer and
    # the values a request is read into. Their public classes allow Python
    # subclasses; `responses` and `requests` stay Python (apps subclass `Response`
    # and override class attributes such as `media_type`, which a compiled class
    # would not see), as does `plain` (a `str` subclass, arbitrary attributes).
    "src/levante/web/convertors.py",
    "src/levante/web/datastructures.py",
    "src/levante/web/errors.py",
    "src/levante/web/handlers.py",
    "src/levante/web/plans.py",
    "src/levante/web/routing.py",
]


class OptionalBuildExt(build_ext):
    """Build the extensions if possible; otherwise keep the pure-Python package.

    All or none: each compiled module is a small extension that imports one shared
    library, so a module built without that library would fail at import. On any
    failure every extension already built is removed and the .py files serve.
    """

    def build_extensions(self) -> None:
        try:
            super().build_extensions()
        except Exception as exc:  # any compiler failure means: stay pure
            for ext in self.extensions:
                path = self.get_ext_fullpath(ext.name)
                if os.path.exists(path):
                    os.remove(path)
            print(f"levante: not compiled ({exc}); installing the .py modules", file=sys.stderr)


def _wanted() -> bool:
    setting = os.environ.get("LEVANTE_COMPILE", "").strip().lower()
    if setting in ("0", "no", "false"):
        return False
    if setting in ("1", "yes", "true"):
        return True
    editable = any(arg in ("editable_wheel", "develop") for arg in sys.argv)
    return not editable and sys.implementation.name == "cpython"


def _extensions() -> list[Any]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"levante: not compiled (mypyc unavailable: {exc})", file=sys.stderr)
        return []
    try:
        return list(mypycify(COMPILED, group_name="levante_compiled"))
    except (Exception, SystemExit) as exc:  # a type error must not break the install
        print(f"levante: not compiled (mypyc failed: {exc})", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
