"""The two halves meet only at ASGI: `levante.web` never imports `levante.server`,
and the server never imports the framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "levante"


def imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (SRC / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((str(path), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path), node.module))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("web", "levante.server"), ("server", "levante.web"), ("testing", "levante.server")],
)
def test_no_import_crosses_the_asgi_line(package, forbidden):
    crossing = [(p, m) for p, m in imported_modules(package) if m.startswith(forbidden)]
    assert crossing == []


def test_importing_the_framework_loads_no_server_module():
    code = (
        "import sys, levante.web, levante.web.routing, levante.web.responses;"
        "print([m for m in sys.modules if m.startswith('levante.server')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
