"""The argument readers: each reads one slot of a command from the words typed.

An incident number, free text, a person, a schedule's name, a severity, label matchers, a
duration, an action, a channel, a level. A reader takes the words left, the whole text and the
surface; it returns (value or None, words left), or raises BadArgument saying what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from alerts.matchers import Matcher, MatcherError, parse_matchers

# How long a silence may last, and that its matchers may not match every alert, are
# alerts.services' rules (create_silence), shared with the API and the web form.
SILENCE_MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Word:
    """One word of the text as typed, and as compared."""

    raw: str
    norm: str  # lower case, surrounding punctuation gone (but a leading "#")
    start: int  # offset in the text, so free text keeps its original spelling


class BadArgument(Exception):
    """What is wrong with an argument, said to the person who typed it."""


# A dict value sets several fields.
Reader = Callable[[list[Word], str, str], tuple[object, list[Word]]]


@dataclass(frozen=True)
class Arg:
    """One slot of a command's grammar: read in order, stored on `Command.<field>`."""

    field: str
    usage: str  # in parentheses, not brackets: "[" costs two characters of a GSM-7 SMS
    noun: str
    read: Reader
    required: bool = False
    # In the list of every command by phone (help without a topic); an optional extra that
    # would make the list outgrow one SMS is left to the command's own help.
    in_overview: bool = True


_NUMBER = re.compile(r"#?(\d+)")
# Longer numbers would overflow the database's integers; nobody has that many incidents.
_MAX_DIGITS = 18


