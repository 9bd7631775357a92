"""What the setup page shows of each chat platform: whether it is configured (which settings
are missing, by name; never their values), whether it can make incident channels, and how its
outbox delivers: posts by state over the last day, the oldest queued post, the last error, and
the incident channels waiting or failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from incidents.models import Service
from warroom.chat.platforms import PLATFORMS
from warroom.models import ChatChannel, ChatChannelState, ChatPost, ChatPostState

WINDOW = timedelta(hours=24)
SHOWN_STATES = (
    ChatPostState.QUEUED,
    ChatPostState.SENDING,
    ChatPostState.SENT,
    ChatPostState.UNKNOWN,
    ChatPostState.FAILED,
)
# The settings each platform needs: to post (and take commands), and to make incident channels.
REQUIRED = {
    "slack": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
    "mattermost": ("MATTERMOST_URL", "MATTERMOST_BOT_TOKEN", "MATTERMOST_COMMAND_TOKENS"),
}
FOR_CHANNELS = {"slack": (), "mattermost": ("MATTERMOST_TEAM",)}
DOCS = {"slack": "docs/warroom/slack.md", "mattermost": "docs/warroom/mattermost.md"}


@dataclass
class LastError:
    error: str
    at: datetime
    post_id: int


@dataclass
class PlatformStatus:
    name: str  # "slack"
    label: str  # "Slack"
    configured: bool  # Muster may post to it
    missing: list[str]  # settings not set, by name
    can_make_channels: bool
    missing_for_channels: list[str]
    docs: str  # the setup guide's path in the docs
    counts: dict[str, int] = field(default_factory=dict)  # posts by state, the last WINDOW
    oldest_queued_at: datetime | None = None  # when the oldest queued post was written
    oldest_queued: timedelta | None = None  # how long it has waited
    last_error: LastError | None = None
    channels_waiting: int = 0
    channels_failed: int = 0
    test_channel: str = ""  # the first service's shared channel: the test message's default


def missing_settings(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not getattr(settings, name, None)]


def platform_status(name: str, now: datetime | None = None) -> PlatformStatus:
    """Return how `name` ("slack", "mattermost") is set up and how its outbox is doing."""
    now = now or timezone.now()
    platform = PLATFORMS[name]
    status = PlatformStatus(
        name=name,
        label=platform.label,
        configured=platform.configured(),
        missing=missing_settings(REQUIRED[name]),
        can_make_channels=platform.can_make_channels(),
        missing_for_channels=missing_settings(FOR_CHANNELS[name]),
        docs=DOCS[name],
    )
    posts = ChatPost.objects.filter(platform=name)
    counts = posts.filter(created_at__gte=now - WINDOW).aggregate(
        **{state: Count("pk", filter=Q(state=state)) for state in SHOWN_STATES}
    )
    status.counts = {str(state): counts[state] for state in SHOWN_STATES}
    oldest = posts.filter(state=ChatPostState.QUEUED).aggregate(at=Min("created_at"))["at"]
    status.oldest_queued_at = oldest
    status.oldest_queued = now - oldest if oldest else None
    last = posts.exclude(error="").order_by("-id").values("pk", "error", "created_at").first()
    if last:
        status.last_error = LastError(last["error"], last["created_at"], last["pk"])
    channels = ChatChannel.objects.filter(platform=name).aggregate(
        waiting=Count("pk", filter=Q(state=ChatChannelState.WAITING)),
        failed=Count("pk", filter=Q(state=ChatChannelState.FAILED)),
    )
    status.channels_waiting, status.channels_failed = channels["waiting"], channels["failed"]
    status.test_channel = default_test_channel(name)
    return status


def default_test_channel(name: str) -> str:
    """The first service's (by name) shared channel on `name`, or ""."""
    field_name = f"{name}_channel"
    channel = (
        Service.objects.exclude(**{field_name: ""})
        .order_by("name")
        .values_list(field_name, flat=True)
        .first()
    )
    return channel or ""


def overview(now: datetime | None = None) -> list[PlatformStatus]:
    """Each chat platform's status, Slack first."""
    now = now or timezone.now()
    return [platform_status(name, now) for name in PLATFORMS]
