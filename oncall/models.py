"""People's contact methods and rules, teams, schedules, escalation policies, escalations, pages."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Role, User
from incidents.models import Incident, Service, TimelineEntry, Urgency

USER = settings.AUTH_USER_MODEL


# --- people ----------------------------------------------------------------------------------


class ContactKind(models.TextChoices):
    SMS = "sms", "SMS"
    VOICE = "voice", "voice call"
    EMAIL = "email", "email"


class ContactMethod(models.Model):
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=8, choices=ContactKind.choices)
    # E.164 (+14155550100) for SMS and voice; an address for email.
    address = models.CharField(max_length=254)
    label = models.CharField(max_length=100, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_code_hash = models.CharField(max_length=64, blank=True)
    verification_expires_at = models.DateTimeField(null=True, blank=True)
    verification_attempts = models.PositiveSmallIntegerField(default=0)
    # The person texted STOP: Twilio will refuse to send until they text START.
    opted_out = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "address"], name="one_method_per_address"
            )
        ]
        indexes = [models.Index(fields=["address"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def is_usable(self) -> bool:
        return self.is_verified and not self.opted_out


class VerificationBudget(models.Model):
    """Codes sent to, and wrong codes typed for, an address by a person; apart from the contact
    method, so that deleting and adding it again resets neither limit (oncall.people)."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=254)
    last_sent_at = models.DateTimeField(null=True)
    failures = models.PositiveSmallIntegerField(default=0)
    failures_since = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="one_budget")]
        indexes = [models.Index(fields=["address", "last_sent_at"])]

    def __str__(self) -> str:
        return f"verification budget of user {self.user_id} for {self.address}"


class NotificationRule(models.Model):
    """Reach `user` through `contact_method`, `delay_minutes` after a page starts."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="notification_rules")
    urgency = models.CharField(max_length=8, choices=Urgency.choices)
    delay_minutes = models.PositiveIntegerField(default=0)
    contact_method = models.ForeignKey(
        ContactMethod, on_delete=models.CASCADE, related_name="rules"
    )

    class Meta:
        ordering = ["user_id", "urgency", "delay_minutes", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "urgency", "delay_minutes", "contact_method"], name="unique_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.urgency}: {self.contact_method} at {self.delay_minutes} min"


class PersonSettings(models.Model):
    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="oncall_settings")
    time_zone = models.CharField(max_length=64, default="UTC")
    # Low-urgency pages wait outside these hours (in the person's zone) when both are set.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    ical_token = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)

    def __str__(self) -> str:
        return f"settings of {self.user}"


# --- teams and schedules ---------------------------------------------------------------------


class Team(models.Model):
    name = models.CharField(max_length=200, unique=True)
    members: models.ManyToManyField[User, Membership] = models.ManyToManyField(
        USER, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    user = models.ForeignKey(USER, on_delete=models.CASCADE)
    is_admin = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


def new_ical_token() -> str:
    return secrets.token_urlsafe(24)


class Schedule(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedules"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    ical_token = models.CharField(max_length=64, unique=True, default=new_ical_token)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Rotation(models.TextChoices):
    DAILY = "daily", "daily"
    WEEKLY = "weekly", "weekly"
    CUSTOM = "custom", "custom hours"


class Layer(models.Model):
    """A rotation of people; a higher `level` wins over lower layers where it has someone."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=200, blank=True)
    level = models.IntegerField(default=0)
    rotation = models.CharField(max_length=8, choices=Rotation.choices, default=Rotation.WEEKLY)
    shift_hours = models.PositiveIntegerField(default=24, help_text="Custom rotations only.")
    # The first handoff, in the schedule's zone; handoffs keep its wall-clock time.
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    # [{"weekdays": [0,1,2,3,4], "start": "09:00", "end": "17:00"}], in the schedule's zone.
    restrictions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["schedule_id", "level", "id"]

    def __str__(self) -> str:
        return self.name or f"layer {self.level}"


class LayerParticipant(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["layer_id", "position"]

    def __str__(self) -> str:
        return f"{self.user} #{self.position}"


class Override(models.Model):
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="overrides")
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["schedule", "end"])]

    def __str__(self) -> str:
        return f"{self.user} covers {self.schedule} {self.start:%Y-%m-%d %H:%M}"


# --- escalation ------------------------------------------------------------------------------


class EscalationPolicy(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="policies"
    )
    # How many more times the whole policy runs after the first pass.
    repeat = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    # Minutes to wait, after this step pages, before the next step.
    delay_minutes = models.PositiveIntegerField(default=15)
    # The through model is Django's own (EscalationStep_users), not named in this module.
    users: models.ManyToManyField[User, models.Model] = models.ManyToManyField(
        USER, blank=True, related_name="+"
    )
    schedules = models.ManyToManyField(Schedule, blank=True, related_name="+")
    teams = models.ManyToManyField(Team, blank=True, related_name="+")

    class Meta:
        ordering = ["policy_id", "position"]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position}"


