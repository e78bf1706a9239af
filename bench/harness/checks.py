"""Correctness before load: a server that is fast but wrong gets no number.

One request for an HTTP/1.1 scenario (status, content type and body checked);
20 requests through h2load that must negotiate h2c for HTTP/2; one text and one
binary echo for WebSocket. Each check returns None when it passes, otherwise the
reason, which the report shows in place of the numbers.
"""

from __future__ import annotations

import http.client
import re
import subprocess

from harness.scenarios import Scenario
from harness.targets import H2, HOST, WS


def check_scenario(scenario: Scenario, port: int) -> str | None:
    """The check that goes with `scenario`'s protocol."""
    if scenario.protocol == H2:
        return check_h2(port, scenario.path)
    if scenario.protocol == WS:
        return check_ws(port, scenario.path)
    return check_http(scenario, port)


def http_request(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 10
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def check_http(scenario: Scenario, port: int) -> str | None:
    if scenario.check is None:
        return None
    body = b"x" * scenario.body_size
    try:
        status, data, headers = http_request(port, scenario.method, scenario.path, body)
    except Exception as e:  # any failure is a failed check
        return f"{type(e).__name__}: {e}"
    return scenario.check(status, data, headers)


def check_h2(port: int, path: str) -> str | None:
    command = ["h2load", "-n", "20", "-c", "1", "-m", "1", f"http://{HOST}:{port}{path}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "h2load check timed out"
    except OSError as e:
        return f"h2load: {e}"
    text = out.stdout
    if "Application protocol: h2c" not in text:
        return "no h2c: " + " | ".join(text.strip().splitlines()[-3:])
    done = re.search(r"(\d+) succeeded", text)
    ok = re.search(r"status codes: (\d+) 2xx", text)
    if not done or int(done.group(1)) != 20 or not ok or int(ok.group(1)) != 20:
        lines = (line for line in text.splitlines() if line.startswith(("requests", "status")))
        return "h2 requests failed: " + " | ".join(lines)
    return None


def check_ws(port: int, path: str) -> str | None:
    try:
        from websockets.sync.client import connect

        with connect(f"ws://{HOST}:{port}{path}", open_timeout=5, close_timeout=2) as ws:
            ws.send("ping-check")
            got = ws.recv(timeout=5)
            if got != "ping-check":
                return f"echo mismatch {got!r}"
            ws.send(b"\x00\x01bin")
            got = ws.recv(timeout=5)
            if got != b"\x00\x01bin":
                return f"binary echo mismatch {got!r}"
    except Exception as e:  # any failure is a failed check
        return f"{type(e).__name__}: {e}"
    return None
