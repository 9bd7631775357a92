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
from dataclasses import dataclass

CHAT_SURFACES = frozenset({"chat", "web", "slack", "mattermost"})
PHONE_SURFACES = frozenset({"sms", "voice"})
SURFACES = CHAT_SURFACES | PHONE_SURFACES


@dataclass(frozen=True)
class Command:
    """What someone asked for. `incident` is the number they named, if any (else: context)."""

    name: str
    incident: int | None = None
    text: str = ""  # free text: resolve's note
    topic: str | None = None  # help's command, by name


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
# words left), or raises _BadArgument saying what is wrong.
Reader = Callable[[list[_Word], str, str], tuple[object, list[_Word]]]


@dataclass(frozen=True)
class Arg:
    """One slot of a command's grammar: optional, read in order, stored on `Command.<field>`."""

    field: str
    usage: str  # in parentheses, not brackets: "[" costs two characters of a GSM-7 SMS
    noun: str
    read: Reader


_NUMBER = re.compile(r"#?(\d+)")
# Longer numbers would overflow the database's integers; nobody has that many incidents.
_MAX_DIGITS = 18


def _incident_number(digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise _BadArgument(f"{digits[:20]}... is too long to be an incident number.")
    return int(digits)


def _read_incident(words: list[_Word], text: str, surface: str) -> tuple[int | None, list[_Word]]:
    """Read `incident N`, `#N` or a bare number of four or more digits."""
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
    if first.isdigit() and len(words) == 1:
        # "ack 42": surely an incident, but short numbers are only taken when marked as one.
        raise _BadArgument(f"For incident {first}, write #{first} or incident {first}.")
    return None, words


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


INCIDENT = Arg("incident", "(N)", "an incident number", _read_incident)
TEXT = Arg("text", "(note)", "a note", _read_text)
TOPIC = Arg("topic", "(command)", "a command", _read_topic)


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
        return " ".join([self.word, *(arg.usage for arg in self.args)])


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
        args=(INCIDENT,),
        summary="page the next escalation step now",
        example="escalate 1042",
        codes=("5",),
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
            if value is not None:
                values[arg.field] = value
    except _BadArgument as exc:
        return ParseError(f"{exc} {_try_help(surface)}", command=spec.name)
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


def _unknown(words: list[_Word], surface: str) -> ParseError:
    typed = _quote(words[0].raw)
    spec = _closest(words, surface)
    if spec is None:
        listed = ", ".join(s.word for s in SPECS if s.listed and surface in s.surfaces)
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
    takes = " and ".join(arg.noun for arg in spec.args) or "nothing"
    return ParseError(
        f'"{spec.word}" takes {takes}; not sure what {_quote(leftover)} means. e.g. {spec.example}',
        suggestion=spec.word,
        command=spec.name,
    )


def _quote(typed: str, limit: int = 20) -> str:
    return f'"{typed[:limit]}..."' if len(typed) > limit else f'"{typed}"'


# --- help ------------------------------------------------------------------------------------


def help_text(topic: str | None = None, *, surface: str) -> str:
    """Return short help (it must fit an SMS): all commands on `surface`, or the one named."""
    if topic is not None:
        spec = _BY_NAME[topic]
        also = [p for p in _phrases(spec, surface) if p != spec.word]
        aka = f" Also: {', '.join(also)}." if also else ""
        return f"{spec.usage}: {spec.summary}. e.g. {spec.example}.{aka}"
    listed = [s for s in SPECS if s.listed and surface in s.surfaces]
    if surface == "voice":
        keys = ", ".join(f"{s.codes[0]} to {s.name}" for s in listed if s.codes)
        return f"Press {keys}."
    parts = []
    for spec in listed:
        code = f"{spec.codes[0]} or " if spec.codes and surface in PHONE_SURFACES else ""
        parts.append(code + spec.usage)
    text = f"Commands: {'; '.join(parts)}. N: an incident number"
    if surface in PHONE_SURFACES:
        return f"{text}, else your latest page. STOP ends texts."
    return f"{text}, else this room's incident."


# --- addressing in chat ----------------------------------------------------------------------

_BOT_NAME = re.compile(r"@muster(?![\w.-])[\s:,]*", re.IGNORECASE)


def _exact_verb_incident() -> re.Pattern[str]:
    verbs = sorted(
        {
            re.escape(phrase)
            for spec in SPECS
            if INCIDENT in spec.args and "chat" in spec.surfaces
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
