"""Alert lines in a room: one by one, together, or held back, so that a storm cannot flood it.

Alert entries that arrive together (one ingest batch, or the batches of the
BURST_GATHER_SECONDS after the first, while its task waits) become one post; while alerts keep
coming (a post of several within STORM_SECONDS), an incident's next post gathers
STORM_GATHER_SECONDS; beyond BURST_LIMIT single alerts in BURST_WINDOW seconds for one incident,
further ones are held, counted in the cache (shared by every process), and posted as "+N more
alerts" with the room's next post (`post_about`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max

from core import json_rows
from core.compiled import Lookup
from incidents.models import EntryKind, Incident, TimelineEntry
from warroom import bot
from warroom.models import Message, MessageKind, Room
from warroom.services import post

log = logging.getLogger(__name__)

BURST_KINDS = (EntryKind.ALERT_ATTACHED, EntryKind.ALERT_RESOLVED, EntryKind.ALERT_REPEATED)
BURST_LIMIT = 5  # single alert entries posted one by one per window and incident
BURST_WINDOW = 10  # seconds
# The bot's task for alert lines starts this long after the entry: one task, and one post, for
# everything a storm attaches to an incident meanwhile. `python bench/drain.py`, 2026-12-07:
# without the wait, the bot's tasks took more of the worker's CPU than processing the alerts.
# 3 s drained a little faster (148-161 against 122-159 alerts/s) but its bigger tasks delayed a
# new SEV1's page behind a storm (`bench/behind_storm.py`, alternating runs: p50 1.42 and 1.56 s,
# 6 and 5 of 10 within 1.5 s, against 1.17 and 1.04 s, 8 and 10 of 10).
BURST_GATHER_SECONDS = 1.0
# While a storm goes on (a post of several alerts in the last STORM_SECONDS), an incident's next
# post gathers longer: a room (and its Slack channel, which takes about a message a second)
# reads one line every few seconds, not one a second. `bench/ingest.py`, single alerts at half
# the accept, 32 incidents (py-spy --gil, 2026-12-07): these posts were a fifth of the worker's
# CPU, one an incident a second.
STORM_GATHER_SECONDS = 5.0
STORM_SECONDS = 10
HELD_TTL = 24 * 3600


def task_on_its_way(entry: TimelineEntry, kind: str | None = None) -> bool:
    """Return whether a task for the incident's alert entries of this kind (or `kind`) is on
    its way, and mark one so if none was.

    A batch of 100 alerts writes 100 entries; one task posts them all (`post_alerts` takes
    every committed entry of the kind past the room's mark). The task clears the mark before it
    looks, so an entry committed after that look finds no mark and gets a task of its own.
    """
    try:
        mark = cache_key("followed", kind or entry.kind, entry.incident_id)
        return not cache.add(mark, entry.pk, 30)
    except Exception:  # without the cache, one task per entry, as before
        log.warning("could not coalesce the bot's work for entry %s", entry.pk, exc_info=True)
        return False


def gather_seconds(entry: TimelineEntry) -> float:
    """How long the task for this alert entry waits for more: longer in a storm."""
    try:
        storming = cache.get(cache_key("storming", entry.kind, entry.incident_id))
    except Exception:  # the cache is a hint here
        storming = None
    return STORM_GATHER_SECONDS if storming else BURST_GATHER_SECONDS


def post_about(room: Room, entry: TimelineEntry, body: str, **data: Any) -> Message:
    """Post the bot's `body` about `entry`, after any alerts held back for this room."""
    post_held(room, entry.incident_id)
    return post(
        room,
        body,
        kind=MessageKind.BOT,
        data={"entry": entry.pk, "kind": entry.kind, **data},
    )


def cache_key(name: str, kind: str, incident_id: int) -> str:
    return f"warroom:{name}:{kind}:{incident_id}"


def posted_marks(room: Room) -> dict[str, int]:
    """Lock the room's row and return the last alert entry of each kind posted in it.

    The lock makes the bot's tasks of one incident take turns: two tasks looking at once would
    both post the entries past the mark (or move it back). FOR NO KEY UPDATE: a message posted
    meanwhile (its foreign key to the room) does not wait for it.
    """
    return _MARKS.get(room.pk).alerts_posted


# Compiled once (core.compiled): every post of the bot's that may cover alerts reads it.
_MARKS = Lookup(
    lambda pk: Room.objects.select_for_update(no_key=True).filter(pk=pk).only("alerts_posted"),
    takes=(int,),
)


def cover(room: Room, marks: dict[str, int], kind: str, last_pk: int) -> None:
    """Note that the room's entries of `kind` up to `last_pk` are posted. `marks`: as read
    under the room's lock (posted_marks), in this transaction."""
    if marks.get(kind, 0) < last_pk:
        marks[kind] = last_pk
        room.alerts_posted = marks
        json_rows.update([room], ["alerts_posted"])  # one statement, compiled once


def _add(key: str, delta: int, timeout: int) -> int:
    """Add `delta` to a shared counter and return its new value."""
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key, delta)
    except ValueError:  # expired between the two calls
        cache.set(key, delta, timeout)
        return delta


