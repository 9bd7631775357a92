"""Small builders for on-call objects in tests: schedules, layers, overrides, policies, people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from accounts.models import Role, User
from oncall.models import (
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    Layer,
    LayerParticipant,
    NotificationRule,
    Override,
    Schedule,
    ServicePolicy,
    Team,
)


def make_person(username: str, role: str = Role.RESPONDER, **fields) -> User:
    return User.objects.create_user(username, f"{username}@example.com", "pw", role=role, **fields)


def make_schedule(name: str = "primary", time_zone: str = "UTC", **fields) -> Schedule:
    return Schedule.objects.create(name=name, time_zone=time_zone, **fields)


def add_layer(
    schedule: Schedule,
    people: Sequence[User],
    *,
    start: datetime,
    rotation: str = "weekly",
    level: int = 0,
    shift_hours: int = 24,
    restrictions: list | None = None,
    end: datetime | None = None,
    name: str = "",
) -> Layer:
    layer = Layer.objects.create(
        schedule=schedule,
        name=name,
        level=level,
        rotation=rotation,
        shift_hours=shift_hours,
        start=start,
        end=end,
        restrictions=restrictions or [],
    )
    LayerParticipant.objects.bulk_create(
        LayerParticipant(layer=layer, user=user, position=i) for i, user in enumerate(people)
    )
    return layer


def add_override(schedule: Schedule, user: User, start: datetime, end: datetime, by=None):
    return Override.objects.create(
        schedule=schedule, user=user, start=start, end=end, created_by=by
    )


def make_team(name: str, members: Sequence[User] = ()) -> Team:
    team = Team.objects.create(name=name)
    team.members.add(*members)
    return team


def make_policy(name: str, *steps: dict, service=None, repeat: int = 0) -> EscalationPolicy:
    """Each step is {"users": [...], "schedules": [...], "teams": [...], "delay": minutes}."""
    policy = EscalationPolicy.objects.create(name=name, repeat=repeat)
    for position, targets in enumerate(steps):
        step = EscalationStep.objects.create(
            policy=policy, position=position, delay_minutes=targets.get("delay", 15)
        )
        step.users.set(targets.get("users", []))
        step.schedules.set(targets.get("schedules", []))
        step.teams.set(targets.get("teams", []))
    if service is not None:
        ServicePolicy.objects.create(service=service, policy=policy)
    return policy


def reachable(user: User, *, urgency: str = "high", delays=(0,)) -> ContactMethod:
    """Give `user` a verified SMS number and a notification rule per delay, at `urgency`."""
    method = ContactMethod.objects.create(
        user=user,
        kind=ContactKind.SMS,
        address=f"+1415555{user.pk:04d}",
        verified_at=timezone.now(),
    )
    for delay in delays:
        NotificationRule.objects.create(
            user=user, urgency=urgency, delay_minutes=delay, contact_method=method
        )
    return method


def verified_phone(user: User, number: str = "+14155550100", kind: str = ContactKind.SMS):
    return ContactMethod.objects.create(
        user=user, kind=kind, address=number, verified_at=timezone.now()
    )


def oncall_world(me: User) -> dict:
    """One of every on-call object the API exposes (for the role table), keyed by name.

    "my_*" objects belong to `me`; the others to nobody in particular.
    """
    from datetime import timedelta

    from accounts.audit import record_change
    from incidents.models import Service
    from oncall.models import NotificationRule

    now = timezone.now()
    alice = User.objects.get(username="alice")
    bob = User.objects.get(username="bob")
    team = make_team("ops", [alice, bob])
    spare_team = make_team("spare")
    schedule = make_schedule("primary", "Europe/Berlin", team=team)
    spare_schedule = make_schedule("spare")
    layer = add_layer(schedule, [alice, bob], start=now - timedelta(days=3), rotation="daily")
    override = add_override(
        schedule, bob, now + timedelta(hours=1), now + timedelta(hours=5), by=alice
    )
    service = Service.objects.get(name="checkout")
    policy = make_policy("checkout", {"schedules": [schedule], "users": [alice]}, service=service)
    spare_policy = make_policy("spare", {"teams": [team]})
    method = verified_phone(me)
    new_method = ContactMethod.objects.create(user=me, kind=ContactKind.SMS, address="+14155550123")
    rule = NotificationRule.objects.create(
        user=me, urgency="high", delay_minutes=0, contact_method=method
    )
    NotificationRule.objects.create(user=me, urgency="low", delay_minutes=0, contact_method=method)
    entry = record_change(alice, "created", schedule, {"name": "primary"})
    from incidents.models import Incident
    from oncall.models import Page

    page = Page.objects.create(
        incident=Incident.objects.order_by("number").first(),
        person=me,
        contact_method=method,
        channel="console",
        address=method.address,
        send_after=now,
        manual=True,
    )
    return {
        "my_username": me.username,
        "page": page.pk,
        "team": team.pk,
        "spare_team": spare_team.pk,
        "schedule": schedule.pk,
        "spare_schedule": spare_schedule.pk,
        "layer": layer.pk,
        "override": override.pk,
        "policy": policy.pk,
        "spare_policy": spare_policy.pk,
        "service_policy": policy_binding(service).pk,
        "my_method": method.pk,
        "my_new_method": new_method.pk,
        "my_rule": rule.pk,
        "audit_entry": entry.pk,
    }


def policy_binding(service) -> ServicePolicy:
    return ServicePolicy.objects.get(service=service)
