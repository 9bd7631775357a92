"""The ChatOps grammar: one pure parser from text to a command, for every surface.

Chat, Slack, Mattermost, inbound SMS and the phone keypad all turn their input into text and call
`parse(text, surface=…)`. No Django and no database here: what a command *does* lives in
`warroom.execute`. A command is a row in `SPECS` (name, aliases, argument grammar, help with an
example); to add one, add a row, and an `Arg` if it takes a new kind of argument.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from alerts.matchers import Matcher, MatcherError, all_match, parse_matchers

CHAT_SURFACES = frozenset({"chat", "web", "slack", "mattermost"})
PHONE_SURFACES = frozenset({"sms", "voice"})
SURFACES = CHAT_SURFACES | PHONE_SURFACES

# A silence typed in chat is for an incident, not a change freeze.
SILENCE_MAX = timedelta(days=30)
SILENCE_MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Command:
    """What someone asked for. `incident` is the number they named, if any (else: context)."""

    name: str
    incident: int | None = None
    text: str = ""  # free text: resolve's note, a note, a status update, a silence's comment
    topic: str | None = None  # help's command, by name
    user: str | None = None  # a person named with @: assign, page ("me": whoever typed it)
    target: str | None = None  # a schedule, service or person by name: page, oncall
    severity: int | None = None  # 1 (most severe) to 5
    duration: timedelta | None = None  # how long a silence lasts
    matchers: tuple[Matcher, ...] = ()  # label matchers, as alerts.matchers reads them
    action: str | None = None  # a runbook action's name, as typed
    confirm: bool = False  # "run <action> confirm"
    channel: str | None = None  # subscribe's "email" or "chat"
    level: int | None = None  # escalate's "to <level>", 1-based


@dataclass(frozen=True)
class ParseError:
    """Text that is not a command; `message` says what was wrong and what to type instead."""

    message: str
    suggestion: str | None = None  # the closest valid command, as people type it
    command: str | None = None  # the command recognised, when only its arguments were wrong

    def __str__(self) -> str:
        return self.message


# --- arguments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    raw: str
    norm: str  # lower case, surrounding punctuation gone (but a leading "#")
    start: int  # offset in the text, so free text keeps its original spelling


class _BadArgument(Exception):
    pass


# A reader takes the words left, the whole text and the surface; it returns (value or None,
# words left), or raises _BadArgument saying what is wrong. A dict value sets several fields.
Reader = Callable[[list[_Word], str, str], tuple[object, list[_Word]]]


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
        raise _BadArgument(f"{digits[:20]}... is too long to be an incident number.")
    return int(digits)


def _incident_reader(*, lenient: bool) -> Reader:
    """Read `incident N`, `#N` or a bare number of four or more digits.

    `lenient`: a lone short number is left for the next argument (`sev 2`), not refused.
    """

    def read(words: list[_Word], text: str, surface: str) -> tuple[int | None, list[_Word]]:
        if not words:
            return None, words
        first = words[0].norm
        if first == "incident":
            number = _NUMBER.fullmatch(words[1].norm) if len(words) > 1 else None
            if number is None:
                raise _BadArgument('"incident" needs a number after it, e.g. incident 1042.')
            return _incident_number(number.group(1)), words[2:]
        if first.startswith("#") and first[1:].isdigit():
            return _incident_number(first[1:]), words[1:]
        if first.isdigit() and len(first) >= 4:
            return _incident_number(first), words[1:]
        if first.isdigit() and len(words) == 1 and not lenient:
            # "ack 42": surely an incident, but short numbers are only taken when marked as one.
            raise _BadArgument(f"For incident {first}, write #{first} or incident {first}.")
        return None, words

    return read


def _read_text(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    """Read the rest of the message as free text, spelled as it was written."""
    if not words:
        return None, words
    return text[words[0].start :].strip().strip(" -:;,") or None, []


def _read_topic(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    """Read the command that help is asked about; anything else asks for general help."""
    if not words:
        return None, words
    spec, used = _match(words, surface)
    if spec is None or not spec.listed:
        return None, []
    return spec.name, words[used:]


# Django's usernames: letters, digits and @ . + - _
_USERNAME = re.compile(r"[\w.@+-]{1,150}")
_TRAILING = ".,;:!?)\"'”’"


def _username(raw: str) -> str | None:
    name = raw.lstrip("(\"'“‘").rstrip(_TRAILING).removeprefix("@")
    return name if _USERNAME.fullmatch(name) else None


def _read_user(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    """Read a person: `@bob`, `bob` or `me` (optionally after "to": `assign to @bob`)."""
    if words and words[0].norm == "to":
        words = words[1:]
    if not words:
        return None, words
    name = _username(words[0].raw)
    if name is None:
        raise _BadArgument(f"{_quote(words[0].raw)} is not a username; write @ and their name.")
    return ("me" if name.lower() == "me" else name), words[1:]


def _rest_as_name(words: list[_Word], text: str) -> str | None:
    if words and words[0].norm == "for":  # "oncall for checkout"
        words = words[1:]
    if not words:
        return None
    return text[words[0].start :].strip().strip("\"'“”‘’").strip() or None


def _read_page_target(
    words: list[_Word], text: str, surface: str
) -> tuple[dict[str, str] | None, list[_Word]]:
    """Read whom to page: `@bob` (a person) or the rest of the text (a schedule, or a person)."""
    name = _rest_as_name(words, text)
    if name is None:
        return None, []
    if name.startswith("@"):
        person = _username(name) if " " not in name else None
        if person is None:
            raise _BadArgument("Page one person or one schedule at a time, e.g. page @bob.")
        return {"user": person}, []
    return {"target": name}, []


def _read_name(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    """Read the rest of the text as a name (a schedule or a service)."""
    return _rest_as_name(words, text), []


_SEVERITY = re.compile(r"(?:sev|s|p)?(\d+)")


def _read_severity(words: list[_Word], text: str, surface: str) -> tuple[int | None, list[_Word]]:
    """Read a severity: 1 (most severe) to 5, also written sev2 or p2."""
    if not words:
        return None, words
    found = _SEVERITY.fullmatch(words[0].norm)
    if found is None:
        raise _BadArgument("Severity is a number from 1 (most severe) to 5, e.g. sev 2.")
    value = int(found.group(1)[:3])
    if not 1 <= value <= 5:
        raise _BadArgument(f"Severity is 1 (most severe) to 5; {found.group(1)[:6]} is not.")
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
    words: list[_Word], text: str, surface: str
) -> tuple[tuple[Matcher, ...] | None, list[_Word]]:
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
        raise _BadArgument(
            f'Matchers: {exc}. Write them as label=value, label!=value, label=~"regex" or '
            'label!~"regex".'
        ) from None
    if all_match(list(matchers), {}):
        # Alertmanager's rule too: a silence must need some label to be set.
        raise _BadArgument("These matchers match every alert; name a label value that must match.")
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


def _format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


def _read_duration(
    words: list[_Word], text: str, surface: str
) -> tuple[timedelta | None, list[_Word]]:
    """Read `for <duration>`, at most SILENCE_MAX."""
    if not words or words[0].norm != "for":
        return None, words
    if len(words) == 1:
        raise _BadArgument("For how long? e.g. for 2h.")
    start = words[1].start
    found = parse_duration(text[start:])
    if found is None:
        raise _BadArgument(
            f"{_quote(words[1].raw)} is not a duration; write it like 30m, 2h, 1d or 1h30m."
        )
    value, length = found
    if value < SILENCE_MIN:
        raise _BadArgument("A silence lasts at least a minute.")
    if value > SILENCE_MAX:
        raise _BadArgument(
            f"A silence lasts at most {_format_duration(SILENCE_MAX)}, "
            f"not {_format_duration(value)}."
        )
    return value, [w for w in words if w.start >= start + length]


_ACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _read_action(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    """Read a runbook action's name, as typed (one word)."""
    if not words:
        return None, words
    name = words[0].raw.strip(_TRAILING + "(\"'“‘`")
    if not _ACTION.fullmatch(name):
        raise _BadArgument(f"{_quote(words[0].raw)} is not an action name; runbook lists them.")
    return name, words[1:]


