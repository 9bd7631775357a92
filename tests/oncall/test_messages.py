"""What a page says by SMS: GSM-7 kept whole (extension characters too), fitted by septets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import timezone

from incidents.models import Incident
from oncall import messages
from oncall.channels.base import Delivery
from oncall.channels.registry import CHANNELS
from oncall.messages import gsm_text, segments, septets
from tests.fakes.twilio import num_segments


def test_gsm_keeps_its_extension_characters():
    """was: `[FIRING:10]` arrived as `?FIRING:10?`."""
    assert gsm_text("[FIRING:10] {db} ~ | \\ ^ €5") == "[FIRING:10] {db} ~ | \\ ^ €5"
    assert gsm_text("Ça coûte\u00a0cher\n") == "Ça coute cher"  # no UCS-2 for one accent
    assert gsm_text("disk 🔥 full ✓") == "disk  full"
    assert septets("[x]") == 5 and septets("€") == 2


def test_an_escape_pair_never_straddles_two_segments():
    text = "a" * 152 + "[" + "b" * 20  # the "[" would start at septet 153 of the first segment
    assert septets(text) == 174
    assert segments(text) == 2 == num_segments(text)
    assert segments("a" * 153 + "b" * 153) == 2 and segments("a" * 307) == 3
    assert segments("[" * 80) == 1 and segments("[" * 81) == 2


@pytest.mark.parametrize(
    "title",
    ["[FIRING:10] " * 40, "{" * 500, "x" * 2000, "€uro " * 100, "[" + "a" * 300 + "]"],
)
def test_a_page_fits_two_segments_whatever_the_title(title, service):
    incident = Incident(
        number=1042, title=title, service=service, severity=1, triggered_at=timezone.now()
    )
    sms = messages.for_incident(incident).sms
    assert segments(sms) <= 2 and num_segments(sms) <= 2
    assert sms.startswith("Muster #1042 SEV1 checkout: ") and "Reply 4 to ack" in sms
    assert all(messages.is_gsm(c) for c in sms)


def incidents(count: int, title: str = "Disk full on db-{i} [FIRING:1]", severity: int = 1):
    service = SimpleNamespace(name="checkout")
    return [
        SimpleNamespace(
            number=1000 + i, severity=severity, title=title.format(i=i), service=service
        )
        for i in range(count)
    ]


def test_a_bundle_names_every_incident_with_titles_shortened_to_two_segments():
    sms = messages.for_bundle(incidents(6)).sms
    assert segments(sms) <= 2
    assert sms.startswith("Muster: 6 incidents need you. #1000 SEV1 Disk full")
    assert sms.endswith("Reply 'ack all' to acknowledge all.")
    for n in range(1000, 1006):
        assert f"#{n} SEV1 " in sms


def test_a_bundle_too_long_for_titles_lists_the_incidents_then_ranges_them():
    listed = messages.for_bundle(incidents(20)).sms
    assert segments(listed) <= 2 and "#1019 SEV1" in listed and "Disk" not in listed
    ranged = messages.for_bundle(incidents(40)).sms
    assert "SEV1 #1000-#1039" in ranged and segments(ranged) <= 2


def test_an_sms_with_extension_characters_reaches_twilio_whole(fake_twilio, make_page, incident):
    incident.title = "[FIRING:10] {job=db} ~ 100% | load \\ 5 ^ 2 €"
    incident.save()
    page = make_page("sms")
    CHANNELS["sms"].send(Delivery.of_page(page), messages.for_incident(incident))
    [sent] = fake_twilio.messages
    assert "[FIRING:10] {job=db} ~ 100% | load \\ 5 ^ 2 €" in sent.body
    assert num_segments(sent.body) == segments(sent.body) <= 2  # billed as GSM-7


@pytest.mark.parametrize(
    "title",
    ["Диск заполнен на db-1: /var 99%", "ディスクがいっぱいです db-1", "Δίσκος γεμάτος " * 20],
)
def test_a_title_gsm_cannot_write_is_sent_as_written_in_two_ucs2_segments(title, service):
    """was: every letter was dropped, and the page said nothing but its number."""
    incident = Incident(
        number=1042, title=title, service=service, severity=1, triggered_at=timezone.now()
    )
    sms = messages.for_incident(incident).sms
    assert title.split()[0] in sms
    assert num_segments(sms) == segments(sms) <= 2
    assert not messages.is_gsm_text(sms)  # UCS-2, as Twilio will send it


def test_accents_alone_never_force_ucs2():
    assert messages.sms_text("Ça coûte cher [x]") == "Ça coute cher [x]"
    assert messages.is_gsm_text(messages.sms_text("Ça coûte cher [x]"))
