"""Celery tasks of the chat outbox and of incident channels (warroom.chat)."""

from __future__ import annotations

from celery import shared_task

from warroom.chat import channels, outbox
from warroom.chat.mirror import CHANNEL_NOTE
from warroom.models import ChatChannelState, MessageKind, Room
from warroom.services import post


@shared_task(name=outbox.DELIVER_TASK, ignore_result=True)
def deliver(platform: str, target: str) -> None:
    """Deliver a channel's queued posts, in order."""
    outbox.deliver(platform, target)


@shared_task(name=channels.CREATE_TASK, ignore_result=True)
def create_channels(platform: str) -> None:
    """Make a platform's waiting incident channels, at its pace, and tell each room."""
    for channel in channels.make_waiting(platform):
        if channel.state == ChatChannelState.SKIPPED:
            continue
        room = Room.objects.filter(incident_id=channel.incident_id).first()
        if room is not None:
            post(
                room,
                channels.room_note(channel),
                kind=MessageKind.BOT,
                data={"kind": CHANNEL_NOTE, "platform": channel.platform},
            )


@shared_task(name="warroom.chat_sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Deliver what no worker was told about; settle posts that never got an answer."""
    swept = outbox.sweep()
    swept["channels"] = channels.sweep()
    return swept
