"""Debian's chromium driven by Playwright (never a downloaded browser), for the web page tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("DATAROOM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launched_chromium() -> Iterator:
    """A generator for a module-scoped ``browser`` fixture: the launched browser, closed afterwards."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make setup) for the browser tests")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def hub_login(page, hub_url: str, name: str, password: str) -> None:
    """Log in at the hub, then rest on its home page.

    A login lands on the spawn-pending page, whose script navigates to the user's server once it
    is up; a test that went elsewhere meanwhile could have its navigation cut short by that one
    (seen on a busy machine: ``page.goto`` gave no response). The home page navigates nowhere.
    """
    page.goto(f"{hub_url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("#login_submit")
    page.wait_for_load_state()
    page.goto(f"{hub_url}/hub/home")
    page.wait_for_load_state()
