"""Sign-in throttling (django-axes): who the client is, how many failures lock, when it ends.

Failures are counted per (username, client address) pair and per client address alone, each
with its own limit (LOGIN_FAILURE_LIMIT, LOGIN_IP_FAILURE_LIMIT), within a cool-off that ends
by itself (LOGIN_COOLOFF_MINUTES after the last failure). A username alone is never locked:
anyone could lock the on-call person out. API tokens never go through this.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from functools import lru_cache

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request: HttpRequest) -> str:
    """Return the client's address: the peer's, or, when the peer is a trusted proxy
    (TRUSTED_PROXIES), the last address in X-Forwarded-For that no trusted proxy added.

    Proxies append the address they saw, so the list is read from its end; whatever lies left of
    the first untrusted address was written by the client and is ignored.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    nearest = _address(peer)
    if nearest is None or not any(nearest in net for net in trusted):
        return peer
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage, written by the client: the last trusted hop is all we know
        nearest = address
        if not any(address in net for net in trusted):
            break
    return str(nearest)


class SigninAttempts(AxesDatabaseHandler):
    """django-axes' database handler, with a limit of its own for the client address alone."""

    def counted(self, request: HttpRequest, credentials: dict | None) -> tuple[QuerySet, QuerySet]:
        """Return the failures within the cool-off: the (username, address) pair's, the
        address's."""
        recent = AccessAttempt.objects.all()
        cool_off = get_cool_off(request)
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        if cool_off is not None:
            recent = recent.filter(attempt_time__gte=now - cool_off)
        address = recent.filter(ip_address=getattr(request, "axes_ip_address", None))
        pair = address.filter(username=get_client_username(request, credentials))
        return pair, address

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Return the pair's failures, or the limit itself once the address alone is over its
        own limit (axes compares this one number with AXES_FAILURE_LIMIT, the pair's)."""
        pair, address = self.counted(request, credentials)
        if _failures(address) >= settings.LOGIN_IP_FAILURE_LIMIT:
            return max(_failures(pair), get_failure_limit(request, credentials))
        return _failures(pair)


def _failures(attempts: QuerySet) -> int:
    return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0


def locked_until(request: HttpRequest, credentials: dict | None = None) -> datetime | None:
    """When a locked-out client may try again: the cool-off after the last failure that counts
    (the address's, when the address alone is over its limit)."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    pair, address = SigninAttempts().counted(request, credentials)
    counting = address if _failures(address) >= settings.LOGIN_IP_FAILURE_LIMIT else pair
    last = counting.aggregate(last=Max("attempt_time"))["last"]
    return None if last is None else last + cool_off


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """Forget what sign-in no longer needs: sessions past their end (Django never deletes
    them by itself, and the websocket check reads them) and successful sign-ins older than
    SIGNIN_LOG_DAYS. Return how many of each went. Failures clean themselves on each attempt."""
    now = now or timezone.now()
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    logs, _ = AccessLog.objects.filter(
        attempt_time__lt=now - timedelta(days=settings.SIGNIN_LOG_DAYS)
    ).delete()
    return sessions, logs
