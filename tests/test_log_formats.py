"""--access-log-format (Apache-style atoms) and --log-format json, on a real server."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from levante.server.accesslog import atoms
from tests.apps.proc import Child, free_port

APP = "tests.apps.basic:app"


def test_apache_combined_format(start: Callable[..., Child]) -> None:
    port = free_port()
    fmt = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({content-type}o)s'
    child = start(APP, "--port", str(port), "--access-log-format", fmt)
    child.wait_line("Levante running on")
    httpx.get(
        f"http://127.0.0.1:{port}/path?x=1",
        headers={"referer": "http://r.example/", "user-agent": "probe/1"},
    )
    line = child.wait_line('"GET /path?x=1 HTTP/1.1"')
    assert line.startswith("INFO:     127.0.0.1 - - [")
    assert '"GET /path?x=1 HTTP/1.1" 200 ' in line
    assert line.rstrip().endswith('"http://r.example/" "probe/1" application/json')


def test_json_logs_carry_the_access_fields(start: Callable[..., Child]) -> None:
    port = free_port()
    child = start(APP, "--port", str(port), "--log-format", "json")
    child.wait_line('"message": "Levante running on')
    httpx.get(f"http://127.0.0.1:{port}/json-please", headers={"user-agent": "probe/2"})
    line = child.wait_line("/json-please")
    entry = json.loads(line)
    assert entry["logger"] == "levante.access"
    assert entry["level"] == "info"
    assert (entry["method"], entry["path"], entry["status"], entry["user_agent"]) == (
        "GET",
        "/json-please",
        200,
        "probe/2",
    )
    assert entry["bytes"] > 0 and entry["duration_ms"] >= 0
    for other in child.lines:
        if other.strip():
            json.loads(other)  # every line is JSON


def test_missing_atoms_and_headers_are_dashes() -> None:
    scope = {
        "client": None,
        "method": "GET",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
    }
    found = atoms(scope, 204, 0, [], 0.0015)
    assert (found["h"], found["b"], found["f"], found["{x-missing}i"], found["M"]) == (
        "-",
        "-",
        "-",
        "-",
        1,
    )


def test_a_format_that_cannot_be_filled_is_refused_at_start_up(start: Callable[..., Child]) -> None:
    child = start(APP, "--port", str(free_port()), "--access-log-format", "100% %(s)s")
    assert child.finish() == 1
    assert "--access-log-format '100% %(s)s'" in child.output
    assert "a literal % is %%" in child.output
