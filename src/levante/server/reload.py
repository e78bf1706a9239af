"""``--reload``: watch the source files with watchfiles and restart the worker when
one changes. The restart is the supervisor's rolling one: the new worker must
import the app and listen before the old one is stopped, so code that fails to
import (a syntax error while typing) leaves the previous process serving, and
its error is in the log."""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from levante.server.errors import ConfigError

if TYPE_CHECKING:
    from levante.server.config import Config

logger = logging.getLogger("levante.error")

#: Folders never watched: version control, caches, virtual environments.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".cache",
    }
)


def _globs(text: str) -> list[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


class SourceFilter:
    """Which changed paths count: matching an include glob, no exclude glob, and
    not inside an ignored folder."""

    def __init__(self, include: str, exclude: str) -> None:
        self.include = _globs(include) or ["*.py"]
        self.exclude = _globs(exclude)

    def __call__(self, change: Any, path: str) -> bool:
        parts = Path(path).parts
        if any(part in IGNORED_DIRS for part in parts):
            return False
        name = parts[-1] if parts else path
        if any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(path, g) for g in self.exclude):
            return False
        return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(path, g) for g in self.include)


def watched_dirs(config: Config) -> list[str]:
    dirs = _globs(config.reload_dir) if config.reload_dir else [os.getcwd()]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        raise ConfigError(f"--reload-dir: no such folder {', '.join(missing)}")
    return [os.path.abspath(d) for d in dirs]


class Watcher:
    """Calls `on_change(paths)` from a thread when watched files change."""

    def __init__(self, config: Config, on_change: Callable[[list[str]], None]) -> None:
        try:
            import watchfiles
        except ImportError:
            raise ConfigError("--reload needs watchfiles: pip install 'levante[reload]'") from None
        self._watchfiles = watchfiles
        self.dirs = watched_dirs(config)
        self.filter = SourceFilter(config.reload_include, config.reload_exclude)
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="levante-reload", daemon=True)

    def start(self) -> None:
        logger.info("Watching for changes in %s", ", ".join(self.dirs))
        self._thread.start()

    def _run(self) -> None:
        for changes in self._watchfiles.watch(
            *self.dirs, watch_filter=self.filter, stop_event=self._stop, debounce=200, step=50
        ):
            paths = sorted({os.path.relpath(path) for _, path in changes})
            self.on_change(paths)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
