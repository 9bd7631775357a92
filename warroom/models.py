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
    # The last alert entry of each kind (alert_attached, ...) the bot has posted or shown in the
    # opening post, read and written under the room's row lock (warroom.alert_posts).
    alerts_posted = models.JSONField(blank=True, default=dict)

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
    the email rule of accounts.chat_people, for a chat account whose email differs."""

    platform = models.CharField(max_length=20)  # a ChatPlatform: "slack" or "mattermost"
    team_id = models.CharField(max_length=40)  # the Slack workspace, T…; "" on Mattermost
    user_id = models.CharField(max_length=40)  # the Slack user, U… or W…; Mattermost's id
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

    @property
    def platform_label(self) -> str:
        """The platform's name, to show: "Slack", "Mattermost"."""
        return dict(ChatPlatform.choices).get(self.platform, self.platform)


class ChatPlatform(models.TextChoices):
    SLACK = "slack", "Slack"
    MATTERMOST = "mattermost", "Mattermost"


class ChatChannelState(models.TextChoices):
    WAITING = "waiting", "waiting"  # to be created, at the provider's pace
    READY = "ready", "ready"
    FAILED = "failed", "failed"  # the provider refused it for good (its error says why)
    ARCHIVED = "archived", "archived"
    SKIPPED = "skipped", "skipped"  # the incident resolved before its turn came


class ChatChannel(models.Model):
    """An incident's own channel on a chat platform, from the moment it is asked for
    (warroom.chat.channels). Until it is ready, the incident's posts go to the service's shared
    channel, if it has one."""

    platform = models.CharField(max_length=16, choices=ChatPlatform.choices)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="chat_channels")
    state = models.CharField(
        max_length=16, choices=ChatChannelState.choices, default=ChatChannelState.WAITING
    )
    name = models.CharField(max_length=80)  # inc-1042-disk-full-on-db-1
    channel_id = models.CharField(max_length=40, blank=True)  # C… on Slack, 26 characters on MM
    private = models.BooleanField(default=False)
    # Mattermost: the outgoing webhook that mirrors the channel into the room, and its token.
    hook_id = models.CharField(max_length=40, blank=True)
    hook_token = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)  # the provider's Retry-After
    error = models.CharField(max_length=500, blank=True)
    invited = models.JSONField(default=list, blank=True)  # Muster person ids invited already
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "incident"], name="one_chat_channel_per_incident"
            )
        ]
        indexes = [
            models.Index(fields=["platform", "channel_id"]),
            models.Index(fields=["platform", "state", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.name}"


class ChatPostState(models.TextChoices):
    QUEUED = "queued", "queued"
    SENDING = "sending", "sending"  # handed to the provider, no answer yet
    SENT = "sent", "sent"
    UNKNOWN = "unknown", "unknown"  # may have been posted (a timeout after sending): not resent
    FAILED = "failed", "failed"  # refused for good (its error says why)
    SKIPPED = "skipped", "skipped"  # nowhere to post it: no channel yet and no shared one


SETTLED_POST_STATES = (
    ChatPostState.SENT,
    ChatPostState.UNKNOWN,
    ChatPostState.FAILED,
    ChatPostState.SKIPPED,
)


class ChatPost(models.Model):
    """One post to a chat platform, written in the transaction of what it tells (the outbox,
    warroom.chat.outbox) and delivered after, in order per incident and platform."""

    platform = models.CharField(max_length=16, choices=ChatPlatform.choices)
    # Null: a post to `target` alone (the setup page's test message).
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="chat_posts"
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16)  # opening, line, chat, summary, test
    body = models.TextField()  # Markdown, as the room has it; rendered per platform on sending
    data = models.JSONField(default=dict, blank=True)
    # Where to post when not the incident's channel: the shared channel, or the test's channel.
    target = models.CharField(max_length=40, blank=True)
    channel_id = models.CharField(max_length=40, blank=True)  # where it went
    state = models.CharField(
        max_length=16, choices=ChatPostState.choices, default=ChatPostState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    remote_id = models.CharField(max_length=64, blank=True)  # Slack's ts, Mattermost's post id
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["platform", "incident", "id"]),
            models.Index(fields=["state", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.kind}:{self.pk}"
