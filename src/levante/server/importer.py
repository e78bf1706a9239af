"""Find the app from a ``module:attribute`` string, with errors that say what is missing."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from levante.server.errors import AppImportError


def import_from_string(target: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted)."""
    module_name, _, attrs = target.partition(":")
    if not module_name or not attrs:
        raise AppImportError(
            f"Import string {target!r} must be in format '<module>:<attribute>', e.g. 'main:app'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and (
            module_name == missing or module_name.startswith(missing + ".")
        ):
            raise AppImportError(
                f"Could not import module {module_name!r} (module {missing!r} not found; "
                f"is --app-dir right? sys.path[0] is {sys.path[0]!r})"
            ) from None
        raise AppImportError(f"Error while importing module {module_name!r}: {exc}") from exc
    instance: Any = module
    for attr in attrs.split("."):
        try:
            instance = getattr(instance, attr)
        except AttributeError:
            raise AppImportError(
                f"Attribute {attrs!r} not found in module {module_name!r}"
            ) from None
    return instance


def load_app(target: Any, factory: bool) -> Any:
    """Return the ASGI app: imported from a string, called if it is a factory."""
    app = import_from_string(target) if isinstance(target, str) else target
    if factory:
        if not callable(app):
            raise AppImportError(f"--factory was given but {target!r} is not callable")
        try:
            app = app()
        except TypeError as exc:
            raise AppImportError(f"Error calling the app factory {target!r}: {exc}") from exc
    if not callable(app):
        raise AppImportError(f"{target!r} is not an ASGI app: it is not callable")
    return app
