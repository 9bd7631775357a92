"""What a production process checks before it starts: a real secret key, and that paging
reaches people.

Outside the embedded mode (DATABASE_URL set), web, websocket and worker processes refuse to start
with a placeholder or short SECRET_KEY: it signs sessions and CSRF cookies, keys the verification
codes' HMAC and the audit log's masks, and the example files' `CHANGE-ME` is public.

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


# Django's own rule for a key (check --deploy, security.W009), and the example files' placeholder.
KEY_MIN_LENGTH = 50
KEY_MIN_UNIQUE_CHARACTERS = 5
KEY_PLACEHOLDERS = ("change-me", "changeme", "change_me", "django-insecure-")


def secret_key_problem(key: str) -> str | None:
    """Return what is wrong with `key` as a production secret key, or None."""
    lowered = key.lower()
    if any(placeholder in lowered for placeholder in KEY_PLACEHOLDERS):
        return "SECRET_KEY is a placeholder"
    if len(key) < KEY_MIN_LENGTH:
        return f"SECRET_KEY is {len(key)} characters long (at least {KEY_MIN_LENGTH})"
    if len(set(key)) < KEY_MIN_UNIQUE_CHARACTERS:
        return f"SECRET_KEY has fewer than {KEY_MIN_UNIQUE_CHARACTERS} different characters"
    return None


def check_secret_key() -> None:
    """Raise ImproperlyConfigured if production runs on a placeholder or guessable key."""
    if not settings.DATABASE_URL:
        return  # embedded: the key was generated into the data directory
    problem = secret_key_problem(settings.SECRET_KEY)
    if problem:
        raise ImproperlyConfigured(
            f"{problem}: it signs sessions and keys verification codes. Set a random one, "
            "as in python3 -c 'import secrets; print(secrets.token_urlsafe(50))' "
            "(docs/deploying/index.md, 'Environment')."
        )


def check_production() -> None:
    """Every start-up check: the secret key, then the paging providers."""
    check_secret_key()
    check_delivery()


def check_worker(**kwargs) -> None:
    """Celery's worker_init: refuse to start a worker with a placeholder key or that would page
    nobody (an exception would only be logged by Celery's signal dispatch; SystemExit stops
    the worker)."""
    try:
        check_production()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"celery worker: refusing to start: {exc}") from None
