"""Swagger UI from the running example app in headless Chromium, with the network
limited to loopback: the operations render and "Try it out" on a GET answers 200."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.apps.typed_app import app
from tests.browser import PAGE_DEADLINE_MS, browser
from tests.conftest import Running

__all__ = ["browser"]  # the fixture


def loopback_only_page(browser: Browser, origin: str, refused: list[str]) -> Page:
    """A page whose requests to anything but `origin` are refused (and listed)."""

    def only_loopback(route: Route) -> None:
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page = browser.new_page()
    page.route("**/*", only_loopback)
    return page


@pytest.mark.timeout(120)
def test_swagger_ui_renders_and_tries_a_get_operation(
    browser: Browser, serve: Callable[..., Running], tmp_path: Path
) -> None:
    server = serve(app)
    refused: list[str] = []
    page = loopback_only_page(browser, server.url, refused)
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=PAGE_DEADLINE_MS)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    page.screenshot(path=str(tmp_path / "swagger-ui.png"), full_page=True)
    assert {"/items", "/items/{item_id}", "/search", "/users", "/upload"} <= set(paths)

    operation = page.locator("#operations-items-get_item_items__item_id__get")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("input[placeholder='item_id']").fill("1")
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=PAGE_DEADLINE_MS)
    page.screenshot(path=str(tmp_path / "swagger-ui-try-it-out.png"), full_page=True)
    assert status.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table .microlight").first.inner_text()
    assert '"name": "pen"' in body
    assert (tmp_path / "swagger-ui.png").stat().st_size > 0
    assert refused == []


@pytest.mark.timeout(120)
def test_redoc_renders_the_operations_offline(
    browser: Browser, serve: Callable[..., Running], tmp_path: Path
) -> None:
    server = serve(app)
    refused: list[str] = []
    page = loopback_only_page(browser, server.url, refused)
    page.goto(server.url + "/redoc")
    page.wait_for_selector("h1", timeout=PAGE_DEADLINE_MS)
    page.wait_for_function(
        "document.body.innerText.includes('Get one item')", timeout=PAGE_DEADLINE_MS
    )
    page.screenshot(path=str(tmp_path / "redoc.png"))
    assert "Example API" in page.locator("h1").first.inner_text()
    # ReDoc's script is the app's; what it asks of other hosts (web fonts) was refused
    # above, and the page rendered all the same.
    assert all(not url.startswith(server.url) for url in refused)
