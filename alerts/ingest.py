"""The senders' ingest endpoints: admit (alerts.admission), parse, store (alerts.pending), answer.

Each sender is answered in its own contract: Alertmanager and Grafana get 200 (and 503 for a
temporary problem, never 429, since Alertmanager retries only on 5xx); PagerDuty's Events API v2
gets 202 with `dedup_key`, 400 with `errors`, 429 with Retry-After; Opsgenie gets 202 with a
`requestId`, 401 for an unknown GenieKey, 422 for an invalid alert. Every refusal says what was
wrong and, when the integration is known, is recorded on it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from alerts import metrics, pending
from alerts.admission import (
    allow_methods,
    check_enabled,
    find_integration,
    over_rate_limit,
    read_body,
    refuse,
    token_shape_ok,
    unavailable_without_database,
    verify_hmac,
)
from alerts.decoding import Rejected, Request, add_request_warnings, decode_json, parse
from alerts.models import SIGNING_KINDS, IngestRequest, Kind
from alerts.sources.base import PayloadError
from alerts.sources.registry import PARSERS
from core.api_errors import error_json

# --- /integrations/<kind>/<token>/ -----------------------------------------------------------


def _store_failed() -> JsonResponse:
    return error_json(503, "temporarily unable to store alerts; retry")


@csrf_exempt
@allow_methods("POST")
@unavailable_without_database(_store_failed)
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
    if alerts is not None and token_shape_ok(token):
        assert req is not None  # parsed, so read
        stored = pending.accept_by_token(token, kind, req, alerts)
        if stored is not None:
            pending.kick_for(stored)
            return _accepted_json(stored, alerts)
    integration = find_integration(token, (kind,))
    if integration is None:
        metrics.count_rejected("unknown", "404")
        return error_json(404, "unknown or rotated integration token")
    try:
        check_enabled(integration)
        if read_error is not None:
            raise read_error
        assert req is not None  # read, since reading raised nothing
        if kind in SIGNING_KINDS:
            verify_hmac(integration, request, req.body)
        if parse_error is not None:
            raise parse_error
    except Rejected as exc:
        refuse(integration, request, req, exc)
        return error_json(exc.status, exc.reason, exc.problems)
    assert alerts is not None  # parsed, since neither reading nor parsing raised
    stored = pending.accept_request(integration, req, alerts)
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


# --- PagerDuty Events API v2: POST /v2/enqueue -----------------------------------------------


def _pd_unavailable() -> JsonResponse:
    body = {"status": "error", "message": "temporarily unable to store the event; retry"}
    return JsonResponse(body, status=503)


def _pd_invalid(errors: list[str], status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=status,
    )


@csrf_exempt
@allow_methods("POST")
@unavailable_without_database(_pd_unavailable)
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
    pending.accept_request(integration, req, alerts, params=params, status_code=202)
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


def _opsgenie_unavailable() -> JsonResponse:
    return _opsgenie({"message": "Temporarily unavailable; retry"}, 503, time.monotonic())


@csrf_exempt
@allow_methods("POST")
@unavailable_without_database(_opsgenie_unavailable)
def opsgenie_create(request: HttpRequest) -> JsonResponse:
    return _opsgenie_action(request, "create", None)


@csrf_exempt
@allow_methods("POST")
@unavailable_without_database(_opsgenie_unavailable)
def opsgenie_close(request: HttpRequest, identifier: str) -> JsonResponse:
    return _opsgenie_action(request, "close", identifier)


@csrf_exempt
@allow_methods("POST")
@unavailable_without_database(_opsgenie_unavailable)
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
    pending.accept_request(integration, req, alerts, params=params, status_code=202)
    return _opsgenie({"result": "Request will be processed"}, 202, started)
