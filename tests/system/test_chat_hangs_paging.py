"""Slack hangs, pages go out: a chat platform that answers nothing never holds a page back.

A real worker (`celery -A muster worker --pool threads --concurrency 4`, all three queues, as
deploy/ runs it) on the test's PostgreSQL and Redis; Twilio and Slack are their doubles in this
process. Slack carries out every chat.postMessage but answers none before the client's timeout
(a Slack that is slow, not down: the worst kind, since each call holds a thread for its whole
timeout). Six services post to six channels of their own, so six deliveries ask for Slack at
once, more than the worker has threads (before core.slots, four of them waited on Slack, and
the page waited 5.2 s for a thread). Then an incident opens that pages bob by SMS.

The page must reach Twilio while Slack still holds every call it was given: before the first
of them times out; and no more calls than MUSTER_CHAT_THREADS went to Slack meanwhile.
Ordering and counts, not a wall-clock figure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Role, User
from incidents import opening
from incidents.models import ChatChannelMode, Service, Source
from muster.celery import app as celery_app
from oncall.models import (
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    NotificationRule,
    ServicePolicy,
)
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.fakes.twilio import FakeTwilio
from tests.helpers.system import (
    database_url_of_tests,
    kill_group,
    require_postgresql,
    start_logged,
    wait_for,
)
from warroom.slack.client import TIMEOUT_SECONDS

TWILIO_SID = "AC" + "c1" * 16
TWILIO_TOKEN = "chat-hangs-auth-token"
OUR_NUMBER = "+15005550006"
BOB_PHONE = "+14155550301"
CHANNELS = 6  # chat deliveries asking for Slack at once: more than the worker's 4 threads
HANG_SECONDS = 60.0  # Slack's answer comes long after the client gave up (TIMEOUT_SECONDS)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTwilio, FakeSlack]]:
    twilio = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    with twilio, FakeSlack() as slack:
        yield twilio, slack


@pytest.fixture
def worker(transactional_db, fakes, tmp_path) -> Iterator[Path]:
    twilio, slack = fakes
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=settings.REDIS_URL,
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM_NUMBER=OUR_NUMBER,
        TWILIO_API_BASE_URL=twilio.url,
        SLACK_BOT_TOKEN=DEFAULT_TOKEN,
        SLACK_SIGNING_SECRET="s" * 32,
        SLACK_API_BASE_URL=slack.api_url,
        MUSTER_PUBLIC_URL="http://127.0.0.1:9",
        MUSTER_ALLOW_CONSOLE_DELIVERY="1",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "worker.log"
    process = start_logged(
        [
            *(sys.executable, "-m", "celery", "-A", "muster", "worker"),
            *("--pool", "threads", "--concurrency", "4"),
            *("--hostname", f"chathang-{os.getpid()}@%h", "--loglevel", "INFO"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
        ],
        env,
        log_path,
    )
    try:
        wait_for(
            lambda: " ready." in log_path.read_text(errors="replace") or process.poll() is not None,
            timeout=60,
            interval=0.05,
            what="the Celery worker to be ready",
        )
        assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
        yield log_path
    finally:
        kill_group(process)
        celery_app.control.purge()  # its retries with a countdown: no later test's worker runs them


def _paging_service(bob: User) -> Service:
    method = ContactMethod.objects.create(
        user=bob, kind=ContactKind.SMS, address=BOB_PHONE, verified_at=timezone.now()
    )
    NotificationRule.objects.create(
        user=bob, urgency="high", delay_minutes=0, contact_method=method
    )
    service = Service.objects.create(name="payments")
    policy = EscalationPolicy.objects.create(name="payments primary", repeat=0)
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    step.users.add(bob)
    ServicePolicy.objects.create(service=service, policy=policy)
    return service


def test_a_page_goes_out_while_slack_holds_every_call(fakes, worker, settings):
    require_postgresql()
    assert celery_app.conf.broker_url == settings.REDIS_URL
    twilio, slack = fakes
    settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
    settings.SLACK_API_BASE_URL = slack.api_url
    bob = User.objects.create_user("bob", "bob@example.com", "pw", role=Role.RESPONDER)
    paging = _paging_service(bob)
    chatty = [
        Service.objects.create(
            name=f"shop-{i}",
            slack_channel_mode=ChatChannelMode.SHARED,
            slack_channel=f"C0SHOP{i}",
        )
        for i in range(CHANNELS)
    ]
    slack.hang_next("chat.postMessage", HANG_SECONDS, processed=True, count=1000)

    for service in chatty:  # as processing opens them: the bot's work goes to the worker
        opening.open_incident(service, title="Cart errors", severity=3, source=Source.ALERT)
    wait_for(
        lambda: len(slack.calls_of("chat.postMessage")) >= settings.CHAT_THREADS,
        timeout=30,
        what="the worker's chat threads to be waiting on Slack",
    )
    first_hang = min(c.received_at for c in slack.calls_of("chat.postMessage"))

    incident = opening.open_incident(paging, title="Payments down", severity=1, source=Source.ALERT)

    def texted() -> list:
        return [
            r
            for r in twilio.requests
            if r.path.endswith("/Messages.json") and r.params.get("To") == [BOB_PHONE]
        ]

    wait_for(texted, timeout=3 * TIMEOUT_SECONDS + 30, what="bob's SMS at Twilio")
    sms_at = texted()[0].received_at
    held = len([c for c in slack.calls_of("chat.postMessage") if c.received_at < sms_at])
    assert held <= settings.CHAT_THREADS, f"{held} posts went to a hanging Slack at once"
    assert sms_at < first_hang + TIMEOUT_SECONDS, (
        f"incident {incident.number}'s page reached Twilio {sms_at - first_hang:.1f}s after "
        f"Slack began to hang ({held} posts waiting), after the client's {TIMEOUT_SECONDS}s "
        f"timeout: it waited for a thread held by a chat call\n"
        + worker.read_text(errors="replace")[-3000:]
    )
