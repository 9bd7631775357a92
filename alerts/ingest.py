"""The ingest endpoints: authenticate, bound, decode, parse, hand to the pipeline, answer.

Each sender is answered in its own contract: Alertmanager and Grafana get 200 (and 503 for a
temporary problem, never 429, since Alertmanager retries only on 5xx); PagerDuty's Events API v2
gets 202 with `dedup_key`, 400 with `errors`, 429 with Retry-After; Opsgenie gets 202 with a
`requestId`, 401 for an unknown GenieKey, 422 for an invalid alert. Every refusal says what was
wrong and, when the integration is known, is recorded on it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from alerts import metrics, pending
from alerts.decoding import (
    LONE_SURROGATE,
    Rejected,
    Request,
    add_request_warnings,
    decode_json,
    parse,
)
from alerts.models import IngestRequest, Integration, Kind, Outcome
from alerts.sources.base import PayloadError
from alerts.sources.registry import PARSERS

log = logging.getLogger(__name__)

REJECTION_BODY_BYTES = 1024


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


def find_integration(token: str, kinds: tuple[str, ...]) -> Integration | None:
    """Return the integration of one of `kinds` with this secret token, if there is one.

    In plain SQL, on every ingest request: the ORM's query building costs five times the
    query itself. (`service` is not loaded; processing loads it.)
    """
    if not _token_shape_ok(token):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_find_integration_sql(len(kinds)), [token, *kinds])
        row = cursor.fetchone()
    return None if row is None else Integration.from_db("default", _INTEGRATION_COLUMNS, row)


def _token_shape_ok(token: str) -> bool:
    # Tokens are short printable ASCII; anything else (a NUL above all, which PostgreSQL
    # refuses in a query parameter) cannot be one.
    return bool(token) and len(token) <= 64 and token.isascii() and token.isprintable()


_INTEGRATION_COLUMNS = [f.attname for f in Integration._meta.concrete_fields]


@functools.cache
def _find_integration_sql(kinds: int) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in Integration._meta.concrete_fields)
    return (
        f"SELECT {columns} FROM {qn(Integration._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('token')} = %s AND {qn('kind')} IN ({', '.join(['%s'] * kinds)})"
    )


def check_enabled(integration: Integration) -> None:
    if not integration.enabled:
        raise Rejected(403, f"integration {integration.name!r} is disabled")


GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
# Where grafana/alerting's signer puts the signature when the contact point leaves Header empty.
GRAFANA_DEFAULT_SIGNER_HEADER = "X-Grafana-Alert-Signature"
# Grafana's timestamp header has no default name (the contact point names it, if it wants one);
# these are the names Grafana's docs and provisioning examples use.
GRAFANA_TIMESTAMP_HEADERS = (
    "X-Grafana-Alerting-Signature-Timestamp",
    "X-Grafana-Alerting-Timestamp",
    "X-Grafana-Alert-Timestamp",
)


def verify_hmac(integration: Integration, request: HttpRequest, body: bytes) -> None:
    """Check Grafana's optional HMAC-SHA256 signature when the integration has a secret.

    Grafana (11.6+) writes the lowercase hex HMAC-SHA256 of the body into the signature header;
    when its contact point names a timestamp header, it sends the Unix time there and signs
    `<timestamp>:<body>` instead.
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
    signed = [body]
    for name in (*GRAFANA_TIMESTAMP_HEADERS, f"{header}-Timestamp"):
        timestamp = request.headers.get(name, "").strip()
        if timestamp:
            signed.append(timestamp.encode("latin-1", "replace") + b":" + body)
    matched = False
    for message in signed:
        expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(given_bytes, expected)
    if not matched:
        raise Rejected(401, f"signature in {header} does not match the body")


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


def error_json(status: int, message: str, problems: list[str] | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": {"status": status, "message": message, "problems": problems or [message]}},
        status=status,
    )