def _read_confirm(words: list[_Word], text: str, surface: str) -> tuple[bool | None, list[_Word]]:
    if words and words[0].norm in ("confirm", "confirmed"):
        return True, words[1:]
    return None, words


_CHANNELS = {"email": "email", "mail": "email", "e-mail": "email", "chat": "chat", "room": "chat"}


def _read_channel(words: list[_Word], text: str, surface: str) -> tuple[str | None, list[_Word]]:
    if words and words[0].norm in _CHANNELS:
        return _CHANNELS[words[0].norm], words[1:]
    return None, words


_LEVEL = re.compile(r"(?:level|l)?(\d+)")


def _read_level(words: list[_Word], text: str, surface: str) -> tuple[int | None, list[_Word]]:
    """Read an escalation level: `to 2`, `to level 2`, `level 2` (1-based, as PagerDuty's)."""
    if not words or words[0].norm not in ("to", "level"):
        return None, words
    rest = words[1:] if words[0].norm == "to" else words
    if rest and rest[0].norm == "level":
        rest = rest[1:]
    found = _LEVEL.fullmatch(rest[0].norm) if rest else None
    if found is None:
        raise _BadArgument("Escalate to which level? e.g. escalate to level 2.")
    value = int(found.group(1)[:4])
    if value < 1:
        raise _BadArgument("Levels start at 1, e.g. escalate to level 2.")
    return value, rest[1:]


