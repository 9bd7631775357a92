"""How war rooms follow incidents: a room opens with the incident and the bot tells its story.

`incident_changed` announces every timeline entry once, after commit. For each, the bot posts
one concise Markdown line to the incident's room (opening it if need be), invites paged people,
and tells connected clients when the incident's state changed. Composition is in `warroom.bot`;
this module gathers what it needs in a few queries per entry.

No flood: alert lines are gathered, or held back, in warroom.alert_posts. Nothing here may fail
the verb that wrote the entry: errors are logged, not raised.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import current_task, signature
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, QuerySet
from django.dispatch import receiver

from alerts.models import Alert
from core import pools
from core.compiled import Lookup
from incidents.models import EntryKind, Incident, Service, Source, TimelineEntry, source_label
from incidents.signals import incident_changed
from oncall.models import Page
from oncall.schedules import first_on_call_names
from runbooks.graphs import template_links, templates_for
from runbooks.services import distinct_label_sets, matching_runbook
from warroom import alert_posts, bot
from warroom.models import Message, MessageKind, Room
from warroom.services import broadcast, incident_room, invite

log = logging.getLogger(__name__)

# Page statuses after which the paged person is surely meant to be in the room.
INVITING_STATUSES = {"sent", "delivered", "answered", "completed"}
FOLLOW_TASK = "warroom.follow_entry"  # warroom.tasks.follow_entry_later, on the "bot" queue
FOLLOWS_TASK = "warroom.follow_entries"  # the same for several entries: one task for a batch
# Read with an incident, by every entry: its room. Its service (the opening post) and assignee
# (a change of state) are read when needed: joined in every time, they cost more than the
# statement they save (bench/profile_incident.py, py-spy).
INCIDENT_RELATED = ("room",)


def in_worker() -> bool:
    """Whether this thread is a worker's: a Celery task's, or a pool's (a page's delivery)."""
    return bool(current_task) or pools.inside()


@receiver(incident_changed, dispatch_uid="warroom.tell_the_room")
def tell_the_room(sender, entry: TimelineEntry, together=None, **kwargs) -> None:
    if entry.kind in (EntryKind.COMMAND, EntryKind.CHAT_MESSAGE):
        return  # the command and the bot's reply, or what was said, are in the room already
    if entry.source == Source.ALERT or (entry.kind == EntryKind.PAGE and in_worker()):
        # Written by ingest processing (one batch at a time) or by a page's delivery in a
        # worker: the bot's work (an opening post is a dozen queries) goes to a task on the
        # "bot" queue, so the next batch of alerts and the next page are not kept waiting
        # behind it. A page entry written in a request (an ack cancelling pages) is told at
        # once: a person is waiting, and a web process's first publish to the broker costs
        # ~80 ms (its connection).
        if entry.kind == EntryKind.OPENED:
            # The opening post shows the alerts committed with the incident: their lines need
            # no task of their own (_ensure_opening takes this mark down before it reads them).
            alert_posts.task_on_its_way(entry, EntryKind.ALERT_ATTACHED)
        if entry.kind in alert_posts.BURST_KINDS:
            # Entries committed together: the first of its kind and incident gets (or finds)
            # the task, which sees the others too (committed before it looks).
            if together is not None and not together.first(
                ("follow", entry.kind, entry.incident_id)
            ):
                return
            if alert_posts.task_on_its_way(entry):
                return
            delay = alert_posts.gather_seconds(entry)
            if together is not None:
                # One task for the batch's incidents (of each delay), handed over once all are
                # announced: a storm's batch touching 64 incidents was 64 tasks (bench/drain.py).
                together.gather(
                    (FOLLOWS_TASK, delay), entry.pk, functools.partial(_follow_later, delay=delay)
                )
                return
            _follow_later([entry.pk], delay=delay)
            return
        _follow_later([entry.pk])
        return
    tell(entry)


def _follow_later(entry_ids: list[int], *, delay: float | None = None) -> None:
    """Hand entries to a worker, to run after `delay` seconds (else at once); tell them here
    if the broker cannot take them."""
    try:
        # By name: warroom.tasks calls into this module (the task is `tell`). Alert lines wait
        # a moment, so that the batches of a storm committed meanwhile ride on this task (they
        # find its mark) instead of each costing one.
        if len(entry_ids) == 1:
            signature(FOLLOW_TASK, args=(entry_ids[0],)).apply_async(countdown=delay)
        else:
            signature(FOLLOWS_TASK, args=(entry_ids,)).apply_async(countdown=delay)
        return
    except Exception:
        log.warning("could not hand entries %s to a worker; posting now", entry_ids[:10])
    tell_entries(entry_ids)


def _with_incident(entries: QuerySet[TimelineEntry]) -> QuerySet[TimelineEntry]:
    return entries.select_related(*(f"incident__{name}" for name in INCIDENT_RELATED))


# Most tasks follow one entry: its read compiled once (core.compiled).
_ONE_ENTRY = Lookup(lambda pk: _with_incident(TimelineEntry.objects.filter(pk=pk)), takes=(int,))


def tell_entries(entry_ids: list[int]) -> None:
    """Follow these entries in order, read with their incidents in one statement; entries of
    one incident share its instance, so a room one of them opens is the others' too."""
    incidents: dict[int, Incident] = {}
    if len(entry_ids) == 1:
        entries = _ONE_ENTRY.instances(entry_ids[0])
    else:
        batch = TimelineEntry.objects.filter(pk__in=entry_ids).order_by("pk")
        entries = list(_with_incident(batch))
    for entry in entries:
        incident = incidents.setdefault(entry.incident_id, entry.incident)
        tell(entry, incident)


