"""The commands `runbook`, `graph` and `run <action>`: what runbooks know, as Markdown.

`run <action>` only says what would be called; `run <action> confirm` starts it
(runbooks.actions checks the role, records it on the timeline and runs it through Celery; the
result reaches the room as a timeline entry). The room is read by observers too: the preview
names the values the incident fills in, never the body (the admin's template may hold tokens).
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import quote

from django.conf import settings

from accounts.models import User
from core.text import escape_markdown
from incidents.models import Incident, Source
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from runbooks import actions
from runbooks.graphs import graph_links
from runbooks.models import Action, Runbook
from runbooks.services import label_sets, matching_runbook
from warroom.commands.specs import Command
from warroom.markdown import code, embeddable_image
from warroom.replies import Reply, is_phone

BODY_MAX = 8_000  # characters of runbook shown in chat; the rest is a link away
MAX_IMAGES = 4


def runbook(command: Command, user: User, source: str, incident: Incident | None) -> Reply:
    """Reply with the incident's runbook: its title (a link), its body, and its actions."""
    found = _incident(command, user, incident, "runbook")
    if not isinstance(found, Incident):
        return found
    book = matching_runbook(found)
    if book is None:
        return Reply(_no_runbook(found), incident=found.number)
    if is_phone(source):
        return Reply(f"Runbook: {book.title[:100]} {runbook_url(book)}", incident=found.number)
    return Reply(runbook_markdown(book), incident=found.number)


def graph(command: Command, user: User, source: str, incident: Incident | None) -> Reply:
    """Reply with the incident's graph links, and previews of those that have an image on a host
    an admin allowed (`MUSTER_IMAGE_HOSTS`)."""
    found = _incident(command, user, incident, "graph")
    if not isinstance(found, Incident):
        return found
    links = graph_links(found)
    if not links:
        return Reply(
            f"No graphs for #{found.number}: its alerts carried no graph links and "
            f"{escape_markdown(found.service.name)} has no graph templates that fit them.",
            incident=found.number,
        )
    lines = [f"**Graphs for #{found.number}**", ""]
    lines += [f"- [{escape_markdown(link.name)}]({_md_url(link.url)})" for link in links]
    images = [link for link in links if link.image_url and embeddable_image(link.image_url)]
    images = images[:MAX_IMAGES]
    for link in images:
        lines += ["", f"![{escape_markdown(link.name)}]({_md_url(link.image_url or '')})"]
    return Reply("\n".join(lines), incident=found.number)


def run_action(command: Command, user: User, source: str, incident: Incident | None) -> Reply:
    """`run`: list the actions; `run <name>`: say what it will call; `... confirm`: start it."""
    found = _incident(command, user, incident, "run")
    if not isinstance(found, Incident):
        return found
    number = found.number
    book = matching_runbook(found)
    offered = list(book.actions.select_related("runbook__service")) if book else []
    name = command.action
    if not name:
        return Reply(_action_list(found, book, offered), incident=number)
    chosen = next((a for a in offered if a.name.lower() == name.lower()), None)
    if chosen is None:
        return Reply(_no_such_action(found, book, offered, name), incident=number)
    try:
        if not command.confirm:
            return Reply(_preview(chosen, actions.preview(chosen, found, user)), incident=number)
        run = actions.request_run(chosen, found, user, source=source)
    except actions.ActionError as exc:
        return Reply(str(exc), incident=number)
    return Reply(
        f"Started **{escape_markdown(chosen.name)}** for #{number} (run {run.pk}): {run.method} "
        f"{code(actions.target(run.url))}. {_where_results_go(source, number)}",
        changed=True,
        incident=number,
    )


# --- helpers ------------------------------------------------------------------------------------


def _incident(
    command: Command, user: User, context: Incident | None, word: str
) -> Incident | Reply:
    """Return the incident the command means and the user may see, or the Reply saying why not."""
    number = command.incident
    if number is None and context is not None:
        number = context.number
    if number is None:
        if word == "run":
            return Reply(
                "Which incident? Type `run` in the incident's room, where it knows the incident."
            )
        return Reply(f"Which incident? Add its number, e.g. `{word} #1042`.")
    try:
        return access_incident(user, number)
    except (NotAllowed, IncidentNotFound) as exc:
        return Reply(str(exc), incident=number)


