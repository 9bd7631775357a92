"""What a production process checks before it starts: that paging reaches people.

Outside the embedded mode (DATABASE_URL set), a web or worker process whose SMS, calls or
email would only reach the console outbox refuses to start: a page "sent" there is printed,
not received, while every health check stays green. MUSTER_ALLOW_CONSOLE_DELIVERY=1 says it
is meant (staging, CI); then /metrics shows `muster_console_delivery 1`, the web UI a
banner, and readiness names the channels.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from oncall.channels.registry import console_fallbacks

HOW_TO = {
    "sms": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER",
    "voice": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER",
    "email": "EMAIL_URL (or EMAIL_HOST and its friends, or EMAIL_BACKEND)",
}


def check_delivery() -> None:
    """Raise ImproperlyConfigured if production would page nobody through some channel."""
    if not settings.DATABASE_URL or settings.ALLOW_CONSOLE_DELIVERY:
        return
    missing = console_fallbacks()
    if not missing:
        return
    needs = sorted({HOW_TO[kind] for kind in missing})
    raise ImproperlyConfigured(
        f"{', '.join(missing)} would only reach the console outbox: pages would be recorded "
        f"as sent and reach nobody. Set {'; and '.join(needs)} (docs/deploying/index.md, 'Paging "
        "providers'), or MUSTER_ALLOW_CONSOLE_DELIVERY=1 if the console is what you mean."
    )


def check_worker(**kwargs) -> None:
    """Celery's worker_init: refuse to start a worker that would page nobody (an exception
    would only be logged by Celery's signal dispatch; SystemExit stops the worker)."""
    try:
        check_delivery()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"celery worker: refusing to start: {exc}") from None