def tell(entry: TimelineEntry, incident: Incident | None = None) -> None:
    """Follow one entry; never raise (the verb that wrote it has committed). `incident`, the
    entry's, if the caller read it after the commit with INCIDENT_RELATED."""
    try:
        with transaction.atomic():
            follow_entry(entry, incident)
    except Exception:
        # send_robust would log it too; saying which entry helps more.
        log.exception("the war-room bot failed on timeline entry %s (%s)", entry.pk, entry.kind)


def follow_entry(entry: TimelineEntry, incident: Incident | None = None) -> None:
    """Post what `entry` says to its incident's room, invite whom it paged, update clients.

    `incident`: the entry's, read since the entry's commit with INCIDENT_RELATED (a task reads
    both at once); without it, it is read here.
    """
    if entry.kind in alert_posts.BURST_KINDS:
        # Before anything else: entries committed from now on must get a task of their own,
        # since the batch looked at below may not see them (_task_on_its_way).
        cache.delete(alert_posts.cache_key("followed", entry.kind, entry.incident_id))
    if incident is None:
        incident = (
            Incident.objects.select_related(*INCIDENT_RELATED).filter(pk=entry.incident_id).first()
        )
        if incident is None:
            return
    room = _room_of(incident)
    if entry.kind in bot.STATE_KINDS:
        # First of all: the state change is committed (the verb's transaction), and clients
        # waiting on it (the ack round trip) need not wait for the bot's posts.
        broadcast(
            room.pk,
            bot.incident_event(
                number=incident.number,
                status=incident.status,
                severity=incident.severity,
                title=incident.title,
                assignee=incident.assignee.get_username() if incident.assignee_id else None,
            ),
        )
    # The opening post comes first, whichever entry gets here first (a page may be announced by
    # a worker before the receiver of OPENED is done); OPENED itself has no other post.
    _ensure_opening(incident, room, entry if entry.kind == EntryKind.OPENED else None)
    if entry.kind in alert_posts.BURST_KINDS:
        alert_posts.post_alerts(entry, incident, room)
    elif entry.kind == EntryKind.PAGE:
        _post_page(entry, incident, room)
    else:
        line = bot.entry_line(entry.kind, entry.message, entry.actor_name, entry.data)
        if line is not None:
            alert_posts.post_about(room, entry, line)


