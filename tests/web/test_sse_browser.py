"""A real browser's `EventSource` against `EventSourceResponse` on the Levante server.

Headless Debian Chromium, driven by Playwright, opens the page of
`tests/apps/sse_app.py`: it receives events 1 to 3, the stream ends, the browser
reconnects after the ``retry`` delay by itself, sending ``Last-Event-ID: 3``, and
receives the event after it. Chromium comes from apt (`scripts/browser`), never
from ``playwright install``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.apps.sse_app import make_app
from tests.conftest import ROOT, Running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: `scripts/browser` exits with this when Chromium is missing and it is not root.
NEEDS_ROOT = 2
#: Milliseconds the page may take to show all four events: a deadline against a
#: hang, not a timing assertion (the reconnection itself waits 100 ms).
EVENTS_DEADLINE_MS = 30_000


def ensure_chromium() -> None:
    """Install Chromium with `scripts/browser` if missing; skip only without root."""
    if os.access(CHROMIUM, os.X_OK):
        return
    result = subprocess.run(
        [str(ROOT / "scripts" / "browser")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode == NEEDS_ROOT:
        pytest.skip(f"Chromium is not installed and installing it needs root: {result.stderr}")
    if result.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"scripts/browser failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


@pytest.fixture
def browser() -> Iterator[Browser]:
    ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.timeout(120)
def test_event_source_reconnects_with_last_event_id(
    browser: Browser, serve: Callable[..., Running]
) -> None:
    app = make_app()
    server = serve(app)
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("window.received.length >= 4", timeout=EVENTS_DEADLINE_MS)
    received: list[dict[str, Any]] = page.evaluate("window.received")
    shown = page.locator("#log li").all_inner_texts()
    page.close()

    assert received[:4] == [
        {"data": "event 1", "id": "1"},
        {"data": "event 2", "id": "2"},
        {"data": "event 3", "id": "3"},
        {"data": "resumed from 3", "id": "4"},
    ]
    assert shown[:4] == ["1: event 1", "2: event 2", "3: event 3", "4: resumed from 3"]
    # The server saw the first connection without the header, the reconnection with it.
    assert app.state.last_event_ids[:2] == [None, "3"]
