"""What an incident's room says, told on Slack and Mattermost: each bot line and each person's
words, written as outbox posts in the transaction that posts them to the room.

Per service and platform (`slack_channel_mode`, `mattermost_channel_mode`):
- `channel-per-incident` (the default): the opening post asks for the incident's own channel;
  until it is ready, posts go to the service's shared channel, or without one stay in Muster;
  on resolve, a summary, and the channel is archived if the service says so;
- `shared`: every post goes to the service's shared channel;
- `off`: nothing.
What came from a platform is not told back to it. With no platform configured this costs
nothing; otherwise a query or two per message.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from alerts.models import Alert
from core.compiled import Lookup
from incidents.models import ChatChannelMode, EntryKind, Incident, TimelineEntry
from warroom.chat import channels, outbox
from warroom.chat.platforms import configured
from warroom.chat.summary import summary_markdown
from warroom.models import ChatChannel, ChatChannelState, Message, MessageKind, Room

MIRRORED = (MessageKind.BOT, MessageKind.CHAT)
CHANNEL_NOTE = "chat_channel"  # the room told where its chat channels are: not mirrored


def room_message(room: Room, message: Message) -> None:
    """Queue `message`, just posted to `room`, for the platforms its incident's service uses."""
    if room.incident_id is None or message.kind not in MIRRORED:
        return
    data = message.data if isinstance(message.data, dict) else {}
    if data.get("kind") == CHANNEL_NOTE:
        return
    platforms = configured()
    if not platforms:
        return
    found = _INCIDENT.instances(room.incident_id)
    if not found:
        return
    incident = found[0]
    entry_kind = data.get("kind")
    if message.kind == MessageKind.CHAT:
        kind = "chat"
    else:
        kind = "opening" if entry_kind == EntryKind.OPENED else "line"
    post_data: dict[str, Any] = {"number": incident.number, "title": incident.title}
    if message.author_id:
        post_data["author"] = message.author.get_username()
    if data.get("via"):
        post_data["via"] = data["via"]  # said on another platform: told as such
    for platform in platforms:
        if data.get("via") == platform.name:
            continue  # it came from there
        target, channel = _target(platform, incident, opening=kind == "opening")
        if target:
            outbox.queue(
                platform.name,
                target,
                kind,
                incident_id=incident.pk,
                body=message.body,
                data=post_data,
                message=message,
            )
        if entry_kind == EntryKind.RESOLVED and target:
            _closing(platform, incident, target, channel)


# Every message of an incident's room reads them, for every platform: compiled once.
_INCIDENT = Lookup(
    lambda pk: Incident.objects.select_related("service").filter(pk=pk), takes=(int,)
)
_CHANNEL = Lookup(
    lambda platform, incident: ChatChannel.objects.filter(
        platform=platform, incident_id=incident
    ).order_by("pk")[:1],
    takes=(str, int),
)


def _target(platform: Any, incident: Incident, *, opening: bool) -> tuple[str, ChatChannel | None]:
    """Where the incident's post goes now on `platform` (empty: nowhere), and its own channel."""
    service = incident.service
    mode = getattr(service, f"{platform.name}_channel_mode")
    shared = getattr(service, f"{platform.name}_channel")
    if mode == ChatChannelMode.OFF:
        return "", None
    if mode == ChatChannelMode.SHARED:
        return shared, None
    channels_found = _CHANNEL.instances(platform.name, incident.pk)
    channel = channels_found[0] if channels_found else None
    if channel is None and opening and platform.can_make_channels():
        channel = channels.ask_for(platform, incident.pk, incident.number, incident.title)
    if channel is not None and channel.state == ChatChannelState.READY:
        return channel.channel_id, channel
    return shared, None


def _closing(platform: Any, incident: Incident, target: str, channel: ChatChannel | None) -> None:
    """After the resolve line: the summary, then the channel archived if the service says so."""
    archiving = channel is not None and incident.service.archive_chat_channels
    acked = (
        TimelineEntry.objects.filter(incident=incident, kind=EntryKind.ACKNOWLEDGED)
        .order_by("at", "id")
        .values_list("actor_name", flat=True)
        .first()
    )
    alerts = Alert.objects.filter(incident=incident).count()
    body = summary_markdown(
        number=incident.number,
        title=incident.title,
        opened_at=incident.created_at,
        resolved_at=incident.resolved_at or timezone.now(),
        acknowledged_by=acked,
        alerts=alerts,
        archiving=archiving,
    )
    data = {"number": incident.number, "title": incident.title}
    outbox.queue(platform.name, target, "summary", incident_id=incident.pk, body=body, data=data)
    if archiving:
        outbox.queue(platform.name, target, "archive", incident_id=incident.pk)


def person_joined(room: Room, person_id: int) -> None:
    """Invite someone who joined an incident's room (paged, invited) to its ready channels."""
    if room.incident_id is None or not configured():
        return
    ready = ChatChannel.objects.filter(incident_id=room.incident_id, state=ChatChannelState.READY)
    for channel in ready:
        outbox.queue(
            channel.platform,
            channel.channel_id,
            "invite",
            incident_id=room.incident_id,
            data={"people": [person_id]},
        )
