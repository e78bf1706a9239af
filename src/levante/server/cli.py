"""The ``levante`` command: its flags are generated from `Config`'s fields."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from levante import __version__
from levante.server.config import ENV_PREFIX, Config, base_type, fields, optional
from levante.server.errors import AppImportError, ConfigError, LifespanFailure
from levante.server.main import (
    STARTUP_FAILURE,
    exit_watchdog,
    prepare,
    run_server,
    uses_supervisor,
)

logger = logging.getLogger("levante.error")


def build_parser() -> argparse.ArgumentParser:
    """One flag per `Config` field: ``--field-name``, bools as ``--x/--no-x``."""
    parser = argparse.ArgumentParser(
        prog="levante",
        description="Serve an ASGI (or WSGI) app over HTTP/1.1. Every flag can also be set with "
        f"an environment variable {ENV_PREFIX}<FLAG_NAME>, e.g. {ENV_PREFIX}PORT=9000.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"levante {__version__}")
    for f, hint in fields():
        env = ENV_PREFIX + f.name.upper()
        help_text = f"{f.metadata['help']} [env: {env}]".replace("%", "%%")  # argparse %-formats
        if f.name == "app":
            parser.add_argument(
                "app", nargs="?", default=argparse.SUPPRESS, metavar="APP", help=help_text
            )
            continue
        kind = base_type(hint)
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "help": help_text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _none_or(kind) if optional(hint) else kind
            if f.metadata.get("metavar"):
                kwargs["metavar"] = f.metadata["metavar"]
            choices = getattr(hint, "__args__", None)
            if hint is not kind and choices and all(isinstance(c, str) for c in choices):
                kwargs["choices"] = choices
        parser.add_argument(flag, **kwargs)
    return parser


def _none_or(kind: Any) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() in ("", "none") else kind(text)

    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def parse_config(argv: Sequence[str] | None = None) -> Config:
    """The `Config` from command-line flags, then ``LEVANTE_*``, then defaults."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    given = _explicit(parser, argv)
    values = {name: value for name, value in vars(namespace).items() if name in given}
    config = Config.resolve(values)
    if config.app is None:
        parser.error(f"the APP argument is required (module:attribute), or set {ENV_PREFIX}APP")
    return config


def _explicit(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    # Which settings were typed on the command line: parse again with every
    # default suppressed, so environment variables can fill in the rest.
    quiet = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:  # argparse has no public way to copy actions
        if action.dest in ("help", "version"):
            continue
        quiet._add_action(_suppressed(action))
    return set(vars(quiet.parse_known_args(argv)[0]))


def _suppressed(action: argparse.Action) -> argparse.Action:
    clone = argparse.Action.__new__(type(action))
    clone.__dict__.update(action.__dict__)
    clone.default = argparse.SUPPRESS
    return clone


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``levante`` command; returns the exit status."""
    try:
        config = parse_config(argv)
        prepare(config)
        if uses_supervisor(config):
            from levante.server.supervisor import Supervisor

            return Supervisor(config).run()
        run_server(config)
        exit_watchdog(0)
    except AppImportError as exc:
        _report("Error loading ASGI app", exc)
        return 1
    except ConfigError as exc:
        _report("Error", exc)
        return 1
    except LifespanFailure as exc:
        logger.error("Application startup failed: %s", exc)
        logger.error("Exiting.")
        return STARTUP_FAILURE
    except KeyboardInterrupt:
        return 0
    return 0


def _report(what: str, exc: BaseException) -> None:
    print(f"{what}: {exc}", file=sys.stderr)
    if exc.__cause__ is not None:
        traceback.print_exception(exc.__cause__, file=sys.stderr)
