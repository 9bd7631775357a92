"""The chat platforms the outbox posts to, by name."""

from __future__ import annotations

from types import ModuleType

from warroom.mattermost import outbound as mattermost
from warroom.slack import outbound as slack

PLATFORMS: dict[str, ModuleType] = {"slack": slack, "mattermost": mattermost}


def configured() -> list[ModuleType]:
    """The platforms Muster may post to now."""
    return [platform for platform in PLATFORMS.values() if platform.configured()]
