"""A third party hangs, pages go out: neither a chat platform nor a paging provider that
answers nothing takes every thread of a worker (core.slots, core.pools).

A real worker (`celery -A muster worker --pool threads --concurrency 4`, all three queues, as
deploy/ runs it) on the test's PostgreSQL and Redis; Twilio and Slack are their doubles in this
process. The hanging party carries out what it is asked but answers nothing before the client's
timeout (slow, not down: the worst kind, since each call holds a thread for its whole timeout),
and is asked by more tasks at once than the worker has threads.

- Slack: six services post to six channels of their own (before core.slots, four deliveries
  waited on Slack, and a page waited 5.2 s for a thread). Then an incident pages bob by SMS:
  it must reach Twilio before the first Slack call times out.
- Twilio: one incident pages six people by SMS at once (before core.pools, four deliveries
  waited on Twilio for its whole timeout on the worker's four task threads). Then another
  pages carol by email (the console outbox here): it must be written before the first Twilio
  call times out.

In both, no more calls than the party's threads went to it meanwhile. Ordering and
counts, not a wall-clock figure.
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
    OutboxKind,
    OutboxMessage,
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
PEOPLE = 6  # SMS pages due at once: more than the worker's 4 task threads
TWILIO_THREADS = 2  # the worker's MUSTER_PAGING_THREADS: its threads for Twilio (core.pools)
TWILIO_TIMEOUT_SECONDS = 20


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
        TWILIO_TIMEOUT_SECONDS=str(TWILIO_TIMEOUT_SECONDS),
        MUSTER_PAGING_THREADS=str(TWILIO_THREADS),
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


def _paging_service(name: str, reached: dict[User, tuple[str, str]]) -> Service:
    """A service whose first step pages each of `reached` at once by (kind, address)."""
    service = Service.objects.create(name=name)
    policy = EscalationPolicy.objects.create(name=f"{name} primary", repeat=0)
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    for person, (kind, address) in reached.items():
        method = ContactMethod.objects.create(
            user=person, kind=kind, address=address, verified_at=timezone.now()
        )
        NotificationRule.objects.create(
            user=person, urgency="high", delay_minutes=0, contact_method=method
        )
        step.users.add(person)
    ServicePolicy.objects.create(service=service, policy=policy)
    return service


def _person(name: str) -> User:
    return User.objects.create_user(name, f"{name}@example.com", "pw", role=Role.RESPONDER)


def _texts(twilio: FakeTwilio, to: str | None = None) -> list:
    return [
        r
        for r in twilio.requests
        if r.path.endswith("/Messages.json") and (to is None or r.params.get("To") == [to])
    ]


def test_a_page_goes_out_while_slack_holds_every_call(fakes, worker, settings):
    require_postgresql()
    assert celery_app.conf.broker_url == settings.REDIS_URL
    twilio, slack = fakes
    settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
    settings.SLACK_API_BASE_URL = slack.api_url
    paging = _paging_service("payments", {_person("bob"): (ContactKind.SMS, BOB_PHONE)})
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

    wait_for(lambda: _texts(twilio, BOB_PHONE), timeout=3 * TIMEOUT_SECONDS + 30, what="bob's SMS")
    sms_at = _texts(twilio, BOB_PHONE)[0].received_at
    held = len([c for c in slack.calls_of("chat.postMessage") if c.received_at < sms_at])
    assert held <= settings.CHAT_THREADS, f"{held} posts went to a hanging Slack at once"
    assert sms_at < first_hang + TIMEOUT_SECONDS, (
        f"incident {incident.number}'s page reached Twilio {sms_at - first_hang:.1f}s after "
        f"Slack began to hang ({held} posts waiting), after the client's {TIMEOUT_SECONDS}s "
        f"timeout: it waited for a thread held by a chat call\n"
        + worker.read_text(errors="replace")[-3000:]
    )


def test_an_email_page_goes_out_while_twilio_holds_every_call(fakes, worker, settings):
    require_postgresql()
    twilio, _ = fakes
    texted = {_person(f"sre{i}"): (ContactKind.SMS, f"+1415555040{i}") for i in range(PEOPLE)}
    payments = _paging_service("payments", texted)
    carol = _person("carol")
    billing = _paging_service("billing", {carol: (ContactKind.EMAIL, "carol@example.com")})
    twilio.hang_next(count=1000)

    opening.open_incident(payments, title="Payments down", severity=1, source=Source.ALERT)
    wait_for(
        lambda: len(_texts(twilio)) >= TWILIO_THREADS,
        timeout=30,
        what="the worker's Twilio threads to be waiting on it",
    )
    first_hang = min(r.received_at for r in _texts(twilio))

    incident = opening.open_incident(
        billing, title="Invoices late", severity=1, source=Source.ALERT
    )
    wait_for(
        lambda: OutboxMessage.objects.filter(person=carol, kind=OutboxKind.PAGE).exists(),
        timeout=TWILIO_TIMEOUT_SECONDS + 30,
        what="carol's email page in the console outbox",
    )
    # The outbox row's time is the worker's clock, Twilio's records this process's: one machine.
    emailed_at = OutboxMessage.objects.get(person=carol).created_at.timestamp()
    held = len([r for r in _texts(twilio) if r.received_at < emailed_at])
    assert held <= TWILIO_THREADS, f"{held} SMS went to a hanging Twilio at once"
    assert emailed_at < first_hang + TWILIO_TIMEOUT_SECONDS, (
        f"incident {incident.number}'s email page went out {emailed_at - first_hang:.1f}s after "
        f"Twilio began to hang ({held} SMS waiting), after the client's {TWILIO_TIMEOUT_SECONDS}s "
        f"timeout: it waited for a thread held by a call to Twilio\n"
        + worker.read_text(errors="replace")[-3000:]
    )
