"""The timeline: appending entries to an incident's timeline and announcing each after commit.

`record` is the one way an entry is written; inside `batched_timeline()` entries recorded with
`batch=True` go in one INSERT. Once the transaction commits, every new entry is announced once
through `incident_changed` (entries written together are announced as one `Together`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core import json_rows
from incidents.models import Incident, TimelineEntry, source_label
from incidents.signals import Together, incident_changed

log = logging.getLogger(__name__)


def record(
    incident: Incident,
    kind: str,
    *,
    message: str,
    source: str,
    by: User | None = None,
    actor_name: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    batch: bool = False,
) -> TimelineEntry:
    """Append an entry to `incident`'s timeline and announce it after commit.

    With `batch`, inside `batched_timeline()`, the entry is written with the others of its
    batch in one INSERT: at the batch's end, or before any entry recorded without `batch`, so
    entries keep the order they were recorded in. Until then it has no primary key.
    """
    entry = TimelineEntry(
        incident=incident,
        at=at or timezone.now(),
        kind=kind,
        actor=by,
        actor_name=_actor(by, actor_name),
        source=source,
        message=message,
        data=data or {},
    )
    pending = getattr(_batch, "entries", None)
    if batch and pending is not None:
        pending.append(entry)
        return entry
    write_batched_entries()
    json_rows.insert([entry])  # as save(), without compiling an INSERT each time
    transaction.on_commit(lambda: _announce(entry))
    return entry


_batch = threading.local()  # per thread: each has its own connection and transaction


@contextmanager
def batched_timeline() -> Iterator[None]:
    """Let `record(..., batch=True)` entries be written together, at the latest on exit.

    Use it inside the transaction the entries belong to: if the block raises, its unwritten
    entries are dropped with the rest of the transaction's work. An entry recorded inside a
    savepoint that then rolls back would still be written: record with `batch` only where
    nothing between the record and the batch's end can roll back alone (the ingest pipeline's
    "alert attached" lines, whose request is one savepoint-free step of its batch).
    """
    outer = getattr(_batch, "entries", None)
    _batch.entries = []
    try:
        yield
        write_batched_entries()
    finally:
        _batch.entries = outer


def write_batched_entries() -> None:
    """Write the batch's entries recorded so far (one INSERT) and announce each after commit."""
    entries = getattr(_batch, "entries", None)
    if not entries:
        return
    written = list(entries)
    entries.clear()
    json_rows.insert(written)  # one statement, cheaper than bulk_create's (core.json_rows)
    transaction.on_commit(lambda: _announce_together(written))


def _announce_together(entries: list[TimelineEntry]) -> None:
    together = Together() if len(entries) > 1 else None
    for entry in entries:
        _announce(entry, together)
    if together is not None:
        together.end()


def _announce(entry: TimelineEntry, together: Together | None = None) -> None:
    sent = incident_changed.send_robust(sender=TimelineEntry, entry=entry, together=together)
    for receiver, result in sent:
        if isinstance(result, Exception):
            log.error(
                "incident_changed receiver %r failed on entry %s",
                receiver,
                entry.pk,
                exc_info=result,
            )


def by_phrase(by: User | None, actor_name: str, source: str) -> str:
    """Return who acted and how, as a verb's entry says it: "alice via SMS"."""
    return f"{_actor(by, actor_name)} via {source_label(source)}"


def _actor(by: User | None, actor_name: str) -> str:
    return by.get_username() if by is not None else (actor_name or "Muster")
