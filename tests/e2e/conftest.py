"""A real headless Chromium (Debian's package) driven by Playwright for Python.

Playwright's own browser download cannot work here, so the executable is
Debian's: ``PC_BROWSER`` or /usr/bin/chromium. The tests skip only outside CI
when no browser is installed, and say so; in CI a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _executable() -> str | None:
    candidate = os.environ.get("PC_BROWSER") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    executable = _executable()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium installed (apt-get install chromium); CI must run the browser tests")
        pytest.skip("no Chromium installed here (apt-get install chromium); the browser tests run in CI")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, tmp_path: Path):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots go (the README's come from here): var/screenshots."""
    path = Path(os.environ.get("PC_SCREENSHOTS", "var/screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path