INCIDENT = Arg("incident", "(N)", "an incident number", _incident_reader(lenient=False))
# Before a number that is not an incident (`sev 2`): a short bare number is left alone.
INCIDENT_FIRST = Arg("incident", "(N)", "an incident number", _incident_reader(lenient=True))
TEXT = Arg("text", "(note)", "a note", _read_text)
TOPIC = Arg("topic", "(command)", "a command", _read_topic)
USER = Arg("user", "@user", "a person (@name, or me)", _read_user, required=True)
PAGE_TARGET = Arg(
    "target", "(@user or schedule)", "a person or a schedule", _read_page_target, required=True
)
ONCALL_TARGET = Arg("target", "(schedule or service)", "a schedule or service", _read_name)
SEVERITY = Arg("severity", "(1-5)", "a severity from 1 to 5", _read_severity, required=True)
MATCHERS = Arg(
    "matchers", "(matchers)", "label matchers like alertname=DiskFull", _read_matchers, True
)
DURATION = Arg("duration", "for (duration)", 'how long, as "for 2h"', _read_duration, True)
ACTION = Arg("action", "(action)", "an action name", _read_action)
CONFIRM = Arg("confirm", "(confirm)", '"confirm"', _read_confirm)
CHANNEL = Arg("channel", "(email or chat)", '"email" or "chat"', _read_channel)
LEVEL = Arg("level", "(to level)", 'a level, as "to level 2"', _read_level, in_overview=False)


# --- the commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A command: its name, what people type for it, its grammar, and its help."""

    name: str
    aliases: tuple[str, ...]  # the first is how help writes it; may be several words
    args: tuple[Arg, ...]
    summary: str
    example: str
    codes: tuple[str, ...] = ()  # keypad short codes, on SMS and voice only
    surfaces: frozenset[str] = SURFACES
    listed: bool = True  # in help and suggestions

    @property
    def word(self) -> str:
        return self.aliases[0]

    @property
    def usage(self) -> str:
        return " ".join([self.word, *(arg.usage for arg in self.args if arg is not INCIDENT_FIRST)])

    @property
    def short_usage(self) -> str:
        """The usage as the list of every command by phone shows it (no optional extras)."""
        shown = (arg.usage for arg in self.args if arg is not INCIDENT_FIRST and arg.in_overview)
        return " ".join([self.word, *shown])


