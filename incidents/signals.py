"""The one signal incidents sends: `incident_changed(entry=TimelineEntry, together=...)`, after
commit only, once per entry.

`together` is a `Together` when the entry was committed with others written as one batch (an
ingest batch's "alert attached" and "alert repeated" lines), else None. A receiver that follows
such entries by looking at everything committed can act on the first of a kind and skip the rest.
"""

from collections.abc import Hashable

from django.dispatch import Signal

incident_changed = Signal()


class Together:
    """Entries committed together, announced one by one; remembers what receivers asked."""

    def __init__(self) -> None:
        self._asked: set[Hashable] = set()

    def first(self, key: Hashable) -> bool:
        """Return True the first time `key` is asked about for these entries, then False."""
        if key in self._asked:
            return False
        self._asked.add(key)
        return True
