"""Find people, schedules and services by the names people type in commands."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from accounts.models import User

Named = TypeVar("Named", bound=Model)


def person_named(name: str, me: User) -> User | None:
    """Return the active person `name` stands for ("me" is whoever typed it); a username's case
    only matters when two people differ by it."""
    if name == "me":
        return me
    people = list(User.objects.filter(username__iexact=name, is_active=True)[:5])
    exact = [p for p in people if p.username == name]
    if exact:
        return exact[0]
    return people[0] if len(people) == 1 else None


def by_name(queryset: QuerySet[Named], name: str) -> tuple[Named | None, list[str]]:
    """Return the object whose `name` is `name` (any case), else the only one containing it;
    with no single answer, the names of a few that contain it."""
    if not name:
        return None, []
    exact = queryset.filter(name__iexact=name).first()
    if exact is not None:
        return exact, []
    close = list(queryset.filter(name__icontains=name).order_by("name")[:6])
    if len(close) == 1:
        return close[0], []
    return None, [o.name for o in close]  # type: ignore[attr-defined]
