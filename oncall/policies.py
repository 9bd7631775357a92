"""Escalation policies' steps: their limits, and the writes that keep them in order.

A policy's steps are ordered by `position`, 0 to n-1 with no gap (ties, which no write here
makes, fall back to the id). The API and the setup pages change steps through these functions;
each change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from oncall.models import EscalationPolicy, EscalationStep

MAX_STEPS = 20
MAX_STEP_DELAY = 24 * 60  # minutes
DEFAULT_STEP_DELAY = EscalationStep._meta.get_field("delay_minutes").default
TARGETS = ("users", "schedules", "teams")


def ordered_steps(policy: EscalationPolicy | int) -> QuerySet[EscalationStep]:
    """Return the policy's steps in their order."""
    policy_id = policy if isinstance(policy, int) else policy.pk
    return EscalationStep.objects.filter(policy_id=policy_id).order_by("position", "id")


@transaction.atomic
def replace_steps(
    policy: EscalationPolicy, steps: Sequence[dict[str, Any]], *, by: User | None
) -> None:
    """Make the policy's steps these (each: delay_minutes, users, schedules, teams), in order,
    keeping the row at each position; audit each step created, changed or removed."""
    existing = list(ordered_steps(policy))
    for position, given in enumerate(steps):
        data = dict(given)
        targets = {name: data.pop(name, []) for name in TARGETS}
        if position < len(existing):
            step = existing[position]
            before = snapshot(step)
            step.position = position
            step.delay_minutes = data.get("delay_minutes", DEFAULT_STEP_DELAY)
            step.save(update_fields=["position", "delay_minutes"])
        else:
            step = EscalationStep.objects.create(policy=policy, position=position, **data)
            before = None
        for name, values in targets.items():
            getattr(step, name).set(values)
        after = snapshot(step)
        if before is None:
            record_change(by, CREATED, step, after)
        else:
            record_change(by, UPDATED, step, diff(before, after))
    for step in existing[len(steps) :]:
        _delete(step, by=by)


@transaction.atomic
def remove_step(step: EscalationStep, *, by: User | None) -> None:
    """Delete `step` (audited) and close the gap it leaves in its policy's order."""
    _delete(step, by=by)
    _renumber(ordered_steps(step.policy_id))


def _delete(step: EscalationStep, *, by: User | None) -> None:
    before, pk = snapshot(step), step.pk
    step.delete()
    record_change(by, DELETED, step, before, object_id=pk)


def _renumber(steps: Iterable[EscalationStep]) -> None:
    for position, step in enumerate(steps):
        if step.position != position:
            step.position = position
            step.save(update_fields=["position"])
