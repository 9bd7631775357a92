"""What a page says: SMS text that fits two segments, a call script, an email.

SMS text is GSM-7, counted in septets: one character outside GSM-7 (even \\xa0) forces UCS-2
encoding, which cuts a segment from 153 characters to 67 and doubles the cost. GSM-7's
extension characters ([ ] { } ~ | \\ ^ €) are kept: each costs two septets (an escape and
itself), and an escape pair never straddles two segments. Accents GSM-7 lacks are dropped
(û → u); a title whose letters GSM-7 cannot write at all (Cyrillic, Greek words, CJK) is sent
as written, in UCS-2, fitted to two segments of 67 UTF-16 units, rather than lost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from django.conf import settings
from django.urls import reverse

from core.text import one_line
from incidents.models import Incident
from oncall.channels.base import Message

# GSM 03.38's basic alphabet (without the escape) and its extension table (each an escape pair).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€")
# A message of one segment holds 160 septets; a concatenated one 153 a segment (the rest of
# its 140 bytes is the header that joins them).
SINGLE_SEGMENT = 160
SEGMENT = 153
# Pages fit two segments: what one SMS holds, 2 × 153 septets.
SMS_SEGMENTS = 2
SMS_MAX = SMS_SEGMENTS * SEGMENT
# UCS-2: 70 UTF-16 units alone, 67 a segment when concatenated.
UCS2_SINGLE_SEGMENT = 70
UCS2_SEGMENT = 67
# An SMS carries the war-room link only if the title keeps at least this many characters.
SMS_MIN_SUMMARY = 40
# The incident's war-room page (warroom serves it). oncall must not import warroom, so the page
# is found by its route name.
ROOM_ROUTE = "warroom-incident-room"
CUT = "..."
# A bundle's title is left out when less than this much of it would fit.
BUNDLE_MIN_TITLE = 8
# A call reads out at most this many of a bundle's incidents.
SPOKEN_MAX = 5
# Said on a call whose page is gone or settled, by the call and by its keypad alike.
CALL_NO_LONGER_VALID = "Sorry, this call is no longer valid. Goodbye."


def is_gsm(char: str) -> bool:
    return char in GSM_BASIC or char in GSM_EXTENSION


def gsm_text(text: str) -> str:
    """Return `text` on one line in the GSM-7 alphabet: accents that GSM-7 lacks are dropped
    (ç → c), anything else it lacks becomes "?", and characters with no letter in them (emoji,
    symbols) are left out."""
    out = []
    for char in re.sub(r"\s+", " ", text):
        if is_gsm(char):
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.extend(c if is_gsm(c) else "?" for c in plain)
    return "".join(out).strip()


def _loses_letters(text: str) -> bool:
    """Whether GSM-7 would lose a letter of `text` (not merely its accent)."""
    return any(
        char.isalpha()
        and not is_gsm(char)
        and not unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        for char in text
    )


def sms_text(text: str) -> str:
    """Return `text` on one line for an SMS: in GSM-7 (`gsm_text`) unless that would lose its
    letters, else as written (the message then goes as UCS-2)."""
    if _loses_letters(text):
        return re.sub(r"\s+", " ", one_line(text)).strip()
    return gsm_text(text)


def is_gsm_text(text: str) -> bool:
    return all(is_gsm(c) for c in text)


def _cost(char: str, gsm: bool) -> int:
    if gsm:
        return 2 if char in GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16 units: a surrogate pair is two


def septets(text: str) -> int:
    """Return what `text` costs in GSM-7 septets (an extension character costs two)."""
    return sum(_cost(c, True) for c in text)


def _units(text: str, gsm: bool) -> int:
    return sum(_cost(c, gsm) for c in text)


def segments(text: str) -> int:
    """Return how many SMS segments `text` takes: GSM-7 if it can be (an escape pair is never
    split), else UCS-2."""
    gsm = is_gsm_text(text)
    single, part = (SINGLE_SEGMENT, SEGMENT) if gsm else (UCS2_SINGLE_SEGMENT, UCS2_SEGMENT)
    if _units(text, gsm) <= single:
        return 1
    count, used = 1, 0
    for char in text:
        cost = _cost(char, gsm)
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def _capacity(gsm: bool, most_segments: int) -> int:
    """What `most_segments` segments hold, in septets (GSM-7) or UTF-16 units (UCS-2)."""
    if most_segments == 1:
        return SINGLE_SEGMENT if gsm else UCS2_SINGLE_SEGMENT
    return most_segments * (SEGMENT if gsm else UCS2_SEGMENT)


def cut(text: str, budget: int, *, gsm: bool = True) -> str:
    """Return `text` within `budget` septets (or UTF-16 units, for UCS-2), ending in "..." if
    it had to be shortened."""
    if _units(text, gsm) <= budget:
        return text
    kept, used = [], len(CUT)
    for char in text:
        cost = _cost(char, gsm)
        if used + cost > budget:
            break
        kept.append(char)
        used += cost
    return "".join(kept).rstrip() + CUT if used <= budget else ""


def fit(head: str, summary: str, tail: str = "", *, most_segments: int = SMS_SEGMENTS) -> str:
    """Return head + summary + tail in at most `most_segments` SMS segments, shortening the
    summary (everything, if head and tail alone do not fit). Pages and chat replies by SMS
    both fit their text here."""
    gsm = is_gsm_text(head + summary + tail)
    capacity = _capacity(gsm, most_segments)
    if _units(head + tail, gsm) >= capacity:
        head, summary, tail = "", head + summary + tail, ""
    budget = capacity - _units(head, gsm) - _units(tail, gsm)
    while True:
        text = head + cut(summary, budget, gsm=gsm) + tail
        if segments(text) <= most_segments or budget <= 0:
            return text
        budget -= 1  # a pair at a segment's end (escape, surrogate) pushed a unit on


def room_url(number: int) -> str:
    """Return the public URL of an incident's war room (its page, served by warroom)."""
    return settings.PUBLIC_URL + reverse(ROOM_ROUTE, kwargs={"number": number})


