"""Escalation plans: where a run of a policy stands, what the next run does (pure), and the
levels of a service's policy.

`plan` is the whole of the semantics the module docstring of oncall.escalation describes, as a
pure function of what the causing entry asks and where the last run stood.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.compiled import Lookup
from incidents.models import Incident
from incidents.services import IncidentError
from oncall.models import Escalation, EscalationPolicy, EscalationStep, ServicePolicy
from oncall.schedules import describe_targets

# --- where a run stands, and where the next one goes (pure) ----------------------------------


@dataclass(frozen=True)
class Where:
    """Where a run stands: the level it paged last (1-based; 0: none yet) in `level_cycle`,
    and the step (0-based) and cycle it fires next."""

    level: int
    level_cycle: int
    next_step: int
    next_cycle: int


START = Where(level=0, level_cycle=0, next_step=0, next_cycle=0)


# What a timeline entry asks of the next run.
BEGIN = "begin"  # page level 1 now


ESCALATE = "escalate"  # page the level after the one paged last now


ESCALATE_TO = "escalate_to"  # page a chosen level now


RESUME = "resume"  # page the level paged last again now, and go on from there


ASSIGNEE = "assignee"  # page the assignee now; the next level after the delay


@dataclass(frozen=True)
class Move:
    """What a new run does at once: fire (step, cycle) now, or page the assignee standing in
    for `stand` (level, cycle) and fire `then` after that level's delay (None: run out)."""

    fire: tuple[int, int] | None = None
    stand: tuple[int, int] | None = None
    then: tuple[int, int] | None = None
    also_assignee: bool = False  # page the assignee besides the level fired now
    note: str = ""


def after(step: int, cycle: int, steps: int) -> tuple[int, int]:
    """Return the (step, cycle) that follows `step` of `cycle` in a policy of `steps` steps."""
    step += 1
    return (0, cycle + 1) if step >= steps else (step, cycle)


def plan(what: str, where: Where, *, steps: int, repeat: int, level: int | None = None) -> Move:
    """Return what a new run does, given what its cause asks for and where the last run stood
    (`START` if none ran). `steps` ≥ 1; `level` (1-based) is escalate_to's."""
    fired_before = where.level > 0
    current = (min(where.level, steps) - 1, where.level_cycle)
    following = (where.next_step, where.next_cycle)
    if following[0] >= steps:  # the policy lost steps since: its next pass
        following = (0, following[1] + 1)
    if what == ESCALATE_TO:
        assert level is not None and 1 <= level <= steps
        return Move(fire=(level - 1, where.level_cycle))
    if what == BEGIN or not fired_before:
        return Move(fire=(0, 0), also_assignee=what == ASSIGNEE)
    if what == RESUME:
        return Move(fire=current)
    if what == ASSIGNEE:
        return Move(stand=current, then=following if following[1] <= repeat else None)
    # ESCALATE
    if following[1] <= repeat:
        return Move(fire=following)
    if repeat:  # a whole new pass of the policy, repeats and all
        return Move(fire=(0, 0), note="The policy had run out; it starts again at level 1.")
    return Move(
        fire=(steps - 1, where.level_cycle),
        note=f"Level {steps} is the policy's last; it is paged again.",
    )


def where_of(run: Escalation | None) -> Where:
    """Return where `run` stands (`START` for no run)."""
    if run is None:
        return START
    return Where(
        level=run.level,
        level_cycle=run.level_cycle,
        next_step=run.step,
        next_cycle=run.cycle,
    )


# --- the policy's levels ---------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    number: int  # 1-based
    targets: str  # whom it pages, in words


def policy_levels(service_id: int) -> list[Level]:
    """Return the levels of the service's escalation policy (none without a policy)."""
    policy = policy_of(service_id)
    if policy is None:
        return []
    return [
        Level(number=i + 1, targets=describe_targets(step))
        for i, step in enumerate(policy_steps(policy))
    ]


def check_level(incident: Incident, level: int) -> None:
    """Raise IncidentError unless `level` (1-based) is one of the incident's policy's levels."""
    policy = policy_of(incident.service_id)
    count = len(policy_steps(policy)) if policy is not None else 0
    if policy is None or count == 0:
        why = "has no escalation policy" if policy is None else f"'s policy {policy.name} is empty"
        raise IncidentError(f"{incident.service.name}{why}, so it has no levels to escalate to.")
    if not 1 <= level <= count:
        raise IncidentError(
            f"Escalation policy {policy.name} has {count} level{'s' if count > 1 else ''}; "
            f"choose 1 to {count}, not {level}."
        )


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