def post_alerts(entry: TimelineEntry, incident: Incident, room: Room) -> None:
    """Post the incident's alert entries of `entry`'s kind that no post has shown yet: one line
    for one (held back past BURST_LIMIT a window), one post for several."""
    kind = entry.kind
    marks = posted_marks(room)
    # Every committed entry past the mark, not only from `entry` on: entries that rode on this
    # task (they found its mark, task_on_its_way) may be older than `entry` when two
    # transactions wrote them (a merged incident's alerts in two lanes).
    batch = incident.timeline.filter(kind=kind, pk__gt=marks.get(kind, 0))
    seen = batch.aggregate(count=Count("pk"), last=Max("pk"))
    size, last = seen["count"], seen["last"]
    if not size:
        return  # posted with the opening or with another batch
    cover(room, marks, kind, last)
    listed = list(batch.filter(pk__lte=last).order_by("pk")[: bot.LISTED_ALERTS])
    first = listed[0]
    window = int(first.at.timestamp() // BURST_WINDOW)
    posted = _add(cache_key(f"burst:{window}", kind, incident.pk), size, BURST_WINDOW * 3)
    if size == 1:
        summary = bot.alert_summary(kind, first.message, first.actor_name, first.data)
        if posted > BURST_LIMIT:
            _add(cache_key("held", kind, incident.pk), 1, HELD_TTL)
            cache.set(cache_key("held-last", kind, incident.pk), (first.pk, summary), HELD_TTL)
            return
        post_about(room, first, bot.alerts_line(kind, summary, first.actor_name, first.data))
        return
    cache.set(cache_key("storming", kind, incident.pk), True, STORM_SECONDS)
    summaries = [bot.alert_summary(kind, e.message, e.actor_name, e.data) for e in listed]
    post_about(room, first, bot.alerts_burst(kind, size, summaries), count=size, last=last)


def post_held(room: Room, incident_id: int) -> None:
    """Post the alerts held back for this incident, once, whichever process gets there."""
    keys = {kind: cache_key("held", kind, incident_id) for kind in BURST_KINDS}
    counts = cache.get_many(list(keys.values()))
    for kind, key in keys.items():
        count = counts.get(key) or 0
        if count <= 0:
            continue
        try:
            left = cache.decr(key, count)
        except ValueError:
            continue
        if left < 0:  # another process posted them first
            cache.incr(key, count)
            continue
        entry_pk, latest = cache.get(cache_key("held-last", kind, incident_id)) or (None, "")
        post(
            room,
            bot.held_alerts(kind, count, latest),
            kind=MessageKind.BOT,
            data={"entry": entry_pk, "kind": kind, "count": count},
        )
