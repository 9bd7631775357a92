"""Project middleware: plain-HTTP writes to the paths exempt from the https redirect."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import lru_cache

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.api_errors import error_json

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@lru_cache(maxsize=4)
def _exempt(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def plain_http_refusal(request: HttpRequest) -> HttpResponse | None:
    """Refuse, with a 403 naming https, a write that came over plain HTTP to a path the https
    redirect leaves alone (ingest, webhooks, probes), while Muster is served over https.

    A redirect would lose the body (Go clients re-send a redirected POST as a GET), and taking
    it would let the sender believe plain HTTP is fine: its token crossed the network in clear.
    """
    if not getattr(settings, "SECURE_SSL_REDIRECT", False) or request.method in SAFE_METHODS:
        return None
    if request.is_secure():
        return None
    path = request.path.lstrip("/")
    if not any(p.search(path) for p in _exempt(tuple(settings.SECURE_REDIRECT_EXEMPT))):
        return None
    url = settings.PUBLIC_URL + request.path  # not the query: Opsgenie's may hold its key
    message = f"Muster takes this over https only: send it to {url}"
    return error_json(403, message)


class RefusePlainHttpWrites:
    """The middleware around plain_http_refusal, for the sync and the async stack."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if iscoroutinefunction(self):
            return self._acall(request)
        return plain_http_refusal(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return plain_http_refusal(request) or await self.get_response(request)  # type: ignore[misc]
