"""Writes for integrations (rotate a token, send a test alert) and silences (create, edit and
expire one: the rules every surface shares, and the audit entry of each)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import CREATED, UPDATED, diff, record_change, snapshot
from accounts.models import Role, User
from alerts import pending
from alerts.decoding import Request, parse
from alerts.matchers import MatcherError, all_match, matchers_from_json
from alerts.models import (
    IngestRequest,
    Integration,
    Kind,
    Silence,
    check_silence,
    new_integration_token,
)
from alerts.silencing import refire_unsilenced
from incidents.models import Service

TEST_ALERTNAME = "MusterTestAlert"


class CannotSendTestAlert(Exception):
    """The integration cannot take a test alert (disabled, or a heartbeat)."""


@transaction.atomic
def rotate_integration_token(integration: Integration) -> Integration:
    """Give `integration` a new secret token; the old one is refused from now on."""
    integration = Integration.objects.select_for_update().get(pk=integration.pk)
    integration.token = new_integration_token()
    integration.token_rotated_at = timezone.now()
    integration.save(update_fields=["token", "token_rotated_at"])
    return integration


def sample_alert_payload(
    integration: Integration, by: str, key: str
) -> tuple[dict[str, Any], dict]:
    """Return a firing test alert in the integration's own wire format, and its path params."""
    summary = f"Test alert from Muster, sent by {by}"
    labels = {"alertname": TEST_ALERTNAME, "sent_by": by, "test": "true"}
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    if integration.kind in (Kind.ALERTMANAGER, Kind.GRAFANA):
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": key,
        }
        payload = {
            "receiver": "muster",
            "status": "firing",
            "alerts": [alert],
            "groupLabels": {"alertname": TEST_ALERTNAME},
            "commonLabels": labels,
            "commonAnnotations": {},
            "externalURL": "",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{TEST_ALERTNAME}", key="{key}"}}',
            "truncatedAlerts": 0,
        }
        return payload, {}
    if integration.kind == Kind.PAGERDUTY:
        payload = {
            "routing_key": integration.token,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": summary,
                "source": "muster",
                "severity": "warning",
                "class": TEST_ALERTNAME,
                "custom_details": labels,
            },
        }
        return payload, {"new_key": uuid.uuid4().hex}
    if integration.kind == Kind.OPSGENIE:
        payload = {
            "message": summary,
            "alias": key,
            "tags": [f"{name}:{value}" for name, value in labels.items()],
            "priority": "P3",
        }
        params = {
            "action": "create",
            "identifier": None,
            "identifier_type": "alias",
            "new_key": uuid.uuid4().hex,
        }
        return payload, params
    if integration.kind == Kind.GENERIC:
        payload = {"summary": summary, "dedup_key": key, "severity": "warning", "labels": labels}
        return payload, {}
    raise CannotSendTestAlert(
        f"a {integration.get_kind_display()} integration takes pings, not alerts; "
        "let a ping lapse to test it"
    )


def send_test_alert(integration: Integration, by: str) -> IngestRequest:
    """Post a firing test alert to `integration` the way its senders do, on behalf of `by`.

    The body goes through the same path as a real request: parsed in the integration's wire
    format, stored as an accepted request, and processed just after (it routes, may be
    silenced, opens an incident and pages like any alert). Raises CannotSendTestAlert for a
    disabled or heartbeat integration.
    """
    if not integration.enabled:
        raise CannotSendTestAlert(f"integration {integration.name!r} is disabled")
    key = f"muster-test-{uuid.uuid4().hex[:12]}"
    payload, params = sample_alert_payload(integration, by, key)
    req = Request(json.dumps(payload).encode(), "application/json")
    alerts = parse(integration.kind, req, params)  # what ingest checks before accepting
    status_code = 202 if integration.kind in (Kind.PAGERDUTY, Kind.OPSGENIE) else 200
    return pending.accept_request(integration, req, alerts, params=params, status_code=status_code)


# --- silences --------------------------------------------------------------------------------


def silence_max_duration() -> timedelta:
    """How long a responder's silence may last (MUSTER_SILENCE_MAX_DAYS); admins have no cap."""
    return timedelta(days=settings.SILENCE_MAX_DAYS)


