"""Integrations (alert sources and their secret URLs), alerts, routing rules and silences."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, Service


class Kind(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GRAFANA = "grafana", "Grafana alerting"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    OPSGENIE = "opsgenie", "Opsgenie Alert API"
    GENERIC = "generic", "Generic JSON"
    HEARTBEAT = "heartbeat", "Heartbeat"


# Kinds served at /integrations/<kind>/<token>/; the others sit on their senders' native paths.
URL_TOKEN_KINDS = (Kind.ALERTMANAGER, Kind.GRAFANA, Kind.GENERIC, Kind.HEARTBEAT)
# Kinds whose requests Muster verifies against `hmac_secret` (Grafana's HMAC-SHA256 scheme, which
# a generic sender can reproduce); the others cannot sign, and refuse a secret.
SIGNING_KINDS = (Kind.GRAFANA, Kind.GENERIC)


MIN_HEARTBEAT_INTERVAL_SECONDS = 10


def new_integration_token() -> str:
    # 32 hex characters: the shape PagerDuty routing keys have, which some clients check.
    return secrets.token_hex(16)


class Integration(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="integrations")
    token = models.CharField(max_length=64, unique=True, default=new_integration_token)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    token_rotated_at = models.DateTimeField(null=True, blank=True)
    # Grafana and generic: verify the HMAC-SHA256 signature when a secret is set (SIGNING_KINDS).
    hmac_secret = models.CharField(max_length=200, blank=True)
    hmac_header = models.CharField(max_length=100, default="X-Grafana-Alerting-Signature")
    # Heartbeat: a ping is expected every interval; after interval + grace, an incident opens.
    heartbeat_interval_seconds = models.PositiveIntegerField(default=300)
    heartbeat_grace_seconds = models.PositiveIntegerField(default=60)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    heartbeat_down = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["last_ping_at"], name="heartbeat_due", condition=Q(kind="heartbeat")
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.heartbeat_interval_seconds < MIN_HEARTBEAT_INTERVAL_SECONDS:
            raise ValidationError(
                {
                    "heartbeat_interval_seconds": (
                        f"must be at least {MIN_HEARTBEAT_INTERVAL_SECONDS} seconds"
                    )
                }
            )

    @property
    def ingest_path(self) -> str:
        """Return where senders post, relative to the public URL."""
        if self.kind == Kind.PAGERDUTY:
            return "/v2/enqueue"
        if self.kind == Kind.OPSGENIE:
            return "/v2/alerts"
        return f"/integrations/{self.kind}/{self.token}/"

    @property
    def ingest_url(self) -> str:
        return settings.PUBLIC_URL + self.ingest_path


class AlertStatus(models.TextChoices):
    FIRING = "firing", "firing"
    RESOLVED = "resolved", "resolved"


class Alert(models.Model):
    """One alert from a source; while firing it is unique per (integration, fingerprint)."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="alerts")
    fingerprint = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=AlertStatus.choices)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="alerts")
    # No index of its own: (incident, status) below leads with it. Every alert row is written
    # twice (stored, then linked to its incident), each write into every index of the table.
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
        db_index=False,
    )
    silence = models.ForeignKey(
        "Silence", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    summary = models.CharField(max_length=1024)
    severity = models.PositiveSmallIntegerField(default=3)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    links = models.JSONField(default=list)
    warnings = models.JSONField(default=list)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    # This alert's own part of the payload, JSON as bytes (PostgreSQL JSON rejects NUL).
    raw = models.BinaryField(default=bytes)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "fingerprint"],
                condition=Q(status="firing"),
                name="one_firing_alert_per_fingerprint",
            )
        ]
        indexes = [
            models.Index(fields=["incident", "status"]),
            models.Index(fields=["first_seen"]),
            models.Index(fields=["fingerprint"]),
        ]

    def __str__(self) -> str:
        return f"{self.summary} [{self.fingerprint}]"


class Outcome(models.TextChoices):
    ACCEPTED = "accepted", "accepted"
    REJECTED = "rejected", "rejected"


