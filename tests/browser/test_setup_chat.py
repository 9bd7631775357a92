"""The setup page's chat section in real Chromium: an admin sends a Slack test message and
watches it go out. `./musterctl up` runs with Slack pointed at the Slack double
(tests/fakes/slack.py): its Celery threads deliver the outbox as a worker would."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.helpers.browser import LIVE_TIMEOUT_MS, screenshot
from tests.helpers.slack import SIGNING_SECRET

pytestmark = pytest.mark.browser

CHANNEL = "C0SETUPTEST"


@pytest.fixture(scope="module", autouse=True)
def fake_slack() -> Iterator[FakeSlack]:
    """The Slack double, and the server this module starts configured to post to it (autouse:
    before `server`)."""
    with FakeSlack() as fake, pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "SLACK_BOT_TOKEN", DEFAULT_TOKEN)
        patch.setitem(os.environ, "SLACK_SIGNING_SECRET", SIGNING_SECRET)
        patch.setitem(os.environ, "SLACK_API_BASE_URL", fake.api_url)
        yield fake


def test_admin_sends_a_slack_test_message_and_sees_it_sent(page, fake_slack):
    page.goto("/setup/")
    slack = page.locator("#chat-slack")
    expect(slack.locator("[data-configured]")).to_have_text("configured")
    expect(page.locator("#chat-mattermost [data-configured]")).to_have_text("not configured")

    slack.get_by_label("Channel id").fill("#general")  # a name, not an id
    slack.get_by_role("button", name="Send a test message").click()
    expect(page.locator("#chat-slack .field.invalid")).to_contain_text("not a Slack channel id")
    assert not fake_slack.posts

    page.locator("#chat-slack").get_by_label("Channel id").fill(CHANNEL)
    page.locator("#chat-slack").get_by_role("button", name="Send a test message").click()
    expect(page).to_have_url(re.compile(r"/setup/chat/posts/\d+/$"))
    # The page reloads itself until the post is settled.
    expect(page.locator("#chat-post-state")).to_have_text("sent", timeout=LIVE_TIMEOUT_MS)
    [post] = [p for p in fake_slack.posts if p.channel == CHANNEL]
    assert "Test message from Muster" in post.text

    page.get_by_role("link", name="Back to setup").click()
    expect(page.locator('#chat-slack [data-state="sent"]')).to_have_text("1")
    screenshot(page, "setup-chat")
    assert not page.js_errors, page.js_errors
