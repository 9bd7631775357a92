"""Incidents that page people, and phones that text and press keys for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone

from accounts.models import User
from incidents import opening
from incidents.models import Incident, Service, Source
from oncall.models import Page
from tests.fakes.mattermost import FakeMattermost, FakeUser
from tests.helpers.mattermost import PUBLIC, TOKENS
from tests.helpers.twilio import BOB_PHONE, TWILIO_TOKEN


@pytest.fixture
def open_incident(service) -> Callable[..., Incident]:
    def make(title: str = "Disk full on db-1", on: Service | None = None) -> Incident:
        return opening.open_incident(on or service, title=title, severity=1, source=Source.ALERT)

    return make


@pytest.fixture
def page() -> Callable[..., Page]:
    """Record that `person` was paged for `incident` (as the escalation engine would)."""

    def make(incident: Incident, person: User, channel: str = "sms") -> Page:
        return Page.objects.create(
            incident=incident,
            person=person,
            channel=channel,
            address=BOB_PHONE,
            status="sent",
            send_after=timezone.now(),
            handed_at=timezone.now(),
        )

    return make


@pytest.fixture
def twilio(settings):
    """Twilio's credentials, and Muster reachable at the test client's own address."""
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PUBLIC_URL = "http://testserver"
    return settings


@pytest.fixture
def twilio_post(client, twilio):
    """POST form `params` to `path` as Twilio does, signed with `token` (None: no signature)."""
    from twilio.request_validator import RequestValidator

    def post(path: str, params: dict[str, str], *, token: str | None = TWILIO_TOKEN):
        headers = {}
        if token is not None:
            url = twilio.PUBLIC_URL + path
            headers["HTTP_X_TWILIO_SIGNATURE"] = RequestValidator(token).compute_signature(
                url, params
            )
        return client.post(path, params, **headers)

    return post


@pytest.fixture
def fake_twilio(live_server, settings):
    """Twilio's stand-in on loopback, signing what it sends to the live server."""
    from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, FakeTwilio

    settings.TWILIO_ACCOUNT_SID = DEFAULT_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PUBLIC_URL = live_server.url
    with FakeTwilio(auth_token=TWILIO_TOKEN, muster_url=live_server.url) as fake:
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


@pytest.fixture
def mattermost(settings) -> Iterator[FakeMattermost]:
    """Mattermost's double, and Muster configured for it (slash commands on)."""
    with FakeMattermost() as fake:
        settings.MATTERMOST_URL = fake.url
        settings.MATTERMOST_BOT_TOKEN = fake.bot_token
        settings.MATTERMOST_COMMAND_TOKENS = TOKENS
        settings.PUBLIC_URL = PUBLIC
        yield fake


@pytest.fixture
def mm_bob(mattermost, bob) -> FakeUser:
    """Bob's Mattermost account: his email, in other letters' case."""
    return mattermost.add_user("bobby", "Bob@Example.com")