class IngestRequest(models.Model):
    """Every request an integration received: accepted bodies whole, rejected ones' first KiB."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="requests")
    received_at = models.DateTimeField(db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField()
    reason = models.TextField(blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    body = models.BinaryField(default=bytes)
    alert_count = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(default=list)
    # What the sender's path said besides the body (Opsgenie: action and identifier), so the
    # body can be parsed again when it is processed.
    params = models.JSONField(default=dict, blank=True)
    # An accepted request is processed just after the response (alerts.processor); until then
    # processed_at is empty. `results` says what happened to each alert, `error` why the
    # request could not be processed (after MAX_ATTEMPTS it is given up and shown as failed).
    processed_at = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # The processor's order (alerts.ordering): urgent requests (a new alert, or one of severity
    # 1-2) go ahead of the rest, unless an older pending request of the integration shares
    # their order key (or has none).
    urgent = models.BooleanField(default=False)
    order_key = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "outcome", "-received_at"]),
            models.Index(
                fields=["id"],
                name="ingest_pending",
                condition=Q(outcome="accepted", processed_at__isnull=True),
            ),
            models.Index(
                fields=["id"],
                name="ingest_pending_urgent",
                condition=Q(outcome="accepted", processed_at__isnull=True, urgent=True),
            ),
            models.Index(
                fields=["integration", "order_key", "id"],
                name="ingest_pending_by_key",
                condition=Q(outcome="accepted", processed_at__isnull=True),
            ),
            # Whether an older request without a key waits (alerts.lanes): few rows, so the
            # planner never prefers walking every older pending request (ingest_pending)
            # over it, as it did with stale statistics in a storm.
            models.Index(
                fields=["integration", "id"],
                name="ingest_pending_keyless",
                condition=Q(outcome="accepted", processed_at__isnull=True, order_key__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.status_code} at {self.received_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def accepted(
        cls,
        *,
        body: bytes,
        content_type: str,
        alert_count: int,
        warnings: list[str],
        params: dict[str, Any] | None = None,
        status_code: int = 200,
        order_key: int | None = None,
    ) -> IngestRequest:
        """Return an accepted request received now, not saved yet, its integration not set."""
        return cls(
            order_key=order_key,
            received_at=timezone.now(),
            outcome=Outcome.ACCEPTED,
            status_code=status_code,
            content_type=content_type[:200],
            body=body,
            alert_count=alert_count,
            warnings=warnings[:100],
            params=params or {},
        )

    @property
    def state(self) -> str:
        """rejected, pending, processed or failed."""
        if self.outcome == Outcome.REJECTED:
            return "rejected"
        if self.processed_at is None:
            return "pending"
        return "failed" if self.error else "processed"


class RoutingRule(models.Model):
    """Send alerts whose labels match every matcher to `service`; first match wins."""

    integration = models.ForeignKey(
        Integration,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="routing_rules",
        help_text="Empty: the rule applies to every integration, after their own rules.",
    )
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200, blank=True)
    # [{"label": "team", "op": "=", "value": "db"}, ...]; ops: = != =~ !~
    matchers = models.JSONField()
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="routing_rules")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name or f"rule {self.pk}"

    def clean(self) -> None:
        if not self.matchers:
            raise ValidationError({"matchers": "a routing rule needs at least one matcher"})


class SilenceQuerySet(models.QuerySet):
    def active(self, at):
        return self.filter(starts_at__lte=at, ends_at__gt=at)


class Silence(models.Model):
    """Matching alerts are stored and shown but open no incident and page no one.

    With `service` set and no matchers it is a maintenance window for that service.
    """

    matchers = models.JSONField(default=list, blank=True)
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at", "starts_at"])]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.comment[:40]}"

    def clean(self) -> None:
        check_silence(self.matchers, self.service_id, self.starts_at, self.ends_at)


def check_silence(matchers: list, service: object, starts_at, ends_at) -> None:
    """Refuse a silence that ends before it starts or that would silence nothing in particular."""
    if ends_at is not None and starts_at is not None and ends_at <= starts_at:
        raise ValidationError("ends_at must be after starts_at")
    if not matchers and not service:
        raise ValidationError("a silence needs matchers, a service (a maintenance window), or both")
