"""The page a locked-out sign-in gets (django-axes' AXES_LOCKOUT_CALLABLE): 429, and when to
try again, on /login/ and /admin/login/ alike."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.signin import locked_until


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    until = locked_until(request, credentials) or (timezone.now() + settings.AXES_COOLOFF_TIME)
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    response = render(
        request,
        "web/locked_out.html",
        {"until": until, "minutes": math.ceil(seconds / 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response
