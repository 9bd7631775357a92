"""Hostile text and the Content-Security-Policy, in real Chromium (issue 13: L1, L2, L9).

The XSS and Markdown-injection corpus (tests/helpers/hostile.py) goes in as an alert's title,
labels, annotations and links, as a runbook, as chat messages and as a postmortem; each surface
that shows it is loaded once, and nothing may run (no `window.__pwned`, no changed title, no
dialog), no image may come from a host that was not allowed, and the page must raise no CSP
violation. Then every main page, the API docs and the admin's login are loaded once each: no
CSP violation, and each still works (the war room's websocket connects and a message appears).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from markdown_it import MarkdownIt
from playwright.sync_api import expect

from tests.helpers.browser import LIVE_TIMEOUT_MS, wait_live
from tests.helpers.hostile import ANNOTATIONS, CORPUS, LABELS
from tests.helpers.system import processed_results

pytestmark = pytest.mark.browser

ALLOWED_HOST = "graphs.invalid"  # in MUSTER_IMAGE_HOSTS; never resolves, so nothing is fetched
ALLOWED_IMAGE = f"http://{ALLOWED_HOST}/render/cpu.png"
TRACKER = "https://evil.example/pixel.png"

# Before any page script: collect CSP violations and what a payload would do.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


@pytest.fixture(scope="module", autouse=True)
def _image_hosts() -> Iterator[None]:
    """The server this module starts allows images from one host (autouse: before `server`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "MUSTER_IMAGE_HOSTS", ALLOWED_HOST)
        yield


@pytest.fixture
def watched(page):
    """The signed-in page, with CSP violations, console refusals and dialogs recorded."""
    page.context.add_init_script(WATCH)
    page.refusals = []
    page.dialogs = []
    page.on(
        "console",
        lambda m: page.refusals.append(m.text) if "Content Security Policy" in m.text else None,
    )

    def dialog(d) -> None:
        page.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    return page


def assert_clean(page, where: str) -> None:
    """Nothing ran, nothing was refused, no uncaught error."""
    assert page.evaluate("window.__pwned") is None, f"a payload ran on {where}"
    assert page.title() != "pwned", f"a payload ran on {where}"
    assert not page.dialogs, f"dialogs on {where}: {page.dialogs}"
    violations = page.evaluate("window.__cspViolations")
    assert not violations and not page.refusals, f"CSP on {where}: {violations} {page.refusals}"
    assert not page.js_errors, f"uncaught JavaScript errors on {where}: {page.js_errors}"


def script_policy(response) -> str:
    """The response's CSP script-src: only the site's own files, never inline or eval."""
    policy = response.headers.get("content-security-policy", "")
    [script_src] = [d.strip() for d in policy.split(";") if d.strip().startswith("script-src")]
    assert "unsafe" not in script_src, policy
    return script_src


def img_sources(page) -> list[str]:
    return page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('src'))")


