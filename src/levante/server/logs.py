"""Logging: uvicorn-style lines on stderr, or the user's `--log-config`.

Loggers: ``levante.error`` (server events and app errors) and ``levante.access``
(one line per request), both under ``levante``.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from pathlib import Path
from typing import Any

from levante.server.errors import ConfigError

TRACE = 5
logging.addLevelName(TRACE, "TRACE")


class LevelPrefixFormatter(logging.Formatter):
    """``INFO:     message``, coloured when the stream is a terminal (as uvicorn's)."""

    COLOURS = {
        TRACE: "\033[34m",
        logging.DEBUG: "\033[36m",
        logging.INFO: "\033[32m",
        logging.WARNING: "\033[33m",
        logging.ERROR: "\033[31m",
        logging.CRITICAL: "\033[91m",
    }

    def __init__(
        self, fmt: str | None = None, datefmt: str | None = None, use_colors: bool | None = None
    ) -> None:
        super().__init__(fmt or "%(levelprefix)s %(message)s", datefmt)
        self.use_colors = sys.stderr.isatty() if use_colors is None else use_colors

    def formatMessage(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(9)
        if self.use_colors:
            prefix = f"{self.COLOURS.get(record.levelno, '')}{prefix}\033[0m"
        record.__dict__["levelprefix"] = prefix
        return super().formatMessage(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's
    ``fields`` (the access log's client, method, path, status, bytes, duration)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


DEFAULT_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "levante.server.logs.LevelPrefixFormatter"},
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "levante": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "levante.error": {"level": "INFO"},
        "levante.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def configure(
    log_config: str | None, level: int, access_log: bool, log_format: str = "text"
) -> None:
    """Install the default configuration or the user's file, then apply the level."""
    if log_config is None:
        logging.config.dictConfig(_default_logging(log_format))
    else:
        _load_file(Path(log_config))
    if log_config is None or level != logging.INFO:
        for name in ("levante", "levante.error", "levante.access"):
            logging.getLogger(name).setLevel(level)
    if not access_log:
        access = logging.getLogger("levante.access")
        access.handlers = []
        access.propagate = False
        access.disabled = True


def _default_logging(log_format: str) -> dict[str, Any]:
    if log_format != "json":
        return DEFAULT_LOGGING
    settings: dict[str, Any] = json.loads(json.dumps(DEFAULT_LOGGING))
    settings["formatters"]["default"] = {"()": "levante.server.logs.JSONFormatter"}
    return settings


def _load_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"--log-config: no such file {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            logging.config.dictConfig(json.loads(path.read_text()))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    "--log-config with a YAML file needs PyYAML: pip install 'levante[yaml]'"
                ) from None
            logging.config.dictConfig(yaml.safe_load(path.read_text()))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"--log-config {str(path)!r} is not a valid configuration: {exc}"
        ) from exc
