"""Who may see and do what in the web UI: the same roles as the API (accounts.models.Role)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.models import Role


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