def refuse(
    integration: Integration | None, request: HttpRequest, req: Request | None, error: Rejected
) -> None:
    """Record a refusal with what was read of the body (its start, if it was not read yet)."""
    if integration is not None and req is None and error.request is None:
        req = head_of(request)
    record_rejection(integration, req, error)


def _temporarily_unavailable(body: dict[str, Any], status: int = 503) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Retry-After"] = "5"
    return response


# --- /integrations/<kind>/<token>/ -----------------------------------------------------------


@csrf_exempt
@allow_methods("POST")
def integration_ingest(request: HttpRequest, kind: str, token: str) -> JsonResponse:
    """Take alerts from Alertmanager, Grafana or the generic JSON format.

    A sound request is stored by one statement that also checks the token (most requests are
    sound, and a lookup first would double the database round trips). Anything else (an
    unknown token, a disabled or signing integration, a bad body) takes the careful path below,
    which looks the integration up and says what was wrong, in the order senders expect.
    """
    if kind not in (Kind.ALERTMANAGER, Kind.GRAFANA, Kind.GENERIC):
        return error_json(404, f"unknown integration kind {kind!r}")
    req: Request | None = None
    read_error = parse_error = None
    alerts = None
    try:
        req = read_body(request)
        alerts = parse(kind, req, {})
    except Rejected as exc:  # from reading or decoding the body
        if req is None:
            read_error = exc
        else:
            parse_error = exc
    except PayloadError as exc:
        parse_error = Rejected(400, "payload is not a valid " + Kind(kind).label, exc.problems)
    if alerts is not None and _token_shape_ok(token):
        try:
            stored = pending.accept_by_token(token, kind, req, alerts)
        except DatabaseError:
            log.exception("ingest failed for an integration of kind %s", kind)
            return _store_failed()
        if stored is not None:
            pending.kick()
            return _accepted_json(stored, alerts)
    integration = find_integration(token, (kind,))
    if integration is None:
        metrics.count_rejected("unknown", "404")
        return error_json(404, "unknown or rotated integration token")
    try:
        check_enabled(integration)
        if read_error is not None:
            raise read_error
        if kind == Kind.GRAFANA:
            verify_hmac(integration, request, req.body)
        if parse_error is not None:
            raise parse_error
    except Rejected as exc:
        refuse(integration, request, req, exc)
        return error_json(exc.status, exc.reason, exc.problems)
    try:
        stored = pending.accept_request(integration, req, alerts)
    except DatabaseError:
        log.exception("ingest failed for integration %s", integration.pk)
        return _store_failed()
    return _accepted_json(stored, alerts)


def _accepted_json(stored: IngestRequest, alerts: list) -> JsonResponse:
    return JsonResponse(
        {
            "status": "success",
            "received": len(alerts),
            "request": stored.pk,
            "warnings": list(dict.fromkeys(w for a in alerts for w in a.warnings))[:50],
        }
    )


def _store_failed() -> JsonResponse:
    return _temporarily_unavailable(
        {"error": {"status": 503, "message": "temporarily unable to store alerts; retry"}}
    )


# --- PagerDuty Events API v2: POST /v2/enqueue -----------------------------------------------


def _pd_invalid(errors: list[str], status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=status,
    )


