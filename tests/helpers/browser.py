"""The browser tests' helpers: Debian's Chromium, the `./musterctl up` server they drive, and
what a person does in a page (sign in, wait for live updates, take screenshots).

Playwright's sync API runs an asyncio event loop in the test's thread, where Django's ORM refuses
to run: these helpers set data up over HTTP, through the API and the ingest URLs.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers.system import ROOT, processed_results

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# How long a live update may take to show: websocket, channel layer, a worker thread.
LIVE_TIMEOUT_MS = 15_000


def chromium_executable() -> str:
    """Return the system Chromium to drive; fail (never skip) with how to get one."""
    path = os.environ.get("MUSTER_CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            "the browser tests need Debian's Chromium: `apt-get install chromium` (.ci/run "
            "installs it), or point MUSTER_CHROMIUM at a Chromium binary. Playwright's own "
            "browser download is not used."
        )
    return path


@dataclass
class Server:
    """A running `./musterctl up`: where it is, its demo admin, and HTTP clients for set-up."""

    base_url: str
    username: str
    password: str
    generic_url: str
    api: httpx.Client  # the demo admin's API token
    session: httpx.Client  # the demo admin signed in with a session (for the admin site)

    def open_incident(self, summary: str, severity: str = "critical") -> int:
        """Post an alert to the demo generic integration; return the incident it opened."""
        response = httpx.post(
            self.generic_url,
            json={"summary": summary, "severity": severity, "labels": {"host": "web-1"}},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        [result] = processed_results(self.api, self.generic_url, response, timeout=20)
        assert result["action"] == "opened", result
        return result["incident"]

    def create_user(self, username: str) -> int:
        """Add a responder through the admin site's form, as an admin would; return their id."""
        form = self.session.get("/admin/accounts/user/add/")
        assert form.status_code == 200, form.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, "the admin's add-user form has no CSRF token"
        password = uuid.uuid4().hex
        response = self.session.post(
            "/admin/accounts/user/add/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "usable_password": "true",
                "password1": password,
                "password2": password,
                "_save": "Save",
            },
        )
        assert response.status_code == 302, f"add user failed: {response.text[:2000]}"
        users = self.api.get("/api/v1/users/", params={"page_size": 200})
        assert users.status_code == 200, users.text
        [user] = [u for u in users.json()["results"] if u["username"] == username]
        return user["id"]

    def create_schedule(self, name: str, participants: list[int]) -> int:
        """Create a schedule with a daily rotation of `participants` from this week's Monday."""
        response = self.api.post("/api/v1/schedules/", json={"name": name, "time_zone": "UTC"})
        assert response.status_code == 201, response.text
        schedule = response.json()["id"]
        today = datetime.now(UTC).date()
        monday = today - timedelta(days=today.weekday())
        response = self.api.post(
            "/api/v1/layers/",
            json={
                "schedule": schedule,
                "name": "Primary",
                "rotation": "daily",
                "start": f"{monday.isoformat()}T09:00:00",
                "participants": participants,
            },
        )
        assert response.status_code == 201, response.text
        return schedule


def api_client(base_url: str, session: httpx.Client) -> httpx.Client:
    """Create an API token with the signed-in session (CSRF header and all); return a client
    that sends it."""
    response = session.post(
        "/api/v1/tokens/",
        json={"name": "browser tests"},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": base_url + "/"},
    )
    assert response.status_code == 201, response.text
    secret = response.json()["token"]
    return httpx.Client(
        base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {secret}"}
    )


# Remembers the path of every websocket once it is open, so a test can wait until a page is live
# (subscribed to its updates) before changing what it shows, as a person glances at the page.
RECORD_OPEN_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__musterOpenSockets = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("open", () => window.__musterOpenSockets.push(new URL(url).pathname));
    }
  };
})();
"""


def wait_live(page, path_prefix: str) -> None:
    """Wait until the page has a websocket open on a path starting with `path_prefix`."""
    page.wait_for_function(
        "prefix => window.__musterOpenSockets.some(p => p.startsWith(prefix))",
        arg=path_prefix,
        timeout=LIVE_TIMEOUT_MS,
    )


def log_in_ui(page, username: str, password: str) -> None:
    """Sign in on /login/ as a person would: labels, typing, the button."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/incidents/$"))


def screenshot(page, name: str) -> list[Path]:
    """Save the current page at phone and desktop sizes to test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{size_name}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    page.set_viewport_size(DESKTOP)
    return saved
