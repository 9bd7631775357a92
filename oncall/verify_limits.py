"""Limits on verification codes that hold per person and per address, not per contact method
(review L5): deleting a method and adding it again, or changing its address back, resets
neither. Kept in PostgreSQL (`VerificationBudget`), so a cache flush resets nothing either.

- A code goes out at most once per RESEND_AFTER to one address, whoever asks, and at most once
  per RESEND_AFTER for one person, whatever the address: nobody can make Muster text a list of
  (premium) numbers at its expense, nor flood one.
- A person may type at most MAX_FAILURES wrong codes for one address per FAILURE_WINDOW, over
  every code sent to it (each code also allows oncall.people.MAX_ATTEMPTS tries).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from math import ceil

from django.db.models import Max, Q

from oncall.models import ContactMethod, VerificationBudget

RESEND_AFTER = timedelta(seconds=30)
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(hours=1)
# A budget untouched this long says nothing any more (forget_old_budgets).
KEEP = timedelta(days=1)


def _budget(method: ContactMethod) -> VerificationBudget:
    """Return the locked budget of the method's person and address (call inside a transaction)."""
    budget, _ = VerificationBudget.objects.get_or_create(
        user_id=method.user_id, address=method.address
    )
    return VerificationBudget.objects.select_for_update().get(pk=budget.pk)


def seconds_until_resend(method: ContactMethod, now: datetime) -> int:
    """Return how long until a code may go to the method's address (0: now)."""
    last = VerificationBudget.objects.filter(
        Q(user_id=method.user_id) | Q(address=method.address)
    ).aggregate(last=Max("last_sent_at"))["last"]
    if last is None:
        return 0
    return max(0, ceil((last + RESEND_AFTER - now).total_seconds()))


def note_sent(method: ContactMethod, now: datetime) -> None:
    """Record that a code went to the method's address (inside the sender's transaction)."""
    budget = _budget(method)
    budget.last_sent_at = now
    budget.save(update_fields=["last_sent_at"])


def failures_exhausted(method: ContactMethod, now: datetime) -> str | None:
    """Return why no code may be tried for the method's address now, or None."""
    budget = VerificationBudget.objects.filter(
        user_id=method.user_id, address=method.address
    ).first()
    if budget is None or budget.failures < MAX_FAILURES or budget.failures_since is None:
        return None
    until = budget.failures_since + FAILURE_WINDOW
    if until <= now:
        return None
    minutes = ceil((until - now).total_seconds() / 60)
    return f"too many wrong codes for {method.address}; try again in {minutes} min"


def note_failure(method: ContactMethod, now: datetime) -> None:
    """Count a wrong code against the person's budget for the method's address."""
    budget = _budget(method)
    if budget.failures_since is None or budget.failures_since + FAILURE_WINDOW <= now:
        budget.failures, budget.failures_since = 0, now
    budget.failures += 1
    budget.save(update_fields=["failures", "failures_since"])


def forget_old_budgets(now: datetime) -> int:
    """Delete budgets untouched for KEEP; return how many."""
    cutoff = now - KEEP
    stale = VerificationBudget.objects.filter(
        Q(last_sent_at__lt=cutoff) | Q(last_sent_at__isnull=True),
        Q(failures_since__lt=cutoff) | Q(failures_since__isnull=True),
    )
    deleted, _ = stale.delete()
    return deleted
