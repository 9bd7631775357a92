"""What providers tell us about a page after it left: delivery statuses (Twilio's MessageStatus
and CallStatus callbacks) and a call answered with a key, and which incidents a page's message
named (a bundle names several)."""

from __future__ import annotations

from django.utils import timezone

from incidents.models import Incident
from oncall import metrics
from oncall.channels.base import DeliveryError
from oncall.delivery import delivery_failed, label_of, note_page
from oncall.models import Page, PageStatus

_SMS_FINAL = {
    "delivered": PageStatus.DELIVERED,
    "undelivered": PageStatus.FAILED,
    "failed": PageStatus.FAILED,
}


_CALL_FAILED = {"no-answer", "busy", "failed", "canceled"}


def record_provider_status(
    page_id: int,
    *,
    kind: str,
    status: str,
    error_code: str = "",
    answered: bool | None = None,
    sid: str = "",
) -> None:
    """Apply a delivery-status callback (Twilio's MessageStatus or CallStatus) to a page.

    Callbacks are not deduplicated: they only ever move a page forward, from sent (or sending,
    or unknown) to delivered, answered or failed, so a replayed or late one changes nothing.
    One about another send of the page (`sid`, an earlier attempt's) is ignored too.
    """
    page = Page.objects.select_related("person").filter(pk=page_id).first()
    if page is None:
        return
    if sid and page.provider_id and sid != page.provider_id:
        return  # an earlier attempt's callback, or a replay of one
    status = status.lower()
    Page.objects.filter(pk=page_id).update(provider_status=status[:32])
    if page.status not in (PageStatus.SENT, PageStatus.SENDING, PageStatus.UNKNOWN):
        return  # already final (answered, delivered, failed) or not ours to change
    who = page.person.get_username()
    now = timezone.now()
    if kind == "sms" and status in _SMS_FINAL:
        final = _SMS_FINAL[status]
        if final == PageStatus.DELIVERED:
            Page.objects.filter(pk=page_id).update(status=final, finished_at=now)
            Page.objects.filter(carried_by=page, status=PageStatus.SENT).update(
                status=final, finished_at=now
            )
            metrics.PAGES.labels(page.channel, "delivered").inc()
            note_page(page, f"SMS to {who} delivered", "delivered")
            return
        _provider_failed(page, f"SMS {status}" + (f" (error {error_code})" if error_code else ""))
        return
    if kind == "voice":
        if status in _CALL_FAILED:
            _provider_failed(page, f"call {status}")
        elif status == "completed" and not answered:
            # Voicemail or silence: only a keypress counts as answered.
            _provider_failed(page, "call not answered with a key")
        elif status == "completed":
            note_page(page, f"{label_of(page).capitalize()} to {who} completed", "completed")


def _provider_failed(page: Page, reason: str) -> None:
    """A send the provider accepted failed later: retry with backoff, then fall back."""
    page.refresh_from_db()
    delivery_failed(page, DeliveryError(reason, permanent=False))


def record_keypress(page_id: int) -> None:
    """Mark a call answered: a key was pressed, so a person heard it (and what it carried)."""
    page = Page.objects.select_related("person").filter(pk=page_id).first()
    if page is None or page.status == PageStatus.ANSWERED:
        return
    now = timezone.now()
    Page.objects.filter(pk=page_id).update(status=PageStatus.ANSWERED, finished_at=now)
    Page.objects.filter(carried_by=page).update(status=PageStatus.ANSWERED, finished_at=now)
    metrics.PAGES.labels(page.channel, "answered").inc()
    note_page(page, f"{page.person.get_username()} answered the call", "answered")


def carried_incidents(page: Page) -> list[Incident]:
    """Return the incidents a page's message named: its own, and those of what it carried."""
    ids = {page.incident_id, *page.carried.values_list("incident_id", flat=True)}
    return list(Incident.objects.filter(pk__in=ids).select_related("service").order_by("number"))
