"""The browser tests' pieces: a real `./musterctl up` on loopback and Debian's headless Chromium.

Playwright drives the system's Chromium (env MUSTER_CHROMIUM, else `chromium` on PATH); it never
downloads a browser. Playwright's sync API runs an asyncio event loop in the test's thread, where
Django's ORM refuses to run (SynchronousOnlyOperation): these tests set up their data over HTTP,
through the API and the ingest URLs, as a user's scripts would, and never touch the ORM.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.helpers.browser import (
    DESKTOP,
    RECORD_OPEN_SOCKETS,
    Server,
    api_client,
    chromium_executable,
    log_in_ui,
)
from tests.helpers.system import GENERIC_LINE, PASSWORD_LINE, log_in, musters


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """`./musterctl up` (embedded: daphne with websockets, Celery in threads) on a free port."""
    logs = tmp_path_factory.mktemp("muster-up")
    with musters(logs) as start:
        muster = start(logs / "data")
        username, password = muster.printed(PASSWORD_LINE).groups()
        generic_url = muster.printed(GENERIC_LINE).group(1)
        with httpx.Client(base_url=muster.base_url, timeout=10) as session:
            log_in(session, username, password)
            with api_client(muster.base_url, session) as api:
                yield Server(muster.base_url, username, password, generic_url, api, session)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, Debian's, driven by Playwright for this module's tests."""
    executable = chromium_executable()
    playwright = sync_playwright().start()
    try:
        # Root (CI, this container) cannot use Chromium's user-namespace sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=[*args, "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def anonymous_page(browser, server):
    """A fresh browser context (no cookies) at desktop size, its base URL the server."""
    context = browser.new_context(base_url=server.base_url, viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_OPEN_SOCKETS)
    page = context.new_page()
    page.js_errors = []  # uncaught errors, shown when a test fails
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(anonymous_page, server):
    """A browser page signed in as the demo admin through the login form."""
    log_in_ui(anonymous_page, server.username, server.password)
    return anonymous_page
