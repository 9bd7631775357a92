"""Celery tasks of runbooks: run an action's HTTP call, and keep unfinished runs honest."""

from __future__ import annotations

from celery import shared_task

from runbooks import actions


@shared_task(name="runbooks.run_action", ignore_result=True)
def run_action(run_id: int) -> str | None:
    """Make run `run_id`'s HTTP call and record the result; a second delivery does nothing."""
    run = actions.perform(run_id)
    return run.status if run is not None else None


@shared_task(name="runbooks.sweep_runs", ignore_result=True)
def sweep_runs() -> int:
    """Enqueue runs never picked up again; close runs whose worker died (see actions.sweep_runs)."""
    return actions.sweep_runs()