class ServicePolicy(models.Model):
    """The escalation policy a service's incidents follow."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="escalation")
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.service} → {self.policy}"


class EscalationStatus(models.TextChoices):
    ACTIVE = "active", "active"
    DONE = "done", "done"  # ran out of steps and repeats
    STOPPED = "stopped", "stopped"  # acknowledged, resolved or superseded


class Escalation(models.Model):
    """One run of a policy for an incident, started by one timeline entry (its `cause`: the
    incident opened or re-triggered, was unacknowledged, escalated or reassigned); a later
    cause supersedes it with a run that goes on from where this one stood. The tick fires its
    next step when due."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="escalations")
    policy = models.ForeignKey(
        EscalationPolicy, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    cause = models.ForeignKey(
        TimelineEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    step = models.PositiveIntegerField(default=0)  # the next step to fire
    cycle = models.PositiveIntegerField(default=0)  # the cycle of the next step
    # The level (1-based step) paged most recently; 0 before the first.
    level = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=EscalationStatus.choices, default=EscalationStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["next_at"], name="escalation_due", condition=Q(status="active"))
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cause"], name="one_escalation_per_cause", condition=Q(cause__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"escalation {self.pk} of #{self.incident_id} step {self.step} cycle {self.cycle}"

    @property
    def level_cycle(self) -> int:
        """The cycle of the level paged most recently (the next step may start a new cycle)."""
        return self.cycle if self.step >= self.level else max(0, self.cycle - 1)


class PageStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    SENDING = "sending", "sending"
    SENT = "sent", "sent"
    DELIVERED = "delivered", "delivered"
    ANSWERED = "answered", "answered"  # a call where a key was pressed
    FAILED = "failed", "failed"
    UNKNOWN = "unknown", "unknown"  # handed to the provider, outcome never learned
    CANCELLED = "cancelled", "cancelled"  # the incident was acknowledged or resolved first


PAGE_FINAL = (
    PageStatus.DELIVERED,
    PageStatus.ANSWERED,
    PageStatus.FAILED,
    PageStatus.UNKNOWN,
    PageStatus.CANCELLED,
)


class Page(models.Model):
    """One notification to one person through one contact method."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    escalation = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.CASCADE, related_name="pages"
    )
    step = models.PositiveIntegerField(default=0)
    cycle = models.PositiveIntegerField(default=0)
    person = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="pages")
    rule = models.ForeignKey(
        NotificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The rule's id, or 0 for a page no rule asked for (last resort, console fallback): unlike
    # a nullable column it takes part in the uniqueness that keeps a replayed tick from paging.
    rule_key = models.BigIntegerField(default=0)
    contact_method = models.ForeignKey(
        ContactMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="pages"
    )
    channel = models.CharField(max_length=16)  # sms | voice | email | console
    address = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=PageStatus.choices, default=PageStatus.QUEUED)
    send_after = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set, and committed, just before the provider is called: a page claimed but never handed
    # over can safely be sent again; one handed over cannot (Twilio has no idempotency key).
    handed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_id = models.CharField(max_length=64, blank=True, db_index=True)
    provider_status = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    body = models.TextField(blank=True)
    manual = models.BooleanField(default=False)
    # Held back by the rate limit: when it was due. The next message to the person on this
    # channel carries it (a bundle), high urgency within a minute of this time.
    held_at = models.DateTimeField(null=True, blank=True)
    # Its message went out above the rate limit, carrying every page held for the person on
    # this channel: at most one such bundle a minute.
    bundle = models.BooleanField(default=False)
    # The page whose message carried this one (a bundle); it sent no message of its own.
    carried_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="carried"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["escalation", "step", "cycle", "person", "rule_key"],
                name="one_page_per_step_person_rule",
                condition=Q(escalation__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["status", "send_after"], name="page_outbox"),
            models.Index(fields=["incident", "id"]),
            models.Index(fields=["person", "created_at"]),
            # The rate limit and bundles: what one person was sent on one channel lately.
            models.Index(fields=["person", "channel", "handed_at"], name="page_pacing"),
        ]

    def __str__(self) -> str:
        return f"page {self.pk} to {self.person_id} via {self.channel}: {self.status}"


class OutboxKind(models.TextChoices):
    PAGE = "page", "page"
    VERIFICATION = "verification", "verification code"
    TEST = "test", "test page"
    OTHER = "other", "message"


# A verification code in a message: its digits (oncall.people.CODE_DIGITS of them).
_CODE = re.compile(r"\b\d{6}\b")


class OutboxMessage(models.Model):
    """One SMS or call the console channel "sent" in place of Twilio: the dev outbox.

    Pages, verification codes and test pages alike; only a page has a Page row (`page`).
    """

    kind = models.CharField(max_length=16, choices=OutboxKind.choices)
    page = models.ForeignKey(
        Page, null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )
    person = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=ContactKind.choices)  # as it would have gone
    address = models.CharField(max_length=254, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Newest first, paged by id (the primary key's index): no other index to maintain.
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.address or '-'} by {self.channel}"

    def body_for(self, viewer) -> str:
        """Return the message as `viewer` may read it: a verification code is a credential,
        shown only to its owner and to admins (masked for anyone else)."""
        if self.kind != OutboxKind.VERIFICATION:
            return self.body
        if viewer.pk == self.person_id or viewer.has_role(Role.ADMIN):
            return self.body
        return _CODE.sub(lambda found: "•" * len(found.group()), self.body)
