"""Services, incidents and their append-only timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Source(models.TextChoices):
    """Where an action came from; every timeline entry carries one."""

    API = "api", "API"
    WEB = "web", "web"
    CHAT = "chat", "chat"
    SLACK = "slack", "Slack"
    MATTERMOST = "mattermost", "Mattermost"
    SMS = "sms", "SMS"
    VOICE = "voice", "voice"
    ALERT = "alert", "alert"
    SYSTEM = "system", "Muster"


def source_label(source: str) -> str:
    """How a source reads in a sentence ("via SMS"); a source Muster does not know reads as is."""
    return Source(source).label if source in Source.values else source


class Urgency(models.TextChoices):
    HIGH = "high", "high"
    LOW = "low", "low"


def urgency_for_severity(severity: int) -> str:
    """Return the urgency that follows from a severity: 1–2 high, 3–5 low."""
    return Urgency.HIGH if severity <= 2 else Urgency.LOW


class ChatChannelMode(models.TextChoices):
    """Where a service's incidents are told on a chat platform (Slack, Mattermost)."""

    PER_INCIDENT = "channel-per-incident", "a channel per incident"
    SHARED = "shared", "the service's shared channel"
    OFF = "off", "nowhere"


class Service(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # Empty: urgency follows severity. Otherwise every incident of this service has this urgency.
    urgency_override = models.CharField(max_length=8, choices=Urgency.choices, blank=True)
    auto_resolve = models.BooleanField(
        default=True, help_text="Resolve an incident when every one of its alerts has resolved."
    )
    ack_timeout_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Re-trigger an incident acknowledged but not resolved."
    )
    # Alerts whose sender gives no group key are grouped by these labels' values.
    group_by_labels = models.JSONField(default=list, blank=True)
    # Each applies only once its platform is configured (SLACK_BOT_TOKEN, MATTERMOST_URL).
    slack_channel_mode = models.CharField(
        max_length=24, choices=ChatChannelMode.choices, default=ChatChannelMode.PER_INCIDENT
    )
    slack_channel = models.CharField(
        max_length=40,
        blank=True,
        help_text="The service's shared Slack channel (its ID, C…): every post in shared mode, "
        "and an incident's posts while its own channel is on its way.",
    )
    mattermost_channel_mode = models.CharField(
        max_length=24, choices=ChatChannelMode.choices, default=ChatChannelMode.PER_INCIDENT
    )
    mattermost_channel = models.CharField(
        max_length=40,
        blank=True,
        help_text="The service's shared Mattermost channel (its 26-character ID).",
    )
    archive_chat_channels = models.BooleanField(
        default=True, help_text="Archive an incident's own chat channels when it resolves."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def urgency_for(self, severity: int) -> str:
        return self.urgency_override or urgency_for_severity(severity)

    @property
    def grouping_labels(self) -> list[str]:
        return list(self.group_by_labels) or ["alertname", "service"]


class Counter(models.Model):
    """A named counter; incident numbers come from here, not from primary keys."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Status(models.TextChoices):
    TRIGGERED = "triggered", "triggered"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


OPEN_STATUSES = (Status.TRIGGERED, Status.ACKNOWLEDGED)


class IncidentQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def locked(self, *, skip_locked: bool = False):
        """The incident rows locked for this transaction, as every locker of an incident takes
        them: FOR NO KEY UPDATE, so lockers take turns while a row that merely points at the
        incident (a timeline entry, an alert's link) is written without waiting for the holder
        in its foreign-key check (with FOR UPDATE, a page's "sent" line waited for the ingest
        batch holding its incident). Only the incident's rows, whatever is joined."""
        return self.select_for_update(skip_locked=skip_locked, of=("self",), no_key=True)


class Incident(models.Model):
    number = models.BigIntegerField(unique=True)
    title = models.CharField(max_length=1024)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents")
    severity = models.PositiveSmallIntegerField(default=3)
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.LOW)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIGGERED)
    # Open incidents are unique per (service, group_key); the key is scoped by its integration.
    group_key = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_via = models.CharField(max_length=16, choices=Source.choices, default=Source.ALERT)
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_incidents",
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    ack_expires_at = models.DateTimeField(null=True, blank=True)
    # Nobody could be paged for it (empty schedule, no verified contact method, every page
    # failed): shown in the API and metrics so it is never silent.
    unpaged = models.BooleanField(default=False)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged"
    )

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "group_key"],
                condition=Q(status__in=["triggered", "acknowledged"]) & ~Q(group_key=""),
                name="one_open_incident_per_group",
            ),
            models.CheckConstraint(
                condition=Q(severity__gte=1) & Q(severity__lte=5), name="severity_1_to_5"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-number"]),
            models.Index(fields=["service", "status"]),
            models.Index(fields=["created_at"]),
            models.Index(
                fields=["snoozed_until"],
                name="incident_snoozed",
                condition=Q(snoozed_until__isnull=False),
            ),
            models.Index(
                fields=["ack_expires_at"],
                name="incident_ack_expires",
                condition=Q(ack_expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("timeline entries are append-only")

    def delete(self):
        raise TypeError("timeline entries are append-only")


class EntryKind(models.TextChoices):
    OPENED = "opened", "incident opened"
    ALERT_ATTACHED = "alert_attached", "alert attached"
    ALERT_REPEATED = "alert_repeated", "alert repeated"
    ALERT_RESOLVED = "alert_resolved", "alert resolved"
    TRIGGERED = "triggered", "re-triggered"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    UNACKNOWLEDGED = "unacknowledged", "unacknowledged"
    RESOLVED = "resolved", "resolved"
    SNOOZED = "snoozed", "snoozed"
    REASSIGNED = "reassigned", "reassigned"
    ESCALATED = "escalated", "escalated"
    NOTE = "note", "note"
    SEVERITY_CHANGED = "severity_changed", "severity changed"
    MERGED = "merged", "merged"
    PAGE = "page", "page"  # a page was sent, delivered, answered, failed, retried or held
    UNPAGED = "unpaged", "nobody paged"
    COMMAND = "command", "chat command"  # a command typed in a war room, and its result
    STATUS_UPDATE = "status_update", "status update"  # sent to the incident's subscribers
    ACTION = "action", "runbook action"  # a runbook automation action run, and its result
    # What someone wrote in the incident's Slack or Mattermost channel (mirrored to its room).
    CHAT_MESSAGE = "chat_message", "chat message"


# Entries after which the incident's escalation policy runs (again): a new trigger, or a change
# of course (oncall.escalation follows them).
STARTING_KINDS = frozenset(
    {
        EntryKind.OPENED,
        EntryKind.TRIGGERED,
        EntryKind.UNACKNOWLEDGED,
        EntryKind.REASSIGNED,
        EntryKind.ESCALATED,
    }
)


class TimelineEntry(models.Model):
    """One thing that happened to an incident. Never updated, never deleted."""

    # No index of its own: (incident, at, id) below leads with it, and one index fewer is one
    # write fewer for each of a storm's alert lines.
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="timeline", db_index=False
    )
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=32, choices=EntryKind.choices)
    # PROTECT: the timeline cannot be rewritten, so people who acted are deactivated, not deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who did it, as shown: a username, an integration's name, or "Muster".
    actor_name = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"
        indexes = [
            models.Index(fields=["incident", "at", "id"]),
            # An incident's latest starting entry, which the outbox sweep looks up for every
            # triggered incident each tick: without it, each lookup read all of the incident's
            # entries (thousands in a storm; 26 ms of PostgreSQL a tick in bench/ingest.py).
            # Partial: a few entries per incident, and alert lines cost no index write.
            models.Index(
                fields=["incident", "id"],
                name="timeline_starting",
                condition=Q(kind__in=sorted(k.value for k in STARTING_KINDS)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.message}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("timeline entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("timeline entries are append-only")


# --- postmortems -----------------------------------------------------------------------------


class Postmortem(models.Model):
    """What was learned from one incident; its curated timeline is in `TimelineCuration`."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    contributing_factors = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"postmortem of #{self.incident.number}"


class ActionItem(models.Model):
    """Something to do so that it does not happen again, with an owner and a due date."""

    postmortem = models.ForeignKey(
        Postmortem, on_delete=models.CASCADE, related_name="action_items"
    )
    description = models.TextField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due = models.DateField(null=True, blank=True)
    done = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.description[:80]


class TimelineCuration(models.Model):
    """How a postmortem shows one timeline entry: pinned, hidden, annotated. The entry itself
    is never changed: hiding only leaves it out of the curated timeline."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="curations")
    entry = models.ForeignKey(TimelineEntry, on_delete=models.PROTECT, related_name="+")
    pinned = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    annotation = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["postmortem", "entry"], name="one_curation_per_entry")
        ]

    def __str__(self) -> str:
        return f"curation of entry {self.entry_id}"
