"""Dashboard fixtures: an HTTP client on the app, a real server in a thread, and headless
Chromium through Playwright.

Browser tests skip with a message when Playwright or ``/usr/bin/chromium`` is missing, and
fail instead when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dashboard_jobs
import pytest
from dashboard_helpers import LiveServer, TestClient

from onward import stores
from onward.dashboard import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Where browser tests save their screenshots: $ONWARD_SCREENSHOTS, else the test's tmp_path.
SCREENSHOTS_ENV = "ONWARD_SCREENSHOTS"


@pytest.fixture(autouse=True)
def _reset_jobs() -> Iterator[None]:
    dashboard_jobs.reset()
    yield
    dashboard_jobs.reset()


@pytest.fixture
def client(store: stores.Store) -> Iterator[TestClient]:
    """The dashboard over ``store`` (each backend), without a token."""
    with TestClient(create_app(store)) as c:
        yield c


@pytest.fixture
def live_server(store: stores.Store) -> Iterator[LiveServer]:
    server = LiveServer(create_app(store))
    yield server
    server.stop()


def _browser_unavailable(reason: str) -> None:
    message = f"browser tests need Playwright and Debian's Chromium: {reason} (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package, not a browser downloaded by Playwright).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while
    it is open, and later tests that call ``asyncio.run`` there would fail."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _browser_unavailable(f"cannot import playwright ({exc})")
    if not os.path.exists(CHROMIUM):
        _browser_unavailable(f"{CHROMIUM} is missing")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The folder browser tests save screenshots into."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