def _sms_room_link(url: str, head: str, summary: str, tail: str) -> str:
    """Return " Room: <url>" if it fits beside a readable title, else "" (SMS are paid by the
    segment, and a character outside GSM-7 would mangle the link and double the cost)."""
    link = f" Room: {url}"
    if not all(c in GSM_BASIC for c in url) or any(c.isspace() for c in url):
        return ""
    gsm = is_gsm_text(head + summary + tail)
    room = _capacity(gsm, SMS_SEGMENTS) - _units(head + tail + link, gsm)
    return link if room >= min(_units(summary, gsm), SMS_MIN_SUMMARY) else ""


def subject(text: str) -> str:
    """Return a mail subject: one line, no control characters, at most 200 characters."""
    return one_line(text)[:200]


def for_incident(incident: Incident) -> Message:
    """Render the page for one incident."""
    service = sms_text(incident.service.name)
    summary = sms_text(incident.title)
    head = f"Muster #{incident.number} SEV{incident.severity} {service}: "
    tail = f" Reply 4 to ack, 6 to resolve (or 'ack {incident.number}')."
    url = room_url(incident.number)
    spoken_number = " ".join(str(incident.number))
    title = one_line(incident.title)
    return Message(
        sms=fit(head, summary, tail + _sms_room_link(url, head, summary, tail)),
        subject=subject(
            f"[Muster] #{incident.number} SEV{incident.severity} {incident.service.name}: {title}"
        ),
        body=(
            f"Incident #{incident.number} on {incident.service.name}, severity "
            f"{incident.severity} ({incident.urgency} urgency), {incident.status}.\n\n"
            f"{incident.title}\n\n"
            f"War room: {url}\n"
        ),
        speech=(
            f"Muster alert. Incident {spoken_number}, severity {incident.severity}, on "
            f"{incident.service.name}: {title[:300]}."
        ),
    )


