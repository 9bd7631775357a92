"""Every surface that takes commands in, by name: also the `source` its actions record."""

from __future__ import annotations

from types import ModuleType

from warroom.surfaces import chat, mattermost, slack, sms, voice

SURFACES: dict[str, ModuleType] = {
    "chat": chat,
    "mattermost": mattermost,
    "slack": slack,
    "sms": sms,
    "voice": voice,
}
