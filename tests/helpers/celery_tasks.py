"""Celery seen from a test: the tasks code sent to the broker, by name, with their arguments.

No worker runs in the tests: what is sent waits in the broker. A test asserts what was sent,
and runs a task itself, as a worker would, when it needs the task's effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery.signals import before_task_publish


@dataclass(frozen=True)
class SentTask:
    name: str
    args: tuple[Any, ...]
    eta: str | None = None  # ISO 8601, for a task sent with a countdown or an ETA


@contextmanager
def sent_tasks() -> Iterator[list[SentTask]]:
    """Yield a list that fills with every task sent while the block runs, in order."""
    sent: list[SentTask] = []

    def note(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        args = body[0] if isinstance(body, tuple | list) else ()  # protocol 2: (args, kwargs, …)
        eta = (kwargs.get("headers") or {}).get("eta")
        sent.append(SentTask(str(sender), tuple(args), eta))

    before_task_publish.connect(note, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(note)


def named(sent: list[SentTask], name: str) -> list[SentTask]:
    """Return the tasks of `sent` called `name`."""
    return [task for task in sent if task.name == name]
