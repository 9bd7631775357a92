"""What every page shows: whether pages reach people at all."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from oncall.channels.registry import console_fallbacks


def delivery(request: HttpRequest) -> dict[str, list[str]]:
    """`console_delivery`: the channels whose pages go to the console outbox, outside the
    embedded mode (where start-up allowed it explicitly); the base template warns of them."""
    if not settings.DATABASE_URL or not request.user.is_authenticated:
        return {"console_delivery": []}
    return {"console_delivery": console_fallbacks()}