def hostile_incident(server) -> int:
    """An incident whose alert, runbook, room and postmortem all carry the corpus."""
    summary = " / ".join(CORPUS)[:1000]
    links = [
        {"kind": "image", "url": TRACKER, "text": "pixel"},
        {"kind": "image", "url": ALLOWED_IMAGE, "text": "cpu"},
        {"kind": "graph", "url": "javascript:window.__pwned=1", "text": CORPUS[0]},
    ]
    response = httpx.post(
        server.generic_url,
        json={"summary": summary, "labels": LABELS, "annotations": ANNOTATIONS, "links": links},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    [result] = processed_results(server.api, server.generic_url, response, timeout=20)
    number = result["incident"]
    book = server.api.post(
        "/api/v1/runbooks/",
        json={"title": CORPUS[1], "body": "\n\n".join(CORPUS) + f"\n\n![pixel]({TRACKER})"},
    )
    assert book.status_code == 201, book.text
    room = server.api.get(f"/api/v1/incidents/{number}/room/").json()["id"]
    for text in CORPUS:
        said = server.api.post(f"/api/v1/rooms/{room}/messages/", json={"body": text})
        assert said.status_code == 201, said.text
    fields = {"summary": "\n\n".join(CORPUS), "impact": CORPUS[1], "root_cause": CORPUS[2]}
    saved = server.api.put(f"/api/v1/incidents/{number}/postmortem/", json=fields)
    assert saved.status_code == 200, saved.text
    for text in CORPUS[:5]:
        item = server.api.post(
            f"/api/v1/incidents/{number}/postmortem/action-items/", json={"description": text}
        )
        assert item.status_code == 201, item.text
    return number


def test_hostile_text_runs_nowhere(watched, server):
    page = watched
    number = hostile_incident(server)

    # The incident page: alert, runbook and the embedded war room, live.
    page.goto(f"/incidents/{number}/")
    wait_live(page, "/ws/rooms/")
    room = page.locator("section#war-room")
    live = f"live {uuid.uuid4().hex[:8]} {CORPUS[1]}"
    room.get_by_label("Message", exact=True).fill(live)
    room.get_by_role("button", name="Send", exact=True).click()
    expect(room.locator("ol#room-messages")).to_contain_text(live[:13], timeout=LIVE_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    expect(page.locator("#runbook")).to_contain_text("Injected heading")
    assert TRACKER not in img_sources(page) and ALLOWED_IMAGE in img_sources(page)
    assert_clean(page, "the incident page")

    # The war room's own page.
    page.goto(f"/rooms/incident/{number}/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_contain_text("Acknowledged by alice via SMS")
    assert TRACKER not in img_sources(page)
    assert_clean(page, "the war room page")

    # The printable postmortem (the HTML export), with its own, stricter policy.
    response = page.goto(f"/incidents/{number}/postmortem/print/")
    assert response is not None and script_policy(response) == "script-src 'none'"
    page.wait_for_load_state("networkidle")
    expect(page.locator("h1")).to_contain_text("<script>")
    assert img_sources(page) == []
    assert_clean(page, "the printable postmortem")

    # The Markdown export: rendered by a CommonMark renderer, the corpus makes nothing (but in
    # the free-text fields people write, which are Markdown, and are left out here).
    markdown = page.request.get(f"/incidents/{number}/postmortem/export.md").text()
    markdown = re.sub(r"\n## Summary\n.*\n## Action items\n", "\n", markdown, flags=re.S)
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & {"html_block", "html_inline", "image", "link_open"}, kinds
    assert len(re.findall(r"^# ", markdown, re.M)) == 1
    exported = page.request.get(f"/incidents/{number}/postmortem/export.json").json()
    assert exported["postmortem"]["summary"] == "\n\n".join(CORPUS)


MAIN_PAGES = (
    "/incidents/",
    "/oncall/",
    "/setup/",
    "/setup/runbooks/",
    "/setup/runbooks/new/",
    "/profile/",
    "/insights/",
    "/outbox/",
)


def test_every_page_passes_the_csp_and_still_works(watched, server):
    page = watched
    number = server.open_incident(f"CSP {uuid.uuid4().hex[:8]}")
    me = server.api.get("/api/v1/me/").json()
    schedule = server.create_schedule(f"CSP {uuid.uuid4().hex[:8]}", [me["id"]])
    more = (f"/incidents/{number}/postmortem/", f"/oncall/schedules/{schedule}/", "/admin/")
    for path in (*MAIN_PAGES, *more):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert script_policy(response) == "script-src 'self'", path
        page.wait_for_load_state("networkidle")
        assert_clean(page, path)

    # The incident page: its websockets are same-origin ('self' covers ws:), a message appears.
    page.goto(f"/incidents/{number}/")
    wait_live(page, "/ws/rooms/")
    room = page.locator("section#war-room")
    said = f"hello {uuid.uuid4().hex[:8]}"
    room.get_by_label("Message", exact=True).fill(said)
    room.get_by_role("button", name="Send", exact=True).click()
    expect(room.locator("ol#room-messages")).to_contain_text(said, timeout=LIVE_TIMEOUT_MS)
    assert_clean(page, "the incident page")

    # The API docs: Swagger UI with its own policy, showing the schema.
    response = page.goto("/api/v1/docs/")
    assert response is not None and script_policy(response) == "script-src 'self'"
    expect(page.locator(".swagger-ui .info")).to_contain_text("Muster API", timeout=15_000)
    assert_clean(page, "the API docs")

    # The admin's login, signed out.
    page.context.clear_cookies()
    response = page.goto("/admin/login/")
    assert response is not None and script_policy(response) == "script-src 'self'"
    expect(page.get_by_label("Username")).to_be_visible()
    assert_clean(page, "the admin's login")
