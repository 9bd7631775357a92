"""Reads that check permission in the same step."""

from __future__ import annotations

from accounts.models import Role, User
from incidents.models import Incident


class IncidentNotFound(Exception):
    pass


class NotAllowed(Exception):
    pass


def access_incident(user: User, number: int, *, role: str = Role.OBSERVER) -> Incident:
    """Return incident `number` if `user` holds `role`; raise NotAllowed or IncidentNotFound."""
    if not user.has_role(role):
        raise NotAllowed(f"This needs the {role} role; {user.get_username()} is {user.role}.")
    try:
        return Incident.objects.select_related("service").get(number=number)
    except Incident.DoesNotExist:
        raise IncidentNotFound(f"There is no incident #{number}.") from None
