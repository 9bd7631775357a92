"""Each incident's own channel on a chat platform: asked for with its opening post, made at
the provider's pace, then given the opening story and the room's people.

Channels are made one at a time per platform, oldest first: Slack lets an app make about 20 a
minute, so a storm that opens 200 incidents has its channels within minutes, and until an
incident's channel is ready its posts go to the service's shared channel (warroom.chat.mirror).
A 429 pauses every channel of the platform for its `Retry-After`. Each try holds a lease
(`not_before`), so a worker that dies mid-call only delays the channel; a name that is taken
(by someone, or by that dead try) gets `-2`, `-3`….
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import slots
from incidents.models import EntryKind, Status
from warroom.chat import outbox
from warroom.chat.asking import ask, backoff_seconds, started
from warroom.chat.names import channel_name
from warroom.chat.platform import ChatRefused, ChatUnavailable, NameTaken, NewChannel
from warroom.chat.platforms import PLATFORMS
from warroom.models import ChatChannel, ChatChannelState, Message, MessageKind, Participant

log = logging.getLogger(__name__)

CREATE_TASK = "warroom.chat_create_channels"
LEASE = timedelta(seconds=30)  # one try at making a channel, at most
NAME_TRIES = 5
ROUNDS = 50


def ask_for(platform: Any, incident_id: int, number: int, title: str) -> ChatChannel:
    """Return the incident's channel on `platform`, asking for it (made after commit) if new."""
    name = channel_name(platform.channel_prefix(), number, title, most=platform.NAME_MOST)
    channel, created = ChatChannel.objects.get_or_create(
        platform=platform.name, incident_id=incident_id, defaults={"name": name}
    )
    if created:
        transaction.on_commit(lambda: kick(platform.name), robust=True)
    return channel


def kick(platform: str, *, countdown: float = 0, again: bool = False) -> None:
    """Ask a worker to make the platform's waiting channels (see asking.ask)."""
    ask(CREATE_TASK, (platform,), countdown=countdown, again=again)


def _pause_key(platform: str) -> str:
    return f"chat:make-paused:{platform}"


def make_waiting(platform_name: str) -> list[ChatChannel]:
    """Make the platform's waiting channels, oldest first, until it says to wait; return the
    channels it settled (ready or failed). If this worker's chat threads are all taken, ask for
    it again shortly (core.slots)."""
    # Started, whatever comes next: a channel waiting from now on gets a task of its own.
    started(CREATE_TASK, (platform_name,))
    with slots.slot("CHAT_THREADS", platform_name) as free:
        if not free:
            due = ChatChannel.objects.filter(
                Q(not_before__isnull=True) | Q(not_before__lte=timezone.now()),
                platform=platform_name,
                state=ChatChannelState.WAITING,
            )
            if due.exists():
                slots.ask_again_later(
                    f"{CREATE_TASK}:{platform_name}",
                    lambda countdown: kick(platform_name, countdown=countdown),
                )
            return []
        return _make_waiting(platform_name)


def _make_waiting(platform_name: str) -> list[ChatChannel]:
    platform = PLATFORMS[platform_name]
    settled: list[ChatChannel] = []
    if not platform.can_make_channels():  # configured once, not now: say so, do not wait
        waiting = ChatChannel.objects.filter(platform=platform_name, state=ChatChannelState.WAITING)
        settled = list(waiting)
        waiting.update(
            state=ChatChannelState.FAILED,
            error=f"{platform.label} cannot make channels now (see Setup)",
            not_before=None,
        )
        for channel in settled:
            channel.refresh_from_db()
        return settled
    for _ in range(ROUNDS):
        paused = cache.get(_pause_key(platform_name))
        if paused:
            kick(platform_name, countdown=max(paused - timezone.now().timestamp(), 0.5))
            return settled
        channel = _claim(platform_name)
        if channel is None:
            return settled
        go_on = _make(platform, channel)
        channel.refresh_from_db()
        if channel.state != ChatChannelState.WAITING:
            settled.append(channel)
        if not go_on:
            return settled
    kick(platform_name)
    return settled