SPECS: tuple[Spec, ...] = (
    Spec(
        name="acknowledge",
        aliases=("ack", "acknowledge", "a"),
        args=(INCIDENT,),
        summary="acknowledge an incident (paging stops; it is yours)",
        example="ack 1042",
        codes=("4",),
    ),
    Spec(
        name="acknowledge_all",
        aliases=("ack all", "acknowledge all"),
        args=(),
        summary="acknowledge every triggered incident you were paged for",
        example="ack all",
    ),
    Spec(
        name="resolve",
        aliases=("resolve", "res", "r"),
        args=(INCIDENT, TEXT),
        summary="resolve an incident, with an optional note",
        example="resolve 1042 cleared /var/log",
        codes=("6",),
    ),
    Spec(
        name="escalate",
        aliases=("escalate", "esc"),
        args=(INCIDENT, LEVEL),
        summary="page the next escalation level now, or the level named",
        example="escalate 1042 to level 2",
        codes=("5",),
    ),
    Spec(
        name="assign",
        aliases=("assign", "reassign"),
        args=(INCIDENT, USER),
        summary="make someone the incident's owner (an acked incident pages them)",
        example="assign @bob",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="page",
        aliases=("page",),
        args=(INCIDENT, PAGE_TARGET),
        summary="page a person, or whoever is on call on a schedule, about the incident now",
        example="page @bob",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="oncall",
        aliases=("oncall", "on call", "on-call", "who is on call"),
        args=(ONCALL_TARGET,),
        summary="who is on call now and who is next, per schedule",
        example="oncall checkout",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="status",
        aliases=("status", "update"),
        args=(INCIDENT, replace(TEXT, usage="(text)", noun="the update's text", required=True)),
        summary="post a status update to the incident's subscribers",
        example="status Failover done; checkout is back",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="note",
        aliases=("note", "comment"),
        args=(INCIDENT, replace(TEXT, usage="(text)", noun="the note's text", required=True)),
        summary="add a note to the incident's timeline",
        example="note db-1 disk is 98% full",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="severity",
        aliases=("sev", "severity"),
        args=(INCIDENT_FIRST, SEVERITY, INCIDENT),
        summary="set the incident's severity, 1 (most severe) to 5",
        example="sev 2",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="silence",
        aliases=("silence", "mute"),
        args=(MATCHERS, DURATION, replace(TEXT, usage="(comment)", noun="a comment")),
        summary="silence matching alerts for a while (30d at most)",
        example="silence alertname=DiskFull job=db for 2h",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="incidents",
        aliases=("incidents", "open incidents"),
        args=(),
        summary="list the open incidents",
        example="incidents",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="subscribe",
        aliases=("subscribe", "sub"),
        args=(INCIDENT, CHANNEL),
        summary="get the incident's status updates, in chat or by email",
        example="subscribe email",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="unsubscribe",
        aliases=("unsubscribe", "unsub"),
        args=(INCIDENT, CHANNEL),
        summary="stop getting the incident's status updates",
        example="unsubscribe",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="runbook",
        aliases=("runbook", "runbooks", "rb"),
        args=(INCIDENT,),
        summary="show the incident's runbook and its actions",
        example="runbook",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="graph",
        aliases=("graph", "graphs", "dashboards"),
        args=(INCIDENT,),
        summary="post the incident's graphs and dashboards",
        example="graph",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="postmortem",
        aliases=("postmortem", "post-mortem", "pm"),
        args=(INCIDENT,),
        summary="start the incident's postmortem and link to it and its exports",
        example="postmortem",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="run",
        aliases=("run",),
        args=(ACTION, CONFIRM),
        summary="list the runbook's actions, or run one (asks you to confirm first)",
        example="run restart-db confirm",
        surfaces=CHAT_SURFACES,
    ),
    Spec(
        name="help",
        aliases=("help", "?"),
        args=(TOPIC,),
        summary="list the commands, or explain one",
        example="help ack",
    ),
    # Twilio's own opt-out keywords (it also answers them); only a whole message counts.
    Spec(
        name="stop",
        aliases=("stop", "stopall", "unsubscribe", "cancel", "end", "quit"),
        args=(),
        summary="stop Muster's text messages to this number",
        example="STOP",
        surfaces=frozenset({"sms"}),
        listed=False,
    ),
    Spec(
        name="start",
        aliases=("start", "yes", "unstop"),
        args=(),
        summary="let Muster text this number again",
        example="START",
        surfaces=frozenset({"sms"}),
        listed=False,
    ),
)

_BY_NAME = {spec.name: spec for spec in SPECS}