def _room_of(incident: Incident) -> Room:
    try:
        return incident.room
    except Room.DoesNotExist:  # read with the incident, so none was there then
        return incident_room(incident, absent=True)


# --- the opening post ------------------------------------------------------------------------


def _ensure_opening(incident: Incident, room: Room, opened: TimelineEntry | None) -> None:
    """Post the room's opening post unless it is there: once, whichever process asks first.
    `opened`: the incident's OPENED entry, if the caller has it."""
    known = f"warroom:opened:{room.pk}"
    if cache.get(known):
        return
    # The room's row lock makes concurrent receivers of one incident take turns here.
    marks = alert_posts.posted_marks(room)
    if not _OPENING_POSTED.exists(room.pk):
        if opened is None:
            opened = incident.timeline.filter(kind=EntryKind.OPENED).order_by("pk").first()
        if opened is None:
            return
        # Alert entries committed from now on get a task of their own (see tell_the_room).
        cache.delete(alert_posts.cache_key("followed", EntryKind.ALERT_ATTACHED, incident.pk))
        _post_opening(opened, incident, room, marks)
    transaction.on_commit(lambda: cache.set(known, True, alert_posts.HELD_TTL))


def _post_opening(
    entry: TimelineEntry, incident: Incident, room: Room, marks: dict[str, int]
) -> None:
    [(count, last)] = _ATTACHED.rows(incident.pk) or [(0, None)]
    alerts = _FIRST_ALERTS.instances(incident.pk)
    first = alerts[0] if alerts else None
    others = max(count - 1, len(alerts) - 1, 0)
    incident.service = _SERVICE.get(incident.service_id)  # read once, for the post and on call
    opening = bot.Opening(
        number=incident.number,
        title=incident.title,
        service=incident.service.name,
        severity=incident.severity,
        urgency=incident.urgency,
        status=incident.status,
        opened_by=f"{entry.actor_name} via {source_label(entry.source)}",
        alert=_alert_view(incident, first) if first is not None else None,
        other_alerts=[a.summary for a in alerts[1:]],
        other_alert_count=others,
        runbook=_matching_runbook(
            incident,
            # Every alert is in hand unless there are more than the post lists.
            distinct_label_sets(a.labels for a in alerts)
            if len(alerts) <= bot.LISTED_ALERTS
            else None,
        ),
        on_call=_on_call(incident),
    )
    alert_posts.post_about(
        room,
        entry,
        bot.opening_message(opening),
        alert=first.pk if first is not None else None,
    )
    if last:
        # The alerts this post shows are not posted again as they are announced.
        alert_posts.cover(room, marks, EntryKind.ALERT_ATTACHED, last)


# What every new incident's opening post reads, compiled once (core.compiled): whether the
# room has it already; how many alerts are attached, and the last; the incident's service; the
# alerts it lists (and one more, to tell whether there are others).
_OPENING_POSTED = Lookup(
    lambda room: Message.objects.filter(
        room_id=room, kind=MessageKind.BOT, data__kind=EntryKind.OPENED
    ).values_list("pk")[:1],
    takes=(int,),
)
_ATTACHED = Lookup(
    lambda incident: (
        TimelineEntry.objects.filter(incident_id=incident, kind=EntryKind.ALERT_ATTACHED)
        .values("incident_id")
        .annotate(count=Count("pk"), last=Max("pk"))
        .values_list("count", "last")
    ),
    takes=(int,),
)
_SERVICE = Lookup(lambda pk: Service.objects.filter(pk=pk), takes=(int,))
_FIRST_ALERTS = Lookup(
    lambda incident: (
        Alert.objects.filter(incident_id=incident)
        .select_related("integration")
        .order_by("first_seen", "id")[: bot.LISTED_ALERTS + 1]
    ),
    takes=(int,),
)


def _alert_view(incident: Incident, alert: Alert) -> bot.AlertView:
    labels = alert.labels if isinstance(alert.labels, dict) else {}
    links = alert.links if isinstance(alert.links, list) else []
    return bot.AlertView(
        summary=alert.summary,
        severity=alert.severity,
        source=alert.integration.name,
        labels=labels,
        annotations=alert.annotations if isinstance(alert.annotations, dict) else {},
        links=[*_graph_links(incident, labels), *links],
    )


