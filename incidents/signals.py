"""The one signal incidents sends: `incident_changed(entry=TimelineEntry, together=...)`, after
commit only, once per entry.

`together` is a `Together` when the entry was committed with others written as one batch (an
ingest batch's "alert attached" and "alert repeated" lines), else None. A receiver that follows
such entries by looking at everything committed can act on the first of a kind and skip the rest.
"""

import logging
from collections.abc import Callable, Hashable

from django.dispatch import Signal

log = logging.getLogger(__name__)
# Receivers cached per sender (Django clears the cache on connect and disconnect): an ingest
# batch announces an entry per alert, and looking the receivers up again for each was a tenth
# of announcing it.
incident_changed = Signal(use_caching=True)


class Together:
    """Entries committed together, announced one by one; remembers what receivers asked."""

    def __init__(self) -> None:
        self._asked: set[Hashable] = set()
        self._gathered: dict[Hashable, tuple[list, Callable[[list], None]]] = {}

    def first(self, key: Hashable) -> bool:
        """Return True the first time `key` is asked about for these entries, then False."""
        if key in self._asked:
            return False
        self._asked.add(key)
        return True

    def gather(self, key: Hashable, item: object, then: Callable[[list], None]) -> None:
        """Add `item` to the list under `key`; once every entry has been announced, `then`
        runs once with that list (one task for a whole batch, not one per entry)."""
        self._gathered.setdefault(key, ([], then))[0].append(item)

    def end(self) -> None:
        """Run what `gather` asked for; never raise (the entries are committed)."""
        for key, (items, then) in self._gathered.items():
            try:
                then(items)
            except Exception:
                log.exception("could not finish %r for %d entries", key, len(items))
        self._gathered.clear()
