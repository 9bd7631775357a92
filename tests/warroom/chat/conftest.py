"""Incidents told on Slack and Mattermost through the outbox, against their doubles."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from incidents import opening
from incidents.models import ChatChannelMode, Incident, Service, Source
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack

SHARED = "C0SHARED"


@pytest.fixture
def fake_slack(db, settings) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
        settings.SLACK_SIGNING_SECRET = "s" * 32
        settings.SLACK_API_BASE_URL = fake.api_url
        settings.PUBLIC_URL = "https://muster.example.com"
        yield fake


@pytest.fixture
def shared_service(db) -> Service:
    return Service.objects.create(
        name="checkout", slack_channel_mode=ChatChannelMode.SHARED, slack_channel=SHARED
    )


@pytest.fixture
def opened(django_capture_on_commit_callbacks) -> Callable[..., Incident]:
    """Open an incident as the API would, and run what its commit announces (the room, the
    bot's opening post and the outbox posts written with it); no worker delivers them."""

    def make(service: Service, title: str = "Disk full on db-1", severity: int = 1) -> Incident:
        with django_capture_on_commit_callbacks(execute=True):
            return opening.open_incident(service, title=title, severity=severity, source=Source.API)

    return make
