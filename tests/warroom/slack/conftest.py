"""Slack's stand-in on loopback, and requests signed as Slack signs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.helpers.celery_tasks import SentTask, sent_tasks
from tests.helpers.slack import (
    BOB_SLACK,
    SIGNING_SECRET,
    block_actions,
    command_form,
    form_body,
    interactivity_body,
    json_body,
    signed_headers,
)
from warroom.slack import tasks

COMMANDS = "/slack/commands/"
EVENTS = "/slack/events/"
INTERACTIVITY = "/slack/interactivity/"
TASKS: dict[str, Callable[..., None]] = {
    tasks.COMMAND_TASK: tasks.slash_command,
    tasks.MENTION_TASK: tasks.app_mention,
    tasks.MESSAGE_TASK: tasks.channel_message,
    tasks.BUTTON_TASK: tasks.button_click,
}


@pytest.fixture
def fake_slack(db, settings) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
        settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
        settings.SLACK_API_BASE_URL = fake.api_url
        settings.PUBLIC_URL = "https://muster.example.com"
        yield fake


@pytest.fixture
def bob_on_slack(fake_slack, bob):
    return fake_slack.add_user(BOB_SLACK, "Bob@Example.com")


class Sent(list):
    """The tasks a request queued; `run()` runs the Slack app's ones as a worker would,
    afterwards (the chat outbox's deliveries are tested with the outbox)."""

    def run(self) -> None:
        for task in self:
            if task.name in TASKS:
                TASKS[task.name](*task.args)


@pytest.fixture
def post_signed(client, django_capture_on_commit_callbacks):
    """POST `body` to `path` signed as Slack signs (`secret=None`: unsigned; `age`: seconds
    old); return (response, the tasks it queued: not yet run)."""

    def post(path: str, body: bytes, content_type: str, *, headers=None, **signing: Any):
        extra = {**signed_headers(body, **signing), **(headers or {})}
        with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
            response = client.post(path, body, content_type=content_type, **extra)
        return response, Sent(sent)

    return post


@pytest.fixture
def slash(post_signed, fake_slack):
    """`/muster <text>` as Slack posts it: returns (response, queued tasks, response_url)."""

    def post(text: str, **form_fields: Any) -> tuple[Any, Sent, str]:
        url = fake_slack.response_url()
        form = command_form(text, url, **form_fields)
        response, sent = post_signed(COMMANDS, form_body(form), "application/x-www-form-urlencoded")
        return response, sent, url

    return post


@pytest.fixture
def event(post_signed, fake_slack):
    """POST an Events API payload signed; returns (response, queued tasks)."""

    def post(payload: Any, **signing: Any) -> tuple[Any, Sent]:
        return post_signed(EVENTS, json_body(payload), "application/json", **signing)

    return post


@pytest.fixture
def click(post_signed, fake_slack):
    """A click on the bot's button `action_id` with `value`, as Slack posts it: returns
    (response, queued tasks, response_url)."""

    def post(action_id: str, value: str, **fields: Any) -> tuple[Any, Sent, str]:
        url = fake_slack.response_url()
        body = interactivity_body(block_actions(action_id, value, url, **fields))
        response, sent = post_signed(INTERACTIVITY, body, "application/x-www-form-urlencoded")
        return response, sent, url

    return post


def sent_names(sent: list[SentTask]) -> list[str]:
    """The Slack app's tasks among `sent` (not the chat outbox's deliveries)."""
    return [task.name for task in sent if task.name in TASKS]
