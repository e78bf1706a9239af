"""A real browser's `EventSource` against `EventSourceResponse` on the Levante server.

Headless Debian Chromium, driven by Playwright, opens the page of
`tests/apps/sse_app.py`: it receives events 1 to 3, the stream ends, the browser
reconnects after the ``retry`` delay by itself, sending ``Last-Event-ID: 3``, and
receives the event after it. Chromium comes from apt (`scripts/browser`), never
from ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.apps.sse_app import make_app
from tests.browser import PAGE_DEADLINE_MS, browser
from tests.conftest import Running

__all__ = ["browser"]  # the fixture


@pytest.mark.timeout(120)
def test_event_source_reconnects_with_last_event_id(
    browser: Browser, serve: Callable[..., Running]
) -> None:
    app = make_app()
    server = serve(app)
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("window.received.length >= 4", timeout=PAGE_DEADLINE_MS)
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