def spec_for(name: str) -> Spec:
    """Return the spec of the command called `name`."""
    return _BY_NAME[name]


def _phrases(spec: Spec, surface: str | None) -> list[str]:
    """Return what people may type for `spec` on `surface` (None: any surface)."""
    phrases = list(spec.aliases)
    if surface is None or surface in PHONE_SURFACES:
        phrases += spec.codes
    return phrases


def _match(words: list[_Word], surface: str | None) -> tuple[Spec | None, int]:
    """Return the spec whose longest phrase starts `words`, and how many words it took."""
    best: tuple[Spec | None, int] = (None, 0)
    for spec in SPECS:
        if surface is not None and surface not in spec.surfaces:
            continue
        for phrase in _phrases(spec, surface):
            size = phrase.count(" ") + 1
            if size > best[1] and [w.norm for w in words[:size]] == phrase.split(" "):
                best = (spec, size)
    return best


# --- parsing ---------------------------------------------------------------------------------

# Surrounding punctuation is noise ("ack!", "(1042)", "/ack"), but "#" marks an incident.
_STRIP = string.punctuation.replace("#", "") + "“”‘’«»…"


def _words(text: str) -> list[_Word]:
    words = []
    for match in re.finditer(r"\S+", text):
        norm = match.group().strip(_STRIP).lower()
        if not norm and not words and set(match.group()) == {"?"}:
            norm = "?"  # a message starting with "?" asks for help
        if norm:
            words.append(_Word(match.group(), norm, match.start()))
    return words


def parse(text: str, *, surface: str) -> Command | ParseError:
    """Return the command `text` asks for on `surface`, or a ParseError saying what is wrong."""
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; one of {sorted(SURFACES)}")
    words = _words(text)
    if not words:
        return ParseError(f"Nothing to do. {_try_help(surface)}")
    spec, used = _match(words, surface)
    if spec is None:
        return _unknown(words, surface)
    values: dict[str, object] = {}
    rest = words[used:]
    try:
        for arg in spec.args:
            value, rest = arg.read(rest, text, surface)
            if value is None:
                if arg.required:
                    raise _BadArgument(f'"{spec.word}" needs {arg.noun}, e.g. {spec.example}.')
                continue
            for field, each in (value if isinstance(value, dict) else {arg.field: value}).items():
                if field in values:  # `sev #1042 2 #1043`
                    raise _BadArgument(f"Name one {arg.noun}, not two.")
                values[field] = each
    except _BadArgument as exc:
        return ParseError(f"{exc} {_try_help(surface)}", suggestion=spec.word, command=spec.name)
    if rest:
        leftover = text[rest[0].start :].strip()
        return _leftover(spec, words, leftover, surface)
    return Command(name=spec.name, **values)


def _try_help(surface: str) -> str:
    return "Reply HELP for the commands." if surface in PHONE_SURFACES else 'Try "help".'


def _suggestable(surface: str) -> dict[str, Spec]:
    return {
        phrase: spec
        for spec in SPECS
        if spec.listed and surface in spec.surfaces
        for phrase in _phrases(spec, surface)
        if len(phrase) > 1  # "a" and "4" are close to everything
    }


def _closest(words: list[_Word], surface: str) -> Spec | None:
    """Return the command most like what was typed (difflib), if any is close."""
    candidates = _suggestable(surface)
    for size in (2, 1):
        typed = " ".join(w.norm for w in words[:size])
        found = difflib.get_close_matches(typed, list(candidates), n=1, cutoff=0.6)
        if found:
            return candidates[found[0]]
    return None


def _listed(surface: str) -> list[Spec]:
    return [s for s in SPECS if s.listed and surface in s.surfaces]


def _unknown(words: list[_Word], surface: str) -> ParseError:
    typed = _quote(words[0].raw)
    spec = _closest(words, surface)
    if spec is None:
        listed = ", ".join(s.word for s in _listed(surface))
        return ParseError(f"Unknown command {typed}. Commands: {listed}. {_try_help(surface)}")
    return ParseError(
        f'Unknown command {typed}. Did you mean "{spec.word}"? e.g. {spec.example}',
        suggestion=spec.word,
    )


