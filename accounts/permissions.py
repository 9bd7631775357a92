"""Role checks for every API view: each view names the role its reads and writes need."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import Role


class RolePermission(BasePermission):
    """Allow reads to `read_role` (default observer) and writes to `write_role` (default admin).

    A view sets `read_role`/`write_role`; an action can set `required_role` on itself through
    `@action(..., required_role=...)` via the view's `get_required_role`.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        needed = required_role(request, view)
        if not user.has_role(needed):
            self.message = f"This needs the {needed} role; you are {user.role}."
            return False
        return True


def required_role(request, view) -> str:
    get_role = getattr(view, "get_required_role", None)
    if get_role is not None:
        role = get_role(request)
        if role:
            return role
    if request.method in SAFE_METHODS:
        return getattr(view, "read_role", Role.OBSERVER)
    return getattr(view, "write_role", Role.ADMIN)
