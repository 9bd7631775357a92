"""The surface registry: every surface parses with the one grammar and records its own source."""

from __future__ import annotations

from django.urls import reverse

from incidents.models import Source
from oncall.channels.twilio import keypress_url
from warroom.commands.specs import SURFACE_NAMES
from warroom.surfaces.registry import SURFACES


def test_every_surface_is_known_to_the_parser_and_the_timeline():
    for name, module in SURFACES.items():
        assert name in SURFACE_NAMES
        assert name in Source.values
        assert name == module.SOURCE


def test_twilio_webhooks_are_routed():
    assert reverse("twilio-sms") == "/twilio/sms/"
    assert reverse("twilio-voice-keypress", args=[7]) == "/twilio/voice/7/keypress/"


def test_the_keypress_url_is_absolute_on_the_public_url(settings):
    settings.PUBLIC_URL = "https://muster.example.com"
    assert keypress_url(42) == "https://muster.example.com/twilio/voice/42/keypress/?step=0"
    assert keypress_url(42, step=2).endswith("/keypress/?step=2")
