"""Admitting an ingest request: read its body within bounds, find its integration by token,
check the integration (enabled, signature, rate), or refuse it and record why on the integration.

Shared by the senders' endpoints (alerts.ingest) and the heartbeat ping (alerts.heartbeats).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from alerts import metrics
from alerts.decoding import LONE_SURROGATE, Rejected, Request
from alerts.models import IngestRequest, Integration, Outcome
from core.api_errors import error_json

log = logging.getLogger(__name__)

REJECTION_BODY_BYTES = 1024
RETRY_AFTER_SECONDS = 5  # what a 503 asks senders to wait


def allow_methods(*methods: str) -> Callable:
    """Answer other methods with a JSON 405 that names the allowed ones."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                response = error_json(405, f"{request.method} is not allowed here; use {allowed}")
                response["Allow"] = allowed
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def unavailable_without_database(answer: Callable[[], JsonResponse]) -> Callable:
    """An ingest view that meets an unreachable database (PostgreSQL restarting, its pool
    empty) answers `answer()`, a 503 with Retry-After in the sender's own format: senders
    retry a 503, while a 500 says the request itself is at fault."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            try:
                return view(request, *args, **kwargs)
            except DatabaseError:
                log.exception("ingest at %s: the database is unavailable", request.path)
                response = answer()
                response["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response

        return wrapper

    return decorator


# --- reading the request ---------------------------------------------------------------------


def read_body(request: HttpRequest) -> Request:
    """Return the body, refusing bodies over the size limit before reading them whole."""
    limit = settings.INGEST_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        declared_length = int(declared)
    except ValueError:
        raise Rejected(400, "Content-Length is not a number") from None
    content_type = _content_type(request)
    if declared_length > limit:
        raise Rejected(
            413,
            f"body is {declared_length} bytes; the limit is {limit} bytes",
            request=Request(request.read(REJECTION_BODY_BYTES), content_type),
        )
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Rejected(
            413,
            f"body is over the limit of {limit} bytes",
            request=Request(body[:REJECTION_BODY_BYTES], content_type),
        )
    return Request(body=body, content_type=content_type)


def head_of(request: HttpRequest) -> Request:
    """Return the start of a body not read yet, to record with a refusal."""
    try:
        body = request.read(REJECTION_BODY_BYTES)
    except Exception:  # a broken stream; the refusal is recorded without its body
        body = b""
    return Request(body=body, content_type=_content_type(request))


def _content_type(request: HttpRequest) -> str:
    # Stored with the request: PostgreSQL text cannot hold a NUL.
    return request.META.get("CONTENT_TYPE", "").replace("\x00", "\ufffd")


# --- finding and checking the integration ----------------------------------------------------


def find_integration(token: str, kinds: tuple[str, ...]) -> Integration | None:
    """Return the integration of one of `kinds` with this secret token, if there is one."""
    if not token_shape_ok(token):
        return None
    return Integration.objects.filter(token=token, kind__in=kinds).first()


def token_shape_ok(token: str) -> bool:
    # Tokens are short printable ASCII; anything else (a NUL above all, which PostgreSQL
    # refuses in a query parameter) cannot be one.
    return bool(token) and len(token) <= 64 and token.isascii() and token.isprintable()


def check_enabled(integration: Integration) -> None:
    if not integration.enabled:
        raise Rejected(403, f"integration {integration.name!r} is disabled")


GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
# Where grafana/alerting's signer puts the signature when the contact point leaves Header empty.
GRAFANA_DEFAULT_SIGNER_HEADER = "X-Grafana-Alert-Signature"
# Grafana's timestamp header has no default name (the contact point names it, if it wants one);
# these are the names Grafana's docs and provisioning examples use.
# A signed timestamp older than this (or this far ahead: clock skew) is refused as a replay.
SIGNATURE_MAX_AGE = timedelta(minutes=5)
GRAFANA_TIMESTAMP_HEADERS = (
    "X-Grafana-Alerting-Signature-Timestamp",
    "X-Grafana-Alerting-Timestamp",
    "X-Grafana-Alert-Timestamp",
)


def verify_hmac(integration: Integration, request: HttpRequest, body: bytes) -> None:
    """Check the HMAC-SHA256 signature of a Grafana or generic request when the integration
    has a secret.

    Grafana (11.6+) writes the lowercase hex HMAC-SHA256 of the body into the signature header;
    when its contact point names a timestamp header, it sends the Unix time there and signs
    `<timestamp>:<body>` instead. A timestamped request must be signed with its timestamp (a
    signature of the body alone is then refused, so a timestamp cannot be stripped) and be at
    most SIGNATURE_MAX_AGE old, or ahead: a replayed request is refused. A request with no
    timestamp has no such window; the docs say to configure the timestamp header.
    """
    if not integration.hmac_secret:
        return
    header = integration.hmac_header or GRAFANA_SIGNATURE_HEADER
    names = [header]
    if header.lower() == GRAFANA_SIGNATURE_HEADER.lower():
        names.append(GRAFANA_DEFAULT_SIGNER_HEADER)
    given = next((request.headers[n] for n in names if request.headers.get(n)), "")
    if not given:
        raise Rejected(401, f"missing signature header {header}")
    # Header values arrive as latin-1 text; compare bytes, which never raises on odd input.
    given_bytes = given.strip().lower().encode("latin-1", "replace")
    key = integration.hmac_secret.encode()
    stamp_header, timestamp = next(
        (
            (name, request.headers[name].strip())
            for name in (*GRAFANA_TIMESTAMP_HEADERS, f"{header}-Timestamp")
            if request.headers.get(name, "").strip()
        ),
        ("", ""),
    )
    message = timestamp.encode("latin-1", "replace") + b":" + body if timestamp else body
    expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(given_bytes, expected):
        signed = f"{stamp_header} and the body" if timestamp else "the body"
        raise Rejected(401, f"signature in {header} does not match {signed}")
    if timestamp:
        _check_signature_age(stamp_header, timestamp)


def _check_signature_age(name: str, timestamp: str) -> None:
    """Refuse a signed timestamp that is not a Unix time within SIGNATURE_MAX_AGE of now."""
    limit = int(SIGNATURE_MAX_AGE.total_seconds())
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Rejected(401, f"{name} must be a Unix time in seconds")
    age = time.time() - int(timestamp)
    if age > limit:
        raise Rejected(
            401,
            f"signed timestamp in {name} is {int(age)} s old; requests signed more than "
            f"{limit // 60} minutes ago are refused as replays",
        )
    if age < -limit:
        raise Rejected(
            401, f"signed timestamp in {name} is {int(-age)} s in the future; check the clocks"
        )


def over_rate_limit(integration: Integration) -> int:
    """Count this request; return seconds to wait if the integration is over its limit, else 0."""
    now = time.time()
    window = int(now // 60)
    key = f"ingest-rate:{integration.pk}:{window}"
    try:
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.add(key, 1, timeout=120)
            count = 1
    except Exception:  # any cache failure: alerts matter more than the limit
        log.warning("rate limit unavailable (cache error); request let through", exc_info=True)
        return 0
    if count > settings.INGEST_RATE_LIMIT_PER_MINUTE:
        return max(1, int((window + 1) * 60 - now) + 1)
    return 0


# --- refusing -------------------------------------------------------------------------------


def _storable_text(text: str, limit: int) -> str:
    """Return text PostgreSQL accepts: no NULs, no lone surrogates, at most `limit` chars."""
    return LONE_SURROGATE.sub("\ufffd", text.replace("\x00", "\ufffd"))[:limit]


def record_rejection(integration: Integration | None, req: Request | None, error: Rejected) -> None:
    """Record a refused request on its integration, so an operator can see why a sender fails."""
    metrics.count_rejected(integration.name if integration else "unknown", str(error.status))
    if integration is None:
        log.info("ingest refused (%s): %s", error.status, error.reason)
        return
    req = req or error.request
    try:
        with transaction.atomic():  # a failure here must not spoil an enclosing transaction
            IngestRequest.objects.create(
                integration=integration,
                received_at=timezone.now(),
                outcome=Outcome.REJECTED,
                status_code=error.status,
                reason=_storable_text("; ".join(error.problems), 4000),
                content_type=_storable_text(req.content_type if req else "", 200),
                body=(req.body if req else b"")[:REJECTION_BODY_BYTES],
            )
    except DatabaseError:
        log.exception("could not record a rejection for integration %s", integration.pk)


def refuse(
    integration: Integration | None, request: HttpRequest, req: Request | None, error: Rejected
) -> None:
    """Record a refusal with what was read of the body (its start, if it was not read yet)."""
    if integration is not None and req is None and error.request is None:
        req = head_of(request)
    record_rejection(integration, req, error)