def check_silence_rules(
    matchers: list[dict[str, str]],
    service: Service | None,
    starts_at: datetime,
    ends_at: datetime,
    by: User | None,
) -> None:
    """Refuse, with django's ValidationError, a silence that no surface may create or leave:
    one that ends before it starts or silences nothing in particular, one whose matchers match
    every alert (Alertmanager's rule: some label must be set), or, unless `by` is an admin (or
    Muster itself), one that runs more than MUSTER_SILENCE_MAX_DAYS past its start, or past
    now for a silence already running."""
    check_silence(matchers, service, starts_at, ends_at)
    try:
        parsed = matchers_from_json(matchers)
    except MatcherError as exc:
        raise ValidationError(str(exc)) from None
    if service is None and all_match(parsed, {}):
        raise ValidationError(
            "these matchers match every alert; name a label value that must match "
            "(or choose a service, for a maintenance window)"
        )
    if by is not None and not by.has_role(Role.ADMIN):
        longest = silence_max_duration()
        if ends_at - max(starts_at, timezone.now()) > longest:
            raise ValidationError(
                f"a silence lasts at most {longest.days} days (an admin may set a longer one)"
            )


@transaction.atomic
def create_silence(
    *,
    matchers: list[dict[str, str]],
    ends_at: datetime,
    comment: str,
    by: User | None,
    service: Service | None = None,
    starts_at: datetime | None = None,
) -> Silence:
    """Silence alerts from `starts_at` (now, unless given) until `ends_at`: alerts that match
    every one of `matchers` (and come to `service`, if given) open no incident and page no one.
    A service with no matchers is a maintenance window. The audit log records who did it.

    Raises django's ValidationError for a silence `check_silence_rules` refuses.
    """
    starts_at = starts_at or timezone.now()
    check_silence_rules(matchers, service, starts_at, ends_at, by)
    silence = Silence.objects.create(
        matchers=matchers,
        service=service,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment,
        created_by=by,
    )
    record_change(by, CREATED, silence, snapshot(silence))
    return silence


_UNCHANGED: Any = object()


@transaction.atomic
def update_silence(
    silence: Silence,
    *,
    by: User | None,
    matchers: list[dict[str, str]] = _UNCHANGED,
    service: Service | None = _UNCHANGED,
    starts_at: datetime = _UNCHANGED,
    ends_at: datetime = _UNCHANGED,
    comment: str = _UNCHANGED,
) -> Silence:
    """Edit a silence that has not ended (extend it, shorten it, change what it matches), under
    the same rules as a new one; the audit log records what changed. Alerts it no longer
    covers open their incidents as soon as the change commits.

    Raises django's ValidationError for an ended silence (create a new one instead, as in
    Alertmanager) and for a result `check_silence_rules` refuses.
    """
    silence = Silence.objects.select_for_update().get(pk=silence.pk)
    if silence.ends_at <= timezone.now():
        raise ValidationError(f"silence {silence.pk} has ended; create a new one instead")
    before = snapshot(silence)
    for name, value in (
        ("matchers", matchers),
        ("service", service),
        ("starts_at", starts_at),
        ("ends_at", ends_at),
        ("comment", comment),
    ):
        if value is not _UNCHANGED:
            setattr(silence, name, value)
    check_silence_rules(silence.matchers, silence.service, silence.starts_at, silence.ends_at, by)
    silence.save()
    record_change(by, UPDATED, silence, diff(before, snapshot(silence)))
    edited = silence.pk
    transaction.on_commit(lambda: refire_unsilenced(silence_ids=[edited]))
    return silence


@transaction.atomic
def expire_silence(silence: Silence, *, by: User | None) -> Silence:
    """End a silence now (an upcoming one ends before it starts); the audit log records it.
    Alerts still firing that it covered open their incidents as soon as this commits, not at
    their sender's next repeat. Expiring an ended silence changes nothing."""
    silence = Silence.objects.select_for_update().get(pk=silence.pk)
    now = timezone.now()
    if silence.ends_at <= now:
        return silence
    before = snapshot(silence)
    silence.ends_at = max(now, silence.starts_at)
    silence.save(update_fields=["ends_at"])
    who = by.get_username() if by is not None else "Muster"
    record_change(
        by,
        UPDATED,
        silence,
        diff(before, snapshot(silence)),
        summary=f"{who} expired silence {silence.pk}",
    )
    transaction.on_commit(lambda: refire_unsilenced())
    return silence
