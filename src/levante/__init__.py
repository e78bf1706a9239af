"""Levante: a fast ASGI server (`levante.server`) and web framework (`levante.web`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from levante.server import run as run

__all__ = ["__version__", "run"]


def __getattr__(name: str) -> Any:
    # `levante.run` is the server's entry point; import it lazily so that
    # `import levante.web` never loads the server half.
    if name == "run":
        from levante.server import run

        return run
    raise AttributeError(f"module 'levante' has no attribute {name!r}")
