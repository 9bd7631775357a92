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
from core.compiled import Lookup
from oncall.models import EscalationPolicy, EscalationStep, ServicePolicy

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


# --- reading a policy's steps, for an escalation ------------------------------------------


def policy_of(service_id: int) -> EscalationPolicy | None:
    """Return the escalation policy the service's incidents follow, if any."""
    found = _BINDING.instances(service_id)
    return found[0].policy if found else None


# Every new incident's escalation asks: compiled once (core.compiled).
_BINDING = Lookup(
    lambda service: (
        ServicePolicy.objects.filter(service_id=service).select_related("policy").order_by("pk")[:1]
    ),
    takes=(int,),
)


def policy_steps(policy: EscalationPolicy) -> list[EscalationStep]:
    """Return the policy's steps in order (by position, then id, as `on_call_for_service`
    takes the first), with whom each targets (`step.users.all()` and so on read nothing).

    Every new incident's escalation asks. Read by statements compiled once (core.compiled) and
    put where prefetch_related puts what it reads: prefetch_related compiled its four statements
    each time, and its machinery cost more than running them.
    """
    steps = _STEPS.instances(policy.pk)
    if not steps:
        return []
    for step in steps:
        step._prefetched_objects_cache = {}
    for name, lookup, target in _TARGETS:
        found: dict[int, list] = {step.pk: [] for step in steps}
        for link in lookup.instances(policy.pk):
            found[link.escalationstep_id].append(getattr(link, target))
        for step in steps:
            manager = getattr(step, name)
            targets = manager.get_queryset()  # as the related manager filters them
            targets._result_cache = found[step.pk]
            targets._prefetch_done = True
            step._prefetched_objects_cache[manager.prefetch_cache_name] = targets
    return steps


_STEPS = Lookup(
    lambda policy: EscalationStep.objects.filter(policy_id=policy).order_by("position", "id"),
    takes=(int,),
)


def _targets_of(field: str, target: str, *order: str) -> Lookup:
    """A policy's steps' links to their `target`s (the many-to-many `field`'s rows), each with
    its target, in the order prefetch_related gave them (the target model's)."""
    through = getattr(EscalationStep, field).through
    return Lookup(
        lambda policy: (
            through.objects.filter(escalationstep__policy_id=policy)
            .select_related(target)
            .order_by(*order, "pk")
        ),
        takes=(int,),
    )


_TARGETS = (
    ("users", _targets_of("users", "user"), "user"),
    ("schedules", _targets_of("schedules", "schedule", "schedule__name"), "schedule"),
    ("teams", _targets_of("teams", "team", "team__name"), "team"),
)