def _incident_number(digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise BadArgument(f"{digits[:20]}... is too long to be an incident number.")
    return int(digits)


def _incident_reader(*, lenient: bool) -> Reader:
    """Read `incident N`, `#N` or a bare number of four or more digits.

    `lenient`: a lone short number is left for the next argument (`sev 2`), not refused.
    """

    def read(words: list[Word], text: str, surface: str) -> tuple[int | None, list[Word]]:
        if not words:
            return None, words
        first = words[0].norm
        if first == "incident":
            number = _NUMBER.fullmatch(words[1].norm) if len(words) > 1 else None
            if number is None:
                raise BadArgument('"incident" needs a number after it, e.g. incident 1042.')
            return _incident_number(number.group(1)), words[2:]
        if first.startswith("#") and first[1:].isdigit():
            return _incident_number(first[1:]), words[1:]
        if first.isdigit() and len(first) >= 4:
            return _incident_number(first), words[1:]
        if first.isdigit() and len(words) == 1 and not lenient:
            # "ack 42": surely an incident, but short numbers are only taken when marked as one.
            raise BadArgument(f"For incident {first}, write #{first} or incident {first}.")
        return None, words

    return read


def _read_text(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    """Read the rest of the message as free text, spelled as it was written."""
    if not words:
        return None, words
    return text[words[0].start :].strip().strip(" -:;,") or None, []


_USERNAME = re.compile(r"[\w.@+-]{1,150}")
TRAILING = ".,;:!?)\"'”’"


def _username(raw: str) -> str | None:
    name = raw.lstrip("(\"'“‘").rstrip(TRAILING).removeprefix("@")
    return name if _USERNAME.fullmatch(name) else None


def _read_user(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    """Read a person: `@bob`, `bob` or `me` (optionally after "to": `assign to @bob`)."""
    if words and words[0].norm == "to":
        words = words[1:]
    if not words:
        return None, words
    name = _username(words[0].raw)
    if name is None:
        raise BadArgument(f"{quote_typed(words[0].raw)} is not a username; write @ and their name.")
    return ("me" if name.lower() == "me" else name), words[1:]


def _rest_as_name(words: list[Word], text: str) -> str | None:
    if words and words[0].norm == "for":  # "oncall for checkout"
        words = words[1:]
    if not words:
        return None
    return text[words[0].start :].strip().strip("\"'“”‘’").strip() or None


def _read_page_target(
    words: list[Word], text: str, surface: str
) -> tuple[dict[str, str] | None, list[Word]]:
    """Read whom to page: `@bob` (a person) or the rest of the text (a schedule, or a person)."""
    name = _rest_as_name(words, text)
    if name is None:
        return None, []
    if name.startswith("@"):
        person = _username(name) if " " not in name else None
        if person is None:
            raise BadArgument("Page one person or one schedule at a time, e.g. page @bob.")
        return {"user": person}, []
    return {"target": name}, []


def _read_name(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    """Read the rest of the text as a name (a schedule or a service)."""
    return _rest_as_name(words, text), []


_SEVERITY = re.compile(r"(?:sev|s|p)?(\d+)")


def _read_severity(words: list[Word], text: str, surface: str) -> tuple[int | None, list[Word]]:
    """Read a severity: 1 (most severe) to 5, also written sev2 or p2."""
    if not words:
        return None, words
    found = _SEVERITY.fullmatch(words[0].norm)
    if found is None:
        raise BadArgument("Severity is a number from 1 (most severe) to 5, e.g. sev 2.")
    value = int(found.group(1)[:3])
    if not 1 <= value <= 5:
        raise BadArgument(f"Severity is 1 (most severe) to 5; {found.group(1)[:6]} is not.")
    return value, words[1:]


# Chat apps turn straight quotes into curly ones; matchers want straight ones. Same length, so
# offsets into the text still hold.
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "″": '"'})


def _unquoted_for(text: str, start: int) -> int | None:
    """Return where the first word "for" outside double quotes begins in `text[start:]`."""
    quoted = escaped = False
    for i in range(start, len(text)):
        char = text[i]
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif (
            text[i : i + 3].lower() == "for"
            and (i == start or text[i - 1].isspace())
            and (i + 3 == len(text) or text[i + 3].isspace())
        ):
            return i
    return None


def _read_matchers(
    words: list[Word], text: str, surface: str
) -> tuple[tuple[Matcher, ...] | None, list[Word]]:
    """Read label matchers up to the word "for": `alertname=DiskFull instance=~"db-.*"`."""
    if not words:
        return None, words
    text = text.translate(_SMART_QUOTES)
    end = _unquoted_for(text, words[0].start)
    written = text[words[0].start : end].strip()
    rest = [w for w in words if end is not None and w.start >= end]
    if not written:
        return None, rest
    try:
        matchers = tuple(parse_matchers(written))
    except MatcherError as exc:
        raise BadArgument(
            f'Matchers: {exc}. Write them as label=value, label!=value, label=~"regex" or '
            'label!~"regex".'
        ) from None
    return matchers, rest


_DURATION_PART = re.compile(
    r"(\d{1,7})\s*(weeks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m)(?![a-z])", re.IGNORECASE
)
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}


def parse_duration(text: str) -> tuple[timedelta, int] | None:
    """Read a duration at the start of `text` (30m, 2h, 1d, 1h30m, 2 hours); return it and
    where it ends, or None when `text` does not start with one."""
    total, pos, end = timedelta(), 0, None
    while found := _DURATION_PART.match(text, pos):
        unit = found.group(2)[0].lower()
        total += int(found.group(1)) * _UNIT.get(unit, timedelta(minutes=1))
        end = found.end()
        pos = end + len(text[end:]) - len(text[end:].lstrip())
    if end is None or text[end : end + 1].isalnum():  # "1h30mx" is no duration, not 1h30m
        return None
    return total, end


def _read_duration(
    words: list[Word], text: str, surface: str
) -> tuple[timedelta | None, list[Word]]:
    """Read `for <duration>`, at least SILENCE_MIN."""
    if not words or words[0].norm != "for":
        return None, words
    if len(words) == 1:
        raise BadArgument("For how long? e.g. for 2h.")
    start = words[1].start
    found = parse_duration(text[start:])
    if found is None:
        raise BadArgument(
            f"{quote_typed(words[1].raw)} is not a duration; write it like 30m, 2h, 1d or 1h30m."
        )
    value, length = found
    if value < SILENCE_MIN:
        raise BadArgument("A silence lasts at least a minute.")
    return value, [w for w in words if w.start >= start + length]


_ACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _read_action(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    """Read a runbook action's name, as typed (one word)."""
    if not words:
        return None, words
    name = words[0].raw.strip(TRAILING + "(\"'“‘`")
    if not _ACTION.fullmatch(name):
        raise BadArgument(f"{quote_typed(words[0].raw)} is not an action name; runbook lists them.")
    return name, words[1:]


def _read_confirm(words: list[Word], text: str, surface: str) -> tuple[bool | None, list[Word]]:
    if words and words[0].norm in ("confirm", "confirmed"):
        return True, words[1:]
    return None, words


_CHANNELS = {"email": "email", "mail": "email", "e-mail": "email", "chat": "chat", "room": "chat"}


def _read_channel(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    if words and words[0].norm in _CHANNELS:
        return _CHANNELS[words[0].norm], words[1:]
    return None, words


_LEVEL = re.compile(r"(?:level|l)?(\d+)")


def _read_level(words: list[Word], text: str, surface: str) -> tuple[int | None, list[Word]]:
    """Read an escalation level: `to 2`, `to level 2`, `level 2` (1-based, as PagerDuty's)."""
    if not words or words[0].norm not in ("to", "level"):
        return None, words
    rest = words[1:] if words[0].norm == "to" else words
    if rest and rest[0].norm == "level":
        rest = rest[1:]
    found = _LEVEL.fullmatch(rest[0].norm) if rest else None
    if found is None:
        raise BadArgument("Escalate to which level? e.g. escalate to level 2.")
    value = int(found.group(1)[:4])
    if value < 1:
        raise BadArgument("Levels start at 1, e.g. escalate to level 2.")
    return value, rest[1:]


INCIDENT = Arg("incident", "(N)", "an incident number", _incident_reader(lenient=False))
# Before a number that is not an incident (`sev 2`): a short bare number is left alone.
INCIDENT_FIRST = Arg("incident", "(N)", "an incident number", _incident_reader(lenient=True))
TEXT = Arg("text", "(note)", "a note", _read_text)
USER = Arg("user", "@user", "a person (@name, or me)", _read_user, required=True)
PAGE_TARGET = Arg(
    "target", "(@user or schedule)", "a person or a schedule", _read_page_target, required=True
)
ONCALL_TARGET = Arg("target", "(schedule or service)", "a schedule or service", _read_name)


def _read_silence_id(words: list[Word], text: str, surface: str) -> tuple[int | None, list[Word]]:
    """Read a silence's id: `3` or `#3` (as the reply to `silence` names it)."""
    if not words:
        return None, words
    found = _NUMBER.fullmatch(words[0].norm)
    if found is None or len(found.group(1)) > _MAX_DIGITS:
        raise BadArgument(f"{quote_typed(words[0].raw)} is not a silence's id, like 12.")
    return int(found.group(1)), words[1:]


SILENCE_ID = Arg("silence", "(silence id)", "a silence's id, like 12", _read_silence_id, True)
SEVERITY = Arg("severity", "(1-5)", "a severity from 1 to 5", _read_severity, required=True)
MATCHERS = Arg(
    "matchers", "(matchers)", "label matchers like alertname=DiskFull", _read_matchers, True
)
DURATION = Arg("duration", "for (duration)", 'how long, as "for 2h"', _read_duration, True)
ACTION = Arg("action", "(action)", "an action name", _read_action)
CONFIRM = Arg("confirm", "(confirm)", '"confirm"', _read_confirm)
CHANNEL = Arg("channel", "(email or chat)", '"email" or "chat"', _read_channel)
LEVEL = Arg("level", "(to level)", 'a level, as "to level 2"', _read_level, in_overview=False)


def quote_typed(typed: str, limit: int = 20) -> str:
    """Return what someone typed, quoted for a message, cut at `limit` characters."""
    return f'"{typed[:limit]}..."' if len(typed) > limit else f'"{typed}"'
