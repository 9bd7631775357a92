"""The command `help [command]`: the commands of the surface it was typed on, or one of them."""

from __future__ import annotations

from accounts.models import User
from incidents.models import Incident
from warroom.commands.help import help_markdown, help_text
from warroom.commands.specs import CHAT_SURFACES, SURFACE_NAMES, Command
from warroom.replies import Reply


def show_help(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`help [command]`: a Markdown table in chat, plain text that fits an SMS by phone."""
    surface = source if source in SURFACE_NAMES else "chat"
    if surface in CHAT_SURFACES:
        return Reply(help_markdown(command.topic, surface=surface))
    return Reply(help_text(command.topic, surface=surface))
