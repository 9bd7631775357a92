"""A policy's steps, read by compiled statements, are what prefetch_related gave: the steps in
order, each with its users, schedules and teams, read in four statements however many steps."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from oncall.models import EscalationPolicy
from oncall.policies import policy_steps
from tests.oncall.builders import make_person, make_policy, make_schedule, make_team


def by_orm(policy: EscalationPolicy) -> list[tuple]:
    steps = policy.steps.order_by("position", "id").prefetch_related("users", "schedules", "teams")
    return [described(step) for step in steps]


def described(step) -> tuple:
    return (
        step.pk,
        step.position,
        step.delay_minutes,
        sorted(u.username for u in step.users.all()),
        [s.name for s in step.schedules.all()],
        [t.name for t in step.teams.all()],
    )


def test_each_step_has_whom_it_targets_as_the_orm_reads_them(db):
    bob, carol, dave = (make_person(name) for name in ("bob", "carol", "dave"))
    night, day = make_schedule("night"), make_schedule("day")
    dbas, web = make_team("dbas", [bob]), make_team("web", [carol, dave])
    other = make_policy("other", {"users": [dave]})
    policy = make_policy(
        "main",
        {"users": [bob, carol], "schedules": [night, day], "delay": 5},
        {"teams": [web, dbas]},
        {},  # a step that targets nobody
        {"users": [dave], "teams": [dbas], "schedules": [day], "delay": 30},
    )

    with CaptureQueriesContext(connection) as queries:
        steps = policy_steps(policy)
        mine = [described(step) for step in steps]  # every target in hand: nothing more read
    assert len(queries) == 4
    assert mine == by_orm(policy)
    assert [s[2] for s in mine] == [5, 15, 15, 30]
    assert mine[0][4] == ["day", "night"] and mine[1][5] == ["dbas", "web"]  # by name
    assert [described(step) for step in policy_steps(other)] == by_orm(other)


def test_a_policy_without_steps_reads_one_statement(db):
    empty = make_policy("empty")
    with CaptureQueriesContext(connection) as queries:
        assert policy_steps(empty) == []
    assert len(queries) == 1
