"""Escalation plans: where a run of a policy stands, what the next run does (pure), and the
levels of a service's policy.

`plan` is the whole of the semantics the module docstring of oncall.escalation describes, as a
pure function of what the causing entry asks and where the last run stood.
"""

from __future__ import annotations

from dataclasses import dataclass

from incidents.models import Incident
from incidents.services import IncidentError
from oncall.models import Escalation
from oncall.policies import policy_of, policy_steps
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