def _on_call(incident: Incident) -> list[str] | None:
    """Return who the service's escalation policy pages first (None if that fails: the room
    opens all the same)."""
    try:
        return first_on_call_names(incident.service)
    except Exception:
        log.warning("could not tell who is on call for %s", incident.service, exc_info=True)
        return None


def _matching_runbook(
    incident: Incident, labels: list[dict[str, str]] | None
) -> bot.RunbookView | None:
    """Return the runbook matched to the incident, if any (a room opens even if matching
    fails). `labels`: the label sets of all its alerts, if read already."""
    try:
        runbook = matching_runbook(incident, labels)
    except Exception:
        log.warning("runbook matching failed for incident %s", incident.number, exc_info=True)
        return None
    if runbook is None:
        return None
    return bot.RunbookView(
        title=runbook.title,
        url=f"{settings.PUBLIC_URL}/api/v1/runbooks/{runbook.pk}/",
        body=runbook.body,
    )


def _graph_links(incident: Incident, labels: dict[str, Any]) -> list[dict[str, str]]:
    """Return the service's graph templates filled from the alert's labels, as stored links."""
    try:
        found = template_links(templates_for(incident), {str(k): str(v) for k, v in labels.items()})
    except Exception:
        log.warning("graph templates failed for incident %s", incident.number, exc_info=True)
        return []
    links = []
    for graph in found:
        links.append({"kind": "graph", "url": graph.url, "text": graph.name})
        if graph.image_url:
            links.append({"kind": "image", "url": graph.image_url, "text": graph.name})
    return links


# --- pages and invitations -------------------------------------------------------------------


def _post_page(entry: TimelineEntry, incident: Incident, room: Room) -> None:
    data = entry.data if isinstance(entry.data, dict) else {}
    step = None
    people: list[int] = []  # whom to invite, by id
    if "page" in data:  # one page's fate: sent, delivered, failed, retried, held, …
        level = _level_of(data) if data.get("status") == "sent" else None
        step = level - 1 if level is not None else None  # say which level it was
        if data.get("status") in INVITING_STATUSES and data.get("person"):
            people = [data["person"]]
    elif "escalation" in data:  # a step fired: everyone it paged
        step_cycle = (data.get("step", 0), data.get("cycle", 0))
        found = _RUN_PAGES.rows(data["escalation"])
        people = sorted({person for person, *at in found if tuple(at) == step_cycle})
    elif data.get("person") and data.get("pages"):  # someone paged by hand (and reachable)
        people = [data["person"]]
    alert_posts.post_about(room, entry, bot.page_line(entry.message, data, step=step))
    if people:
        # Each invitation in a transaction of its own, after this one: two bot tasks inviting
        # the same people to one room while holding their posts' locks deadlocked (seen in
        # bench/paging.py). Alone, an insert can only wait for another's commit, not cycle.
        transaction.on_commit(lambda: _invite_all(room, people), robust=True)


# The pages of a run, by person and step (a step's entry invites everyone it paged), compiled
# once. Step and cycle are matched here: small columns, which a compiled lookup cannot take.
_RUN_PAGES = Lookup(
    lambda run: Page.objects.filter(escalation_id=run).values_list("person_id", "step", "cycle"),
    takes=(int,),
)


def _level_of(data: dict[str, Any]) -> int | None:
    """The escalation level a sent page's entry names (None for a page sent by hand). Entries
    written before the level was in their data name only the page."""
    if "level" in data:
        return data["level"]
    page = Page.objects.filter(pk=data["page"]).values("step", "escalation_id").first()
    if page is None or page["escalation_id"] is None:
        return None
    return page["step"] + 1


def _invite_all(room: Room, people: list[int]) -> None:
    for person in people:
        try:
            invite(room, person, "paged")
        except IntegrityError:  # gone since they were paged: the others are still invited
            log.warning("could not invite person %s to room %s", person, room.pk)