def _claim(platform: str) -> ChatChannel | None:
    now = timezone.now()
    with transaction.atomic():
        channel = (
            ChatChannel.objects.filter(platform=platform, state=ChatChannelState.WAITING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .select_related("incident")
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if channel is not None:
            channel.not_before = now + LEASE
            channel.save(update_fields=["not_before"])
    return channel


def _make(platform: Any, channel: ChatChannel) -> bool:
    """Try to make `channel`; return whether the next one may be tried now."""
    if channel.incident.status == Status.RESOLVED:  # a storm's incidents that ended already
        ChatChannel.objects.filter(pk=channel.pk).update(
            state=ChatChannelState.SKIPPED, error="resolved before its turn", not_before=None
        )
        return True
    title = _title(channel)
    try:
        made = platform.create_channel(channel.name, title)
    except NameTaken:
        tries = channel.attempts + 1
        if tries >= NAME_TRIES:
            _failed(channel, "every name tried was taken")
            return True
        incident = channel.incident
        name = channel_name(
            platform.channel_prefix(),
            incident.number,
            incident.title,
            most=platform.NAME_MOST,
            attempt=tries,
        )
        ChatChannel.objects.filter(pk=channel.pk).update(name=name, attempts=tries, not_before=None)
        return True
    except ChatUnavailable as exc:
        return _unavailable(platform, channel, exc)
    except ChatRefused as exc:
        _failed(channel, str(exc))
        return True
    _ready(platform, channel, made)
    return True


def _unavailable(platform: Any, channel: ChatChannel, exc: ChatUnavailable) -> bool:
    now = timezone.now()
    limited = exc.retry_after is not None
    tries = channel.attempts + (0 if limited else 1)
    if tries >= settings.CHAT_MAX_ATTEMPTS:
        _failed(channel, f"{platform.label} unavailable: {exc}")
        return True
    wait = exc.retry_after if limited else backoff_seconds(tries)
    until = now + timedelta(seconds=max(wait or 0, 0.5))
    ChatChannel.objects.filter(pk=channel.pk).update(
        attempts=tries, not_before=until, error=str(exc)[:500]
    )
    if limited:  # the platform's limit: every waiting channel waits
        cache.set(_pause_key(platform.name), until.timestamp(), int(wait or 1) + 1)
    kick(platform.name, countdown=(until - now).total_seconds())
    return False


def _failed(channel: ChatChannel, error: str) -> None:
    log.warning("no %s channel for incident %s: %s", channel.platform, channel.incident_id, error)
    ChatChannel.objects.filter(pk=channel.pk).update(
        state=ChatChannelState.FAILED, error=error[:500], not_before=None
    )


def _ready(platform: Any, channel: ChatChannel, made: NewChannel) -> None:
    """The channel exists: record it, then give it the opening story and the room's people."""
    with transaction.atomic():
        ChatChannel.objects.filter(pk=channel.pk).update(
            state=ChatChannelState.READY,
            channel_id=made.channel_id,
            private=made.private,
            hook_id=made.hook_id,
            hook_token=made.hook_token,
            ready_at=timezone.now(),
            not_before=None,
            error="",
        )
        incident = channel.incident
        opening = (
            Message.objects.filter(
                room__incident=incident, kind=MessageKind.BOT, data__kind=EntryKind.OPENED
            )
            .order_by("id")
            .first()
        )
        data = {"number": incident.number, "title": incident.title}
        if opening is not None:
            outbox.queue(
                platform.name,
                made.channel_id,
                "opening",
                incident_id=incident.pk,
                body=opening.body,
                data=data,
                message=opening,
            )
        people = list(
            Participant.objects.filter(room__incident=incident).values_list("user_id", flat=True)
        )
        for person in people:  # one each: someone Slack refuses does not hold up the rest
            outbox.queue(
                platform.name,
                made.channel_id,
                "invite",
                incident_id=incident.pk,
                data={"people": [person]},
            )


def room_note(channel: ChatChannel) -> str:
    """What the incident's Muster room is told about its channel on a platform."""
    platform = PLATFORMS[channel.platform]
    if channel.state == ChatChannelState.READY:
        mirrored = (
            ""
            if channel.platform != "mattermost" or channel.hook_id
            else " What is written there is not mirrored here: Mattermost gave it no outgoing "
            "webhook (enable them, and let the bot account manage them). Mattermost's outgoing "
            "webhooks work in public channels only: a private channel is never mirrored."
        )
        link = f"[{channel.name}]({platform.channel_url(channel)})"
        return f"💬 {platform.label} channel {link} is open.{mirrored}"
    return f"⚠️ No {platform.label} channel for this incident: {channel.error or 'refused'}."


def _title(channel: ChatChannel) -> str:
    incident = channel.incident
    return f"#{incident.number} {incident.title}"


def sweep() -> int:
    """Ask for the waiting channels no worker was told about; return for how many platforms."""
    now = timezone.now()
    platforms = (
        ChatChannel.objects.filter(state=ChatChannelState.WAITING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by()
        .values_list("platform", flat=True)
        .distinct()
    )
    asked = 0
    for platform in platforms:
        if platform in PLATFORMS:
            kick(platform, again=True)
            asked += 1
    return asked
