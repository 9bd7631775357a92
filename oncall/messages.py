"""What a page says: SMS text that fits one or two segments, a call script, an email."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from django.conf import settings
from django.urls import reverse

from incidents.models import Incident
from oncall.channels.base import Message

# Two concatenated GSM-7 segments hold 2 × 153 characters.
SMS_MAX = 306
# An SMS carries the war-room link only if the title keeps at least this many characters.
SMS_MIN_SUMMARY = 40
# The incident's war-room page (warroom serves it). oncall must not import warroom, so the page
# is found by its route name.
ROOM_ROUTE = "warroom-incident-room"
_GSM_SAFE = re.compile(
    r"[^A-Za-z0-9 @£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n]"
)


def gsm_text(text: str) -> str:
    """Return `text` in the GSM-7 alphabet: one character outside it (even \\xa0) forces UCS-2
    encoding, which cuts a segment from 153 to 67 characters and doubles the cost."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _GSM_SAFE.sub("?", re.sub(r"\s+", " ", plain)).strip()


def _fit(head: str, summary: str, tail: str) -> str:
    room = SMS_MAX - len(head) - len(tail)
    if len(summary) > room:
        summary = summary[: max(0, room - 3)].rstrip() + "..."
    return head + summary + tail


def room_url(number: int) -> str:
    """Return the public URL of an incident's war room (its page, served by warroom)."""
    return settings.PUBLIC_URL + reverse(ROOM_ROUTE, kwargs={"number": number})


def _sms_room_link(url: str, head: str, summary: str, tail: str) -> str:
    """Return " Room: <url>" if it fits beside a readable title, else "" (SMS are paid by the
    segment, and a character outside GSM-7 would mangle the link and double the cost)."""
    link = f" Room: {url}"
    if _GSM_SAFE.search(url) or any(c.isspace() for c in url):
        return ""
    room = SMS_MAX - len(head) - len(tail) - len(link)
    return link if room >= min(len(summary), SMS_MIN_SUMMARY) else ""


def for_incident(incident: Incident) -> Message:
    """Render the page for one incident."""
    service = gsm_text(incident.service.name)
    summary = gsm_text(incident.title)
    head = f"Muster #{incident.number} SEV{incident.severity} {service}: "
    tail = f" Reply 4 to ack, 6 to resolve (or 'ack {incident.number}')."
    url = room_url(incident.number)
    spoken_number = " ".join(str(incident.number))
    return Message(
        sms=_fit(head, summary, tail + _sms_room_link(url, head, summary, tail)),
        subject=f"[Muster] #{incident.number} SEV{incident.severity} {incident.service.name}: "
        f"{incident.title}"[:200],
        body=(
            f"Incident #{incident.number} on {incident.service.name}, severity "
            f"{incident.severity} ({incident.urgency} urgency), {incident.status}.\n\n"
            f"{incident.title}\n\n"
            f"War room: {url}\n"
        ),
        speech=(
            f"Muster alert. Incident {spoken_number}, severity {incident.severity}, on "
            f"{incident.service.name}: {incident.title[:300]}."
        ),
    )


def for_bundle(incidents: Sequence[Incident]) -> Message:
    """Render one SMS for several incidents waiting for the same person."""
    numbers = ", ".join(f"#{i.number}" for i in incidents)
    first = incidents[0]
    head = f"Muster: {len(incidents)} incidents ({numbers}). Latest: "
    tail = " Reply 'ack all' to acknowledge all."
    message = for_incident(first)
    return Message(
        sms=_fit(head, gsm_text(first.title), tail),
        subject=f"[Muster] {len(incidents)} incidents: {numbers}",
        body="\n".join(
            f"#{i.number} SEV{i.severity} {i.service.name}: {i.title}\n"
            f"  War room: {room_url(i.number)}"
            for i in incidents
        ),
        speech=message.speech,
    )
