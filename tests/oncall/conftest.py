"""Shared on-call fixtures: Twilio's API served by tests/fakes/twilio.py, and pages to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone

from accounts.models import User
from incidents import opening
from incidents.models import Incident, Source
from muster.celery import app as celery_app
from oncall.models import ContactMethod, Page
from tests.fakes.twilio import FakeTwilio
from tests.helpers.twilio import BOB_PHONE, OUR_NUMBER, TWILIO_SID, TWILIO_TOKEN


@pytest.fixture
def fake_twilio(settings) -> Iterator[FakeTwilio]:
    """Twilio's REST API on loopback, with Muster's Twilio settings pointing at it."""
    with FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as fake:
        settings.TWILIO_ACCOUNT_SID = TWILIO_SID
        settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
        settings.TWILIO_FROM_NUMBER = OUR_NUMBER
        settings.TWILIO_API_BASE_URL = fake.url
        settings.PUBLIC_URL = "http://testserver"
        yield fake


@pytest.fixture
def live_twilio(fake_twilio, live_server, settings) -> FakeTwilio:
    """The fake, and Muster served for real at PUBLIC_URL, where the fake sends its webhooks."""
    settings.PUBLIC_URL = live_server.url
    fake_twilio.muster_url = live_server.url
    return fake_twilio


@pytest.fixture
def incident(service) -> Incident:
    return opening.open_incident(
        service, title="Checkout latency over 2s", severity=1, source=Source.ALERT
    )


@pytest.fixture
def make_page(incident, bob) -> Callable[..., Page]:
    """Return a page to bob (sending, as the engine hands it to a channel)."""

    def make(
        channel: str = "sms", address: str = BOB_PHONE, person: User | None = None, **fields
    ) -> Page:
        person = person or bob
        kind = channel if channel in ("sms", "voice", "email") else "sms"
        method, _ = ContactMethod.objects.get_or_create(
            user=person, kind=kind, address=address, defaults={"verified_at": timezone.now()}
        )
        fields.setdefault("status", "sending")
        fields.setdefault("handed_at", timezone.now())
        return Page.objects.create(
            incident=fields.pop("incident", incident),
            person=person,
            contact_method=method,
            channel=channel,
            address=address,
            send_after=timezone.now(),
            **fields,
        )

    return make


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run `action`, then what its commit announces: the receivers, and the tasks they queue,
    run at once in this thread (Celery eager). Return the action's result."""

    def run(action, *args, **kwargs):
        conf = celery_app.conf
        before = (conf.task_always_eager, conf.task_eager_propagates)
        conf.task_always_eager = conf.task_eager_propagates = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                return action(*args, **kwargs)
        finally:
            conf.task_always_eager, conf.task_eager_propagates = before

    return run
