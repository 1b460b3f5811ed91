"""What the browser tests share: Debian's Chromium, launched by Playwright (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import refuse_in_fast_tier

CHROMIUM = os.environ.get("REELDB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def chromium():
    """A plain headless Chromium (no fake devices): for pages that only play and read."""
    refuse_in_fast_tier("a browser")
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()
