"""The commands `silence <matchers> for <duration>` (matching alerts open no incident for a
while) and `unsilence <id>` (end one now)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from alerts.matchers import all_match
from alerts.models import Alert, AlertStatus, Silence
from alerts.services import create_silence, expire_silence
from incidents.models import Incident, source_label
from warroom.commands.specs import Command
from warroom.markdown import code
from warroom.replies import Reply, is_phone, utc_time

# Firing alerts a new silence is checked against, to say how many it already matches.
ALERTS_CHECKED = 10_000
# Beyond any cap an admin means (and before the end of the calendar).
MAX_TYPED_DAYS = 3660


def silence(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`silence <matchers> for <duration>`: matching alerts open no incident for that long."""
    number = context.number if context is not None else None
    if not command.matchers or command.duration is None:
        return Reply("Which alerts, and for how long? e.g. silence alertname=DiskFull for 2h")
    now = timezone.now()
    if command.duration > timedelta(days=MAX_TYPED_DAYS):
        return Reply(f"A silence lasts at most {MAX_TYPED_DAYS}d.", incident=number)
    try:
        # The rules (no silence of every alert; a responder's lasts 30 days at most) and the
        # audit entry are alerts.services', as for the API and the web form.
        created = create_silence(
            matchers=[m.to_dict() for m in command.matchers],
            starts_at=now,
            ends_at=now + command.duration,
            comment=_comment(command, user, source, context),
            by=user,
        )
    except ValidationError as exc:
        problem = exc.messages[0]
        return Reply(f"{problem[:1].upper()}{problem[1:]}.", incident=number)
    firing = Alert.objects.filter(status=AlertStatus.FIRING).values_list("labels", flat=True)
    matching = sum(
        1
        for labels in firing[:ALERTS_CHECKED]
        if isinstance(labels, dict) and all_match(list(command.matchers), labels)
    )
    until = utc_time(created.ends_at)
    if is_phone(source):
        return Reply(f"Silence {created.pk} until {until}.", True, number)
    written = " ".join(code(str(m)) for m in command.matchers)
    already = (
        f" It matches {matching} firing alert{'s' if matching != 1 else ''}; "
        "their incidents stay open."
        if matching
        else ""
    )
    return Reply(f"Silenced {written} until {until} (silence {created.pk}).{already}", True, number)


def _comment(command: Command, user: User, source: str, context: Incident | None) -> str:
    via = source_label(source)
    where = f"from #{context.number} {context.title}, " if context is not None else ""
    said = f"{command.text} " if command.text else ""
    return f"{said}({where}by {user.get_username()} via {via})"[:2000]


def unsilence(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`unsilence <id>`: end a silence now (on the audit log); the alerts it held that still
    fire open their incidents at once."""
    number = context.number if context is not None else None
    found = Silence.objects.filter(pk=command.silence).first()
    if found is None:
        return Reply(f"There is no silence {command.silence}.", incident=number)
    if found.ends_at <= timezone.now():
        return Reply(f"Silence {found.pk} has already ended.", incident=number)
    expire_silence(found, by=user)
    return Reply(
        f"Expired silence {found.pk}; alerts it held that still fire open their incidents now.",
        True,
        number,
    )