@csrf_exempt
@allow_methods("POST")
def pagerduty_enqueue(request: HttpRequest) -> JsonResponse:
    """Take one PagerDuty Events API v2 event; the routing key names the integration."""
    integration = None
    req = None
    try:
        req = read_body(request)
        payload = decode_json(req)
    except Rejected as exc:
        metrics.count_rejected("unknown", str(exc.status))
        return _pd_invalid(exc.problems, exc.status)
    routing_key = payload.get("routing_key") if isinstance(payload, dict) else None
    if isinstance(routing_key, str):
        integration = find_integration(routing_key, (Kind.PAGERDUTY,))
    try:
        if not isinstance(payload, dict):
            raise Rejected(400, "event must be a JSON object")
        if integration is None:
            if not routing_key:
                raise Rejected(400, "missing required field 'routing_key'")
            raise Rejected(400, "Invalid routing key")
        check_enabled(integration)
        wait = over_rate_limit(integration)
        if wait:
            response = JsonResponse(
                {"status": "throttle event", "message": "Requests for this service are throttled"},
                status=429,
            )
            response["Retry-After"] = str(wait)
            metrics.count_rejected(integration.name, "429")
            return response
        params = {"new_key": uuid.uuid4().hex}
        try:
            alerts = PARSERS[Kind.PAGERDUTY](payload, **params)
        except PayloadError as exc:
            raise Rejected(400, "Event object is invalid", exc.problems) from None
        add_request_warnings(alerts, req)
    except Rejected as exc:
        refuse(integration, request, req, exc)
        return _pd_invalid(exc.problems, exc.status)
    try:
        pending.accept_request(integration, req, alerts, params=params, status_code=202)
    except DatabaseError:
        log.exception("ingest failed for integration %s", integration.pk)
        return _temporarily_unavailable(
            {"status": "error", "message": "temporarily unable to store the event; retry"}
        )
    return JsonResponse(
        {"status": "success", "message": "Event processed", "dedup_key": alerts[0].fingerprint},
        status=202,
    )


# --- Opsgenie Alert API: POST /v2/alerts, /v2/alerts/<identifier>/(close|acknowledge) --------


def _opsgenie(body: dict[str, Any], status: int, started: float) -> JsonResponse:
    body = {**body, "took": round(time.monotonic() - started, 3), "requestId": str(uuid.uuid4())}
    return JsonResponse(body, status=status)


def _geniekey(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "geniekey":
        return key.strip()
    return request.GET.get("apiKey", "")


@csrf_exempt
@allow_methods("POST")
def opsgenie_create(request: HttpRequest) -> JsonResponse:
    return _opsgenie_action(request, "create", None)


@csrf_exempt
@allow_methods("POST")
def opsgenie_close(request: HttpRequest, identifier: str) -> JsonResponse:
    return _opsgenie_action(request, "close", identifier)


@csrf_exempt
@allow_methods("POST")
def opsgenie_acknowledge(request: HttpRequest, identifier: str) -> JsonResponse:
    return _opsgenie_action(request, "acknowledge", identifier)


def _opsgenie_action(request: HttpRequest, action: str, identifier: str | None) -> JsonResponse:
    started = time.monotonic()
    integration = find_integration(_geniekey(request), (Kind.OPSGENIE,))
    if integration is None:
        metrics.count_rejected("unknown", "401")
        return _opsgenie({"message": "Could not authenticate"}, 401, started)
    req = None
    try:
        check_enabled(integration)
        wait = over_rate_limit(integration)
        if wait:
            response = _opsgenie({"message": "Rate limit exceeded"}, 429, started)
            response["Retry-After"] = str(wait)
            metrics.count_rejected(integration.name, "429")
            return response
        req = read_body(request)
        params = {
            "action": action,
            "identifier": identifier,
            "identifier_type": request.GET.get("identifierType", "alias"),
            "new_key": uuid.uuid4().hex,
        }
        try:
            alerts = parse(Kind.OPSGENIE, req, params)
        except PayloadError as exc:
            raise Rejected(422, "Request body is not processable", exc.problems) from None
    except Rejected as exc:
        refuse(integration, request, req, exc)
        return _opsgenie({"message": exc.reason, "errors": exc.problems}, exc.status, started)
    try:
        pending.accept_request(integration, req, alerts, params=params, status_code=202)
    except DatabaseError:
        log.exception("ingest failed for integration %s", integration.pk)
        return _opsgenie({"message": "Temporarily unavailable; retry"}, 503, started)
    return _opsgenie({"result": "Request will be processed"}, 202, started)
