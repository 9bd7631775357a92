"""Who may see and do what in the web UI: the same roles as the API (accounts.models.Role)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Role
from incidents.models import Incident
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident


def role_required(read: Role | str = Role.OBSERVER, write: Role | str = Role.ADMIN) -> Callable:
    """Require login, `read` for GET/HEAD and `write` for any other method (a 403 otherwise)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            needed = read if request.method in ("GET", "HEAD") else write
            if not request.user.has_role(needed):
                raise PermissionDenied(
                    f"This needs the {needed} role; you are {request.user.role}."
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def incident_or_404(request: HttpRequest, number: int) -> Incident:
    """Return incident `number` if the person may see it; else a 404 saying why."""
    try:
        return access_incident(request.user, number)
    except (IncidentNotFound, NotAllowed) as exc:
        raise Http404(str(exc)) from None