def runbook_url(book: Runbook) -> str:
    """Return the runbook's address in the API (where its whole text is)."""
    return f"{settings.PUBLIC_URL}/api/v1/runbooks/{book.pk}/"


def runbook_markdown(book: Runbook) -> str:
    """Return a runbook as a chat message: title linked, body (cut if long), actions."""
    url = runbook_url(book)
    scope = escape_markdown(book.service.name) if book.service_id else "any service"
    lines = [
        f"**Runbook: [{escape_markdown(book.title)}]({_md_url(url)})** · {scope} · v{book.version}",
        "",
    ]
    body = book.body.strip()
    if len(body) > BODY_MAX:
        cut = body.rfind("\n", 0, BODY_MAX)
        body = body[: cut if cut > BODY_MAX // 2 else BODY_MAX].rstrip()
        body += f"\n\n… the rest is in [the runbook]({_md_url(url)})."
    lines.append(body or "_This runbook has no text yet._")
    offered = list(book.actions.all())
    if offered:
        lines += ["", "**Actions** (type `run <name>` to see what one does):"]
        lines += [_action_line(action) for action in offered]
    return "\n".join(lines)


def _action_line(action: Action) -> str:
    what = f" — {escape_markdown(action.description)}" if action.description else ""
    admin = " (admins)" if action.role == "admin" else ""
    return f"- `run {action.name}`{what}{admin}"


def _no_runbook(incident: Incident) -> str:
    alerts = len(label_sets(incident))
    about = f"{alerts} alert label set{'s' if alerts != 1 else ''}" if alerts else "no alerts"
    return (
        f"No runbook matches #{incident.number} (service {escape_markdown(incident.service.name)}, "
        f"{about}). Admins add runbooks through /api/v1/runbooks/."
    )


def _action_list(incident: Incident, book: Runbook | None, offered: list[Action]) -> str:
    if book is None:
        return f"No runbook matches #{incident.number}, so there are no actions to run."
    if not offered:
        return f"The runbook **{escape_markdown(book.title)}** has no actions."
    lines = [f"Actions of **{escape_markdown(book.title)}** for #{incident.number}:"]
    lines += [_action_line(action) for action in offered]
    lines += ["", "`run <name>` shows what it will call; `run <name> confirm` starts it."]
    return "\n".join(lines)


def _no_such_action(
    incident: Incident, book: Runbook | None, offered: list[Action], name: str
) -> str:
    if book is None:
        return f"No runbook matches #{incident.number}, so there is no action {code(name)}."
    names = [action.name for action in offered]
    if not names:
        return f"The runbook **{escape_markdown(book.title)}** has no actions."
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    hint = f" Did you mean `run {close[0]}`?" if close else ""
    listed = ", ".join(f"`{n}`" for n in names)
    title = escape_markdown(book.title)
    return f"**{title}** has no action {code(name)}.{hint} Its actions: {listed}."


def _preview(action: Action, preview: actions.Preview) -> str:
    head = (
        f"**{escape_markdown(action.name)}** will {preview.method} to {code(preview.target)} "
        f"(timeout {action.timeout_seconds} s)"
    )
    size = len(preview.body.encode())
    if not size:
        text = f"{head} with an empty body."
    elif preview.fills:
        filled = "\n".join(f"- {code(name)}: {code(value[:200])}" for name, value in preview.fills)
        text = f"{head} with a {size}-byte body, filled in with:\n\n{filled}"
    else:
        text = f"{head} with a fixed {size}-byte body."
    return f"{text}\n\nType `run {action.name} confirm` to start it."


def _md_url(url: str) -> str:
    """Percent-encode what would end a Markdown link destination early."""
    return re.sub(r"[\s()<>\[\]\\\"]", lambda m: quote(m.group(), safe=""), url)


def _where_results_go(source: str, number: int) -> str:
    """Where a run's result will appear: here, in a Muster room; in the incident's war room,
    from Slack or Mattermost (their incident channels are not mirrored yet)."""
    if source in (Source.SLACK, Source.MATTERMOST):
        return f"The result will be posted in the war room of #{number} in Muster."
    return "The result will be posted here."
