"""End to end, as a new user would: real headless Chromium against `./musterctl up` on loopback.

Each test makes its own incident (an alert posted to the demo integration's ingest URL) so the
tests stand alone, in any order, on any xdist worker. What the pages must offer is the UI
contract: ids, labels and button names, not layout.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import LIVE_TIMEOUT_MS, PHONE, log_in_ui, screenshot, wait_live

pytestmark = pytest.mark.browser


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def status_of(server, number: int) -> str:
    response = server.api.get(f"/api/v1/incidents/{number}/")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def act(server, number: int, verb: str) -> None:
    response = server.api.post(f"/api/v1/incidents/{number}/{verb}/", json={})
    assert response.status_code == 200, response.text


def keep_marker(page) -> None:
    """Mark the window, so `assert_not_reloaded` can tell a live update from a reload."""
    page.evaluate("window.__musterNoReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__musterNoReload === true"), "the page was reloaded"


def test_every_page_asks_to_log_in_first(anonymous_page, server):
    page = anonymous_page
    page.goto("/incidents/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/incidents/$"))

    page.get_by_label("Username").fill(server.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("alert")).to_be_visible()

    log_in_ui(page, server.username, server.password)
    expect(page.locator("table#incident-list")).to_be_visible()


def test_a_new_incident_appears_live_and_opens(page, server):
    page.goto("/incidents/")
    expect(page.locator("table#incident-list")).to_be_visible()
    wait_live(page, "/ws/incidents/")
    keep_marker(page)

    summary = unique("Disk full on db-1")
    number = server.open_incident(summary)

    row = page.locator(f"#incident-{number}")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_have_attribute("data-status", "triggered")
    expect(row).to_contain_text(summary)
    assert_not_reloaded(page)

    # Someone acks it elsewhere (the API): the row follows, still without a reload.
    act(server, number, "acknowledge")
    expect(row).to_have_attribute("data-status", "acknowledged", timeout=LIVE_TIMEOUT_MS)
    assert_not_reloaded(page)

    row.locator(f'a[href="/incidents/{number}/"]').first.click()
    expect(page).to_have_url(re.compile(rf"/incidents/{number}/$"))
    expect(page.locator("#incident-status")).to_have_text("acknowledged")
    expect(page.get_by_text(summary).first).to_be_visible()


def test_acknowledge_with_the_button_then_resolve_from_the_war_room(page, server):
    number = server.open_incident(unique("Checkout latency is high"))
    page.goto(f"/incidents/{number}/")
    status = page.locator("#incident-status")
    expect(status).to_have_text("triggered")

    page.get_by_role("button", name="Acknowledge").click()
    expect(status).to_have_text("acknowledged", timeout=LIVE_TIMEOUT_MS)
    assert status_of(server, number) == "acknowledged"

    wait_live(page, "/ws/rooms/")
    keep_marker(page)
    room = page.locator("section#war-room")
    room.get_by_label("Message", exact=True).fill("/resolve")
    room.get_by_role("button", name="Send", exact=True).click()
    expect(room.locator("ol#room-messages")).to_contain_text("/resolve", timeout=LIVE_TIMEOUT_MS)
    expect(status).to_have_text("resolved", timeout=LIVE_TIMEOUT_MS)
    assert_not_reloaded(page)
    assert status_of(server, number) == "resolved"


def test_take_a_shift_as_an_override_in_two_clicks(page, server):
    dana = server.create_user(f"dana-{uuid.uuid4().hex[:6]}")
    schedule = server.create_schedule(unique("Primary on call"), [dana])
    # Next week: every shift there is in the future, so any of them can be taken.
    today = datetime.now(UTC).date()
    next_monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    page.goto(f"/oncall/schedules/{schedule}/?week={next_monday.isoformat()}")

    shifts = page.locator("button.shift")
    expect(shifts.first).to_be_visible()
    assert page.locator(".override").count() == 0
    shifts.first.click()  # click 1
    page.get_by_role("button", name="Take this shift").click()  # click 2
    expect(page.locator(".override").first).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    overrides = server.api.get("/api/v1/overrides/", params={"schedule": schedule})
    assert overrides.status_code == 200, overrides.text
    [override] = overrides.json()["results"]
    assert override["created_by"] == server.username
    me = server.api.get("/api/v1/me/").json()
    assert override["user"] == me["id"]


def test_postmortem_saves_and_exports_markdown_json_and_print(page, server):
    number = server.open_incident(unique("Payments API returns 500"))
    act(server, number, "acknowledge")
    act(server, number, "resolve")
    summary = unique("A bad deploy of payments broke card checkout for twelve minutes.")

    page.goto(f"/incidents/{number}/postmortem/")
    page.get_by_label("Summary").fill(summary)
    page.get_by_role("button", name="Save").click()
    page.goto(f"/incidents/{number}/postmortem/")  # saved, not just typed
    expect(page.get_by_label("Summary")).to_have_value(summary)

    base = f"/incidents/{number}/postmortem"
    links = {
        "Markdown": f"{base}/export.md",
        "JSON": f"{base}/export.json",
        "Printable page": f"{base}/print/",
    }
    for text, href in links.items():
        expect(page.get_by_role("link", name=text, exact=True)).to_have_attribute("href", href)

    markdown = follow_export(page, page.get_by_role("link", name="Markdown", exact=True))
    assert summary in markdown
    assert re.search(rf"#{number}\b", markdown), markdown[:2000]
    assert "timeline" in markdown.lower(), markdown[:2000]
    # The timeline's entries: the alert that opened it, the ack, the resolve, in order.
    assert markdown.lower().index("acknowledged") < markdown.lower().rindex("resolved")

    response = page.request.get(links["JSON"])
    assert response.status == 200
    document = response.json()
    assert summary in json.dumps(document)
    assert str(number) in json.dumps(document)

    page.goto(links["Printable page"])
    expect(page.locator("body")).to_contain_text(summary)


def follow_export(page, link) -> str:
    """Click an export link and return what it gave: a download's content, or the page's text
    when it opens in the browser (the contract names the URL, not the disposition)."""
    href = link.get_attribute("href")
    head = page.request.get(href)
    assert head.status == 200, f"{href}: {head.status}"
    if "attachment" in head.headers.get("content-disposition", ""):
        with page.expect_download() as download_info:
            link.click()
        path = download_info.value.path()
        return Path(path).read_text(encoding="utf-8")
    link.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    return page.locator("body").inner_text()


# --- screenshots of the main pages, phone and desktop -------------------------------------------


@pytest.fixture(scope="module")
def sample(server) -> dict[str, int]:
    """One incident (acknowledged, with a postmortem page) and one schedule to show."""
    number = server.open_incident("Screenshot: API error rate above 5%")
    act(server, number, "acknowledge")
    me = server.api.get("/api/v1/me/").json()
    schedule = server.create_schedule("Screenshot rotation", [me["id"]])
    return {"incident": number, "schedule": schedule}


MAIN_PAGES = {
    "incidents": "/incidents/",
    "incident": "/incidents/{incident}/",
    "postmortem": "/incidents/{incident}/postmortem/",
    "oncall": "/oncall/",
    "schedule-week": "/oncall/schedules/{schedule}/",
    "setup": "/setup/",
    "profile": "/profile/",
    "insights": "/insights/",
    "outbox": "/outbox/",
}


@pytest.mark.parametrize("name", MAIN_PAGES)
def test_screenshot_of_main_page(page, sample, name):
    path = MAIN_PAGES[name].format(**sample)
    response = page.goto(path)
    assert response is not None and response.status == 200, (
        f"{path}: HTTP {response.status if response else 'no response'}"
    )
    page.wait_for_load_state("networkidle")
    expect(page.locator("main#main")).to_be_visible()
    for saved in screenshot(page, name):
        assert saved.stat().st_size > 1000, saved
    assert not page.js_errors, f"uncaught JavaScript errors on {path}: {page.js_errors}"


@pytest.mark.parametrize("name", MAIN_PAGES)
def test_main_page_fits_a_phone_screen(page, sample, name):
    # Usable on a phone: wide content (tables, calendars) scrolls inside its own box; the page
    # itself never scrolls sideways.
    path = MAIN_PAGES[name].format(**sample)
    page.set_viewport_size(PHONE)
    response = page.goto(path)
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow}px wider than a {PHONE['width']}px phone screen"
