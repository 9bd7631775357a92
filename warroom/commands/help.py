"""Help: every command on a surface, or one of them; plain text by phone, a table in chat."""

from __future__ import annotations

from warroom.commands.specs import PHONE_SURFACES, listed_specs, phrases, spec_for


def help_text(topic: str | None = None, *, surface: str) -> str:
    """Return plain-text help: all commands on `surface`, or the one named (which fits an SMS,
    as does the whole list by phone)."""
    if topic is not None:
        spec = spec_for(topic)
        also = [p for p in phrases(spec, surface) if p != spec.word]
        aka = f" Also: {', '.join(also)}." if also else ""
        return f"{spec.usage}: {spec.summary}. e.g. {spec.example}.{aka}"
    listed = listed_specs(surface)
    if surface == "voice":
        keys = ", ".join(f"{s.codes[0]} to {s.name}" for s in listed if s.codes)
        return f"Press {keys}."
    parts = []
    for spec in listed:
        code = f"{spec.codes[0]} or " if spec.codes and surface in PHONE_SURFACES else ""
        parts.append(code + (spec.short_usage if surface in PHONE_SURFACES else spec.usage))
    text = f"Commands: {'; '.join(parts)}. N: an incident number"
    if surface in PHONE_SURFACES:
        return f"{text}, else your latest page. STOP ends texts."
    # Chat has more commands than fit an SMS; chat's own help is `help_markdown`.
    return f"{text}, else this room's incident."


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def help_markdown(topic: str | None = None, *, surface: str = "chat") -> str:
    """Return help for chat: every command as a Markdown table row; or the one named, as in
    `help_text` (one line reads well anywhere)."""
    if topic is not None:
        return help_text(topic, surface=surface)
    rows = [
        f"| `{_cell(s.usage)}` | {_cell(s.summary)} | `{_cell(s.example)}` |"
        for s in listed_specs(surface)
    ]
    return "\n".join(
        [
            "| Command | What it does | Example |",
            "| --- | --- | --- |",
            *rows,
            "",
            _ADDRESSING.get(surface, _ADDRESSING["chat"]),
        ]
    )


# How help says to type a command: in a Muster room; with Slack's or Mattermost's slash command,
# where "/ack" would be the chat client's own command.
_ADDRESSING = {
    "chat": "Start a command with `/` or `@muster`. (N) is an incident number (`1042`, `#42`, "
    "`incident 42`); in an incident's room it is that incident.",
    "mattermost": "Type `/muster` and a command, e.g. `/muster ack 1042`. (N) is an incident "
    "number (`1042`, `#42`, `incident 42`).",
    "slack": "Type `/muster` and a command, e.g. `/muster ack 1042`, or mention `@muster`. (N) is "
    "an incident number (`1042`, `#42`, `incident 42`).",
}