def _bundle_sms(incidents: Sequence[Incident]) -> str:
    """One SMS naming every incident (`#N SEVs title`), titles shortened, equally where they
    must, so that the whole fits two segments. When even the bare list is too long, runs of
    numbers are written as ranges per severity (`SEV1 #1004-#1047`); every incident is named,
    even if that takes a third segment."""
    head = f"Muster: {len(incidents)} incidents need you. "
    tail = " Reply 'ack all' to acknowledge all."
    labels = [f"#{i.number} SEV{i.severity}" for i in incidents]
    titles = [sms_text(i.title) for i in incidents]
    gsm = all(is_gsm_text(t) for t in titles)
    separators = 2 * (len(incidents) - 1)  # "; "
    fixed = _units(head + tail, gsm) + separators + sum(len(label) for label in labels)
    # Each title also costs the space before it.
    room = _capacity(gsm, SMS_SEGMENTS) - fixed - len(titles)
    while room >= BUNDLE_MIN_TITLE:
        shares = _shares([_units(t, gsm) for t in titles], room)
        parts = [
            f"{label} {cut(title, share, gsm=gsm)}" if share >= BUNDLE_MIN_TITLE else label
            for label, title, share in zip(labels, titles, shares, strict=True)
        ]
        text = head + "; ".join(parts) + ("" if parts[-1].endswith(CUT) else ".") + tail
        if segments(text) <= SMS_SEGMENTS:
            return text
        room -= 2
    listed = head + "; ".join(labels) + "." + tail
    if segments(listed) <= SMS_SEGMENTS:
        return listed
    return head + _ranges(incidents) + "." + tail


def _ranges(incidents: Sequence[Incident]) -> str:
    """Name incidents compactly: per severity, runs of consecutive numbers as ranges."""
    parts = []
    for severity in sorted({i.severity for i in incidents}):
        numbers = sorted(i.number for i in incidents if i.severity == severity)
        runs: list[list[int]] = []
        for number in numbers:
            if runs and number == runs[-1][-1] + 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        named = ", ".join(f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs)
        parts.append(f"SEV{severity} {named}")
    return "; ".join(parts)


def _shares(lengths: list[int], room: int) -> list[int]:
    """Split `room` between titles of `lengths`: short ones get what they need, the long ones
    share the rest equally."""
    shares = [0] * len(lengths)
    left, waiting = max(0, room), sorted(range(len(lengths)), key=lambda i: lengths[i])
    while waiting:
        share = left // len(waiting)
        i = waiting[0]
        if lengths[i] <= share:
            shares[i] = lengths[i]
            left -= lengths[i]
            waiting.pop(0)
            continue
        for i in waiting:
            shares[i] = share
        break
    return shares


def for_bundle(incidents: Sequence[Incident]) -> Message:
    """Render one message for several incidents waiting for the same person (a bundle)."""
    numbers = ", ".join(f"#{i.number}" for i in incidents)
    spoken = " ".join(
        f"Incident {' '.join(str(i.number))}, severity {i.severity}, on {i.service.name}: "
        f"{one_line(i.title)[:120]}."
        for i in incidents[:SPOKEN_MAX]
    )
    more = len(incidents) - SPOKEN_MAX
    return Message(
        sms=_bundle_sms(incidents),
        subject=subject(f"[Muster] {len(incidents)} incidents: {numbers}"),
        body="\n".join(
            f"#{i.number} SEV{i.severity} {i.service.name}: {one_line(i.title)}\n"
            f"  War room: {room_url(i.number)}"
            for i in incidents
        ),
        speech=f"Muster alert. {len(incidents)} incidents need you. {spoken}"
        + (f" And {more} more." if more > 0 else ""),
    )