def _leftover(spec: Spec, words: list[_Word], leftover: str, surface: str) -> ParseError:
    other = _closest(words, surface)  # "ack al" is "ack all", not "ack" and then "al"
    if other is not None and other is not spec:
        return ParseError(
            f'Did you mean "{other.word}"? e.g. {other.example}',
            suggestion=other.word,
            command=spec.name,
        )
    nouns = list(dict.fromkeys(arg.noun for arg in spec.args))
    takes = " and ".join(nouns) or "nothing"
    return ParseError(
        f'"{spec.word}" takes {takes}; not sure what {_quote(leftover)} means. e.g. {spec.example}',
        suggestion=spec.word,
        command=spec.name,
    )


def _quote(typed: str, limit: int = 20) -> str:
    return f'"{typed[:limit]}..."' if len(typed) > limit else f'"{typed}"'


# --- help ------------------------------------------------------------------------------------


def help_text(topic: str | None = None, *, surface: str) -> str:
    """Return plain-text help: all commands on `surface`, or the one named (which fits an SMS,
    as does the whole list by phone)."""
    if topic is not None:
        spec = _BY_NAME[topic]
        also = [p for p in _phrases(spec, surface) if p != spec.word]
        aka = f" Also: {', '.join(also)}." if also else ""
        return f"{spec.usage}: {spec.summary}. e.g. {spec.example}.{aka}"
    listed = _listed(surface)
    if surface == "voice":
        keys = ", ".join(f"{s.codes[0]} to {s.name}" for s in listed if s.codes)
        return f"Press {keys}."
    parts = []
    for spec in listed:
        code = f"{spec.codes[0]} or " if spec.codes and surface in PHONE_SURFACES else ""
        parts.append(code + (spec.short_usage if surface in PHONE_SURFACES else spec.usage))
    text = f"Commands: {'; '.join(parts)}. N: an incident number"
    if surface in PHONE_SURFACES:
        return f"{text}, else your latest page. STOP ends texts."
    # Chat has more commands than fit an SMS; chat's own help is `help_markdown`.
    return f"{text}, else this room's incident."


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def help_markdown(topic: str | None = None, *, surface: str = "chat") -> str:
    """Return help for chat: every command as a Markdown table row; or the one named, as in
    `help_text` (one line reads well anywhere)."""
    if topic is not None:
        return help_text(topic, surface=surface)
    rows = [
        f"| `{_cell(s.usage)}` | {_cell(s.summary)} | `{_cell(s.example)}` |"
        for s in _listed(surface)
    ]
    return "\n".join(
        [
            "| Command | What it does | Example |",
            "| --- | --- | --- |",
            *rows,
            "",
            "Start a command with `/` or `@muster`. (N) is an incident number (`1042`, `#42`, "
            "`incident 42`); in an incident's room it is that incident.",
        ]
    )


# --- addressing in chat ----------------------------------------------------------------------

_BOT_NAME = re.compile(r"@muster(?![\w.-])[\s:,]*", re.IGNORECASE)


def _exact_verb_incident() -> re.Pattern[str]:
    """`<verb> incident <N>` is a command on its own for every verb that needs nothing else."""
    verbs = sorted(
        {
            re.escape(phrase)
            for spec in SPECS
            if "chat" in spec.surfaces
            and any(arg.field == "incident" for arg in spec.args)
            and not any(arg.required for arg in spec.args)
            for phrase in spec.aliases
        },
        key=len,
        reverse=True,
    )
    return re.compile(rf"(?:{'|'.join(verbs)})\s+incident\s+#?\d+[.!]?", re.IGNORECASE)


_VERB_INCIDENT = _exact_verb_incident()


def addressed_command(text: str) -> str | None:
    """Return the command in a chat message, or None when the message is conversation.

    A message is a command when it starts with "/" or "@muster", or is exactly
    "<verb> incident <N>" (so "ack incident 778467" works without a prefix).
    """
    stripped = text.strip()
    if stripped.startswith("/"):
        return stripped[1:].strip()
    bot = _BOT_NAME.match(stripped)
    if bot is not None:
        return stripped[bot.end() :].strip()
    if _VERB_INCIDENT.fullmatch(stripped):
        return stripped
    return None
