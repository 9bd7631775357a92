"""The commands: one `Spec` row each (name, aliases, argument grammar, keypad codes, surfaces,
help with an example), and the `Command` that parsing one yields.

To add a command, add a row here, and an `Arg` in `warroom.commands.args` if it takes a new kind
of argument; `warroom.execute` maps its name to a handler.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from alerts.matchers import Matcher
from warroom.commands.args import (
    ACTION,
    CHANNEL,
    CONFIRM,
    DURATION,
    INCIDENT,
    INCIDENT_FIRST,
    LEVEL,
    MATCHERS,
    ONCALL_TARGET,
    PAGE_TARGET,
    SEVERITY,
    SILENCE_ID,
    TEXT,
    USER,
    Arg,
    Word,
)

CHAT_SURFACES = frozenset({"chat", "web", "slack", "mattermost"})
PHONE_SURFACES = frozenset({"sms", "voice"})
SURFACE_NAMES = CHAT_SURFACES | PHONE_SURFACES


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
    silence: int | None = None  # unsilence's silence, by id
    action: str | None = None  # a runbook action's name, as typed
    confirm: bool = False  # "run <action> confirm"
    channel: str | None = None  # subscribe's "email" or "chat"
    level: int | None = None  # escalate's "to <level>", 1-based


def _read_topic(words: list[Word], text: str, surface: str) -> tuple[str | None, list[Word]]:
    """Read the command that help is asked about; anything else asks for general help."""
    if not words:
        return None, words
    spec, used = match_spec(words, surface)
    if spec is None or not spec.listed:
        return None, []
    return spec.name, words[used:]


TOPIC = Arg("topic", "(command)", "a command", _read_topic)


@dataclass(frozen=True)
class Spec:
    """A command: its name, what people type for it, its grammar, and its help."""

    name: str
    aliases: tuple[str, ...]  # the first is how help writes it; may be several words
    args: tuple[Arg, ...]
    summary: str
    example: str
    codes: tuple[str, ...] = ()  # keypad short codes, on SMS and voice only
    surfaces: frozenset[str] = SURFACE_NAMES
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
        name="unsilence",
        aliases=("unsilence", "unmute", "expire silence"),
        args=(SILENCE_ID,),
        summary="end a silence now; alerts it held that still fire open their incidents",
        example="unsilence 12",
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


def phrases(spec: Spec, surface: str | None) -> list[str]:
    """Return what people may type for `spec` on `surface` (None: any surface)."""
    typed = list(spec.aliases)
    if surface is None or surface in PHONE_SURFACES:
        typed += spec.codes
    return typed


def match_spec(words: list[Word], surface: str | None) -> tuple[Spec | None, int]:
    """Return the spec whose longest phrase starts `words`, and how many words it took."""
    best: tuple[Spec | None, int] = (None, 0)
    for spec in SPECS:
        if surface is not None and surface not in spec.surfaces:
            continue
        for phrase in phrases(spec, surface):
            size = phrase.count(" ") + 1
            if size > best[1] and [w.norm for w in words[:size]] == phrase.split(" "):
                best = (spec, size)
    return best


def listed_specs(surface: str) -> list[Spec]:
    """Return the commands help lists and suggests on `surface`."""
    return [s for s in SPECS if s.listed and surface in s.surfaces]
