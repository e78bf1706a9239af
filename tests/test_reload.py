"""--reload: an edited module is served after a restart; code that does not import
leaves the previous process serving, and its error is in the log."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.apps.proc import Child, free_port

DEADLINE = 30.0
APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b'{{"version": {version}}}'}})
"""


def version(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            answer: int = json.loads(response.read())["version"]
            return answer
    except OSError:
        return None


def wait_for_version(port: int, want: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while version(port) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"version {want} was never served")
        time.sleep(0.05)


def serve_reloading(start: Callable[..., Child], folder: Path, *extra: str) -> tuple[Child, int]:
    """`reload_app.py` (version 1) in `folder`, served with --reload watching it."""
    (folder / "reload_app.py").write_text(APP.format(version=1))
    port = free_port()
    child = start(
        "reload_app:app",
        "--reload",
        "--reload-dir",
        str(folder),
        "--app-dir",
        str(folder),
        *extra,
        "--port",
        str(port),
        "--no-access-log",
    )
    child.wait_line("Watching for changes")
    wait_for_version(port, 1)
    return child, port


def test_edits_are_served_and_broken_code_keeps_the_old_process(
    start: Callable[..., Child], tmp_path: Path
) -> None:
    child, port = serve_reloading(start, tmp_path)
    module = tmp_path / "reload_app.py"

    module.write_text(APP.format(version=2))
    child.wait_line("reload_app.py; reloading", DEADLINE)
    wait_for_version(port, 2)

    module.write_text("async def app(scope, receive, send:\n")  # a syntax error
    child.wait_line("did not start; keeping the old one", DEADLINE)
    assert (
        "SyntaxError" in child.output
        or "invalid syntax" in child.output
        or "was never closed" in child.output
    )
    assert version(port) == 2

    module.write_text(APP.format(version=3))
    wait_for_version(port, 3)


def test_files_outside_the_include_globs_do_not_reload(
    start: Callable[..., Child], tmp_path: Path
) -> None:
    child, _ = serve_reloading(start, tmp_path, "--reload-exclude", "skip_*.py")
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "skip_me.py").write_text("x = 1\n")
    (tmp_path / "marker.py").write_text(
        "x = 1\n"
    )  # this one counts: its reload shows the others did not
    child.wait_line("reloading", DEADLINE)
    reloads = [line for line in child.lines if "reloading" in line]
    assert len(reloads) == 1 and "marker.py" in reloads[0]
    assert "notes.txt" not in reloads[0] and "skip_me.py" not in reloads[0]
