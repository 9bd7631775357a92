"""Runbooks (versioned Markdown), their automation actions and runs, and graph link templates."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q

from incidents.models import Incident, Service

# What a runbook's version history keeps of each save.
VERSIONED_FIELDS = ("title", "body", "matchers", "service_id")
MAX_RUNBOOK_BODY = 100_000  # characters of runbook Markdown


class Runbook(models.Model):
    """Markdown instructions for incidents of `service` (empty: any service) whose alerts'
    labels match every matcher. Among the runbooks that match, the first by position wins,
    a service's own runbooks before the any-service ones.

    Every save that changes the title, body, matchers or service keeps a `RunbookVersion`.
    """

    title = models.CharField(max_length=200)
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a service with runbooks is not deleted by accident
        related_name="runbooks",
        help_text="Empty: the runbook applies to every service, after each service's own.",
    )
    # [{"label": "team", "op": "=", "value": "db"}, ...] as in alerts.matchers; empty: any alert.
    matchers = models.JSONField(default=list, blank=True)
    body = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["service", "position", "id"])]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, author=None, **kwargs) -> None:
        """Save, and keep a version when something versioned changed; `author` is who."""
        with transaction.atomic():
            latest = None
            if self.pk is not None:
                # Lock the row: two editors saving at once get consecutive version numbers.
                list(Runbook.objects.select_for_update().filter(pk=self.pk).values_list("pk"))
                latest = self.versions.order_by("-number").first()
            changed = latest is None or latest.state() != self.versioned_state()
            if changed:
                self.version = (latest.number if latest else 0) + 1
                if kwargs.get("update_fields") is not None:
                    kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
            super().save(*args, **kwargs)
            if changed:
                RunbookVersion.objects.create(
                    runbook=self,
                    number=self.version,
                    title=self.title,
                    body=self.body,
                    matchers=self.matchers,
                    service_id=self.service_id,
                    author=author if getattr(author, "is_authenticated", False) else None,
                )

    def versioned_state(self) -> dict:
        return {name: getattr(self, name) for name in VERSIONED_FIELDS}


class RunbookVersion(models.Model):
    """A runbook as one save left it: who saved it, when, and what it said."""

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    matchers = models.JSONField(default=list, blank=True)
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["runbook", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["runbook", "number"], name="one_runbook_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.runbook_id} v{self.number}"

    def state(self) -> dict:
        return {name: getattr(self, name) for name in VERSIONED_FIELDS}


class Method(models.TextChoices):
    POST = "POST", "POST"
    PUT = "PUT", "PUT"


class ContentType(models.TextChoices):
    JSON = "application/json", "JSON"
    FORM = "application/x-www-form-urlencoded", "form"
    TEXT = "text/plain", "text"


class RunRole(models.TextChoices):
    RESPONDER = "responder", "Responder"
    ADMIN = "admin", "Admin"


MAX_ACTION_TIMEOUT = 60


class Action(models.Model):
    """An outbound HTTP call a runbook offers (a Jenkins, Rundeck or StackStorm webhook).

    Only admins set `url` and `headers`; they are sent exactly as written. The incident and its
    alerts' labels fill placeholders in the payload only (runbooks.templating).
    """

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="actions")
    name = models.SlugField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    # Checked by runbooks.actions.check_url (a URLField would refuse hosts like "jenkins").
    url = models.CharField(max_length=2000)
    content_type = models.CharField(
        max_length=64, choices=ContentType.choices, default=ContentType.JSON
    )
    payload_template = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_ACTION_TIMEOUT)]
    )
    role = models.CharField(max_length=16, choices=RunRole.choices, default=RunRole.RESPONDER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["runbook", "name"]
        constraints = [
            models.UniqueConstraint(fields=["runbook", "name"], name="one_action_name_per_runbook")
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    TIMED_OUT = "timed_out", "timed out"


UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING)
EXCERPT_BYTES = 2048


class ActionRun(models.Model):
    """One run of an action for an incident: what was sent, and what came back."""

    # SET_NULL: deleting an action keeps its runs' history; `action_name` says which it was.
    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    action_name = models.CharField(max_length=64)
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="action_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    # What is sent, fixed when the run is requested: what was confirmed is what goes out.
    method = models.CharField(max_length=8, choices=Method.choices)
    url = models.CharField(max_length=2000)
    request_body = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # the first EXCERPT_BYTES of the body
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["action", "-created_at"]),
            models.Index(
                fields=["created_at"],
                name="action_run_unfinished",
                condition=Q(status__in=["pending", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_name} for #{self.incident_id}: {self.status}"


class GraphTemplate(models.Model):
    """A graph link for incidents of `service` (empty: every service), filled from labels.

    `{label}` placeholders take the incident's first alert's label values, URL-encoded; a
    template naming a label the alert lacks is skipped. Scheme and host are never templated.
    """

    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="graph_templates",
        help_text="Empty: the template applies to every service.",
    )
    name = models.CharField(max_length=200)
    url_template = models.CharField(max_length=2000)
    image_url_template = models.CharField(max_length=2000, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
