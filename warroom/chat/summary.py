"""The post that closes an incident's chat channel: how it went, and where its postmortem is."""

from __future__ import annotations

from datetime import datetime

from core.text import escape_markdown


def duration_words(seconds: float) -> str:
    """`seconds` as people say it: 45s, 12m, 3h 5m, 2d 4h."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{secs}s"


def summary_markdown(
    *,
    number: int,
    title: str,
    opened_at: datetime,
    resolved_at: datetime,
    acknowledged_by: str | None,
    alerts: int,
    archiving: bool,
) -> str:
    """The resolve summary: duration, who acknowledged, alerts, the postmortem's link."""
    took = duration_words((resolved_at - opened_at).total_seconds())
    acked = (
        f"acknowledged by **{escape_markdown(acknowledged_by)}**"
        if acknowledged_by
        else ("never acknowledged")
    )
    lines = [
        f"✅ **#{number} {escape_markdown(title[:200])}** is resolved after {took}: {acked}, "
        f"{alerts} alert{'s' if alerts != 1 else ''}.",
        f"Postmortem: [draft it in Muster](/incidents/{number}/postmortem/)",
    ]
    if archiving:
        lines.append("This channel is archived now; the war room stays open in Muster.")
    return "\n\n".join(lines)
