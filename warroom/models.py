"""War rooms: one chat room per incident (and ad hoc rooms), its messages and attachments."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from incidents.models import Incident, Service


class Room(models.Model):
    """A persistent chat room; `incident` is set for an incident's war room."""

    incident = models.OneToOneField(
        Incident, null=True, blank=True, on_delete=models.PROTECT, related_name="room"
    )
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class MessageKind(models.TextChoices):
    CHAT = "chat", "chat"  # conversation
    COMMAND = "command", "command"  # a person's message that was a command
    REPLY = "reply", "reply"  # the bot's answer to a command
    BOT = "bot", "bot"  # the bot telling the room what happened


class Message(models.Model):
    """One message: Markdown as written, and its HTML rendered and sanitized once, server-side."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # Empty for the bot. PROTECT: people are deactivated, not deleted.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.CHAT)
    body = models.TextField()
    html = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # What the bot posted it about: {"entry": timeline entry id, ...}.
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"])]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.pk}"


class Attachment(models.Model):
    """A file posted to a room (a log, a screenshot), size- and type-checked on upload."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/%Y/%m/")
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.name


class Participant(models.Model):
    """Someone invited to or joined a room; paged responders are invited automatically."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)  # "paged", "joined", "invited by alice"
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="one_participant_per_room")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class Subscription(models.Model):
    """A stakeholder who asked for status updates of an incident or of every incident of a
    service, by email or in chat (the incident's room)."""

    EMAIL = "email"
    CHAT = "chat"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    channel = models.CharField(
        max_length=8, choices=[(EMAIL, "email"), (CHAT, "chat")], default=EMAIL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(incident__isnull=False) | models.Q(service__isnull=False),
                name="subscription_has_a_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.incident_id or self.service_id}"


class RequestSeen(models.Model):
    """A signed request acted on once (warroom.replay): an inbound SMS by its MessageSid, a
    keypress by its CallSid and gather step, a Slack request by its signature, a Slack event by
    its id. Kept for the replay window, then forgotten."""

    key = models.CharField(max_length=100, unique=True)  # "sms:SM…", "key:CA…:0", "slack-sig:v0=…"
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key


class ChatAccount(models.Model):
    """A chat platform's user linked by hand to a Muster person (`/muster link`): it wins over
    the email rule of accounts.chat_people, for a Slack account whose email differs."""

    platform = models.CharField(max_length=20)  # "slack"
    team_id = models.CharField(max_length=40)  # the Slack workspace, T…
    user_id = models.CharField(max_length=40)  # the Slack user, U… or W…
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_accounts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "team_id", "user_id"], name="chat_account_unique_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.team_id}:{self.user_id} → {self.person_id}"
