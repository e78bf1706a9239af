"""Headless Debian Chromium for the browser tests, driven by Playwright.

Chromium comes from apt (`scripts/browser`, which `scripts/test` runs first), never
from ``playwright install``, which downloads builds of its own.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import ROOT

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
#: Milliseconds a page may take to show what a test waits for: a deadline against
#: a hang, not a timing assertion.
PAGE_DEADLINE_MS = 30_000


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
