"""People's contact methods, their verification, notification rules and settings (services).

A phone number is stored in E.164 (`+14155550100`), parsed with `phonenumbers`. A new contact
method is unverified until its owner types back the 6-digit code sent to it; only the code's
keyed hash is stored, it expires after 10 minutes and allows a few attempts.

Proving a number once proves it for both SMS and voice: confirming one marks the other method
for the same number verified too. When a person's first phone number is verified and they have
no notification rules yet, they get the defaults (`DEFAULT_RULES`): for high urgency an SMS at
once and a call two minutes later, for low urgency an SMS at once. The missing SMS or voice
method for that number is created, verified, to carry them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from incidents.models import Urgency
from oncall import verify_limits
from oncall.channels.registry import send_verification_code
from oncall.models import ContactKind, ContactMethod, NotificationRule, PersonSettings

PHONE_KINDS = (ContactKind.SMS, ContactKind.VOICE)
CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = verify_limits.RESEND_AFTER
# (urgency, kind, delay in minutes): what a person gets when their first phone is verified.
DEFAULT_RULES = (
    (Urgency.HIGH, ContactKind.SMS, 0),
    (Urgency.HIGH, ContactKind.VOICE, 2),
    (Urgency.LOW, ContactKind.SMS, 0),
)
MAX_RULE_DELAY_MINUTES = 24 * 60


class ContactMethodError(ValueError):
    """A contact method, code or rule that cannot be accepted; the message says why."""


class InvalidAddress(ContactMethodError):
    pass


class VerificationFailed(ContactMethodError):
    pass


# --- contact methods --------------------------------------------------------------------------


def normalize_phone(number: str, region: str | None = None) -> str:
    """Return `number` in E.164, or raise InvalidAddress.

    A number without a leading + needs `region`, the ISO country code it is local to ("US").
    """
    number = (number or "").strip()
    if not number:
        raise InvalidAddress("a phone number is needed")
    region = region.upper() if region else None
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidAddress(f"{region} is not a country code phonenumbers knows, like US or DE")
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidAddress(
                f"{number} has no country code: write it as +<country code> … or give a region"
            ) from None
        raise InvalidAddress(f"{number} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidAddress(f"{number} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(kind: str, address: str, region: str | None = None) -> str:
    """Return `address` in its stored form for `kind`, or raise InvalidAddress."""
    if kind in PHONE_KINDS:
        return normalize_phone(address, region)
    if kind == ContactKind.EMAIL:
        address = (address or "").strip()
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidAddress(f"{address!r} is not an email address") from None
        local, _, domain = address.rpartition("@")
        return f"{local}@{domain.lower()}"
    raise InvalidAddress(f"kind must be one of {', '.join(ContactKind.values)}")


def add_contact_method(
    user: User, kind: str, address: str, *, label: str = "", region: str | None = None
) -> ContactMethod:
    """Add an unverified contact method for `user`; raise InvalidAddress if it is not usable."""
    address = normalize_address(kind, address, region)
    if ContactMethod.objects.filter(user=user, kind=kind, address=address).exists():
        raise InvalidAddress(f"you already have {kind} {address}")
    try:
        with transaction.atomic():
            return ContactMethod.objects.create(user=user, kind=kind, address=address, label=label)
    except IntegrityError:  # added twice at once
        raise InvalidAddress(f"you already have {kind} {address}") from None


def update_contact_method(
    method: ContactMethod,
    *,
    label: str | None = None,
    address: str | None = None,
    region: str | None = None,
) -> ContactMethod:
    """Change a method's label or address; a new address must be verified again."""
    fields = []
    if label is not None and label != method.label:
        method.label = label
        fields.append("label")
    if address is not None:
        address = normalize_address(method.kind, address, region)
        if address != method.address:
            clash = ContactMethod.objects.filter(
                user_id=method.user_id, kind=method.kind, address=address
            )
            if clash.exclude(pk=method.pk).exists():
                raise InvalidAddress(f"you already have {method.kind} {address}")
            method.address = address
            method.verified_at = None
            method.opted_out = False
            _clear_code(method)
            fields += ["address", "verified_at", "opted_out", *_CODE_FIELDS]
    if fields:
        method.save(update_fields=fields)
    return method


def delete_contact_method(method: ContactMethod) -> None:
    """Delete a method and the notification rules that use it."""
    method.delete()


# --- verification -----------------------------------------------------------------------------


_CODE_FIELDS = ["verification_code_hash", "verification_expires_at", "verification_attempts"]


def _code_hash(method: ContactMethod, code: str) -> str:
    # Keyed and bound to the method: a leaked table alone does not give the 10⁶ codes away.
    key = settings.SECRET_KEY.encode()
    message = f"{method.pk}:{method.kind}:{method.address}:{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _clear_code(method: ContactMethod) -> None:
    method.verification_code_hash = ""
    method.verification_expires_at = None
    method.verification_attempts = 0


def issue_verification_code(method: ContactMethod, *, now: datetime | None = None) -> str:
    """Store a fresh code's hash on `method` (voiding any earlier code) and return the code.

    Refuses (VerificationFailed) a new code within 30 seconds of the last one sent to the same
    address or by the same person, so nobody can make Muster flood a number with texts, or
    text a list of numbers.
    """
    now = now or timezone.now()
    with transaction.atomic():
        method = ContactMethod.objects.select_for_update().get(pk=method.pk)
        # Per person and per address (oncall.verify_limits), not per method: deleting the
        # method and adding it again does not let Muster text the number again.
        wait = verify_limits.seconds_until_resend(method, now)
        if wait:
            raise VerificationFailed(f"a code was sent moments ago; ask again in {wait} s")
        verify_limits.note_sent(method, now)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        method.verification_code_hash = _code_hash(method, code)
        method.verification_expires_at = now + CODE_LIFETIME
        method.verification_attempts = 0
        method.save(update_fields=_CODE_FIELDS)
    return code


def start_verification(method: ContactMethod, *, now: datetime | None = None) -> None:
    """Send a new 6-digit code to `method` (through the paging channels), valid 10 minutes."""
    code = issue_verification_code(method, now=now)
    method.refresh_from_db()
    send_verification_code(method, code)


def confirm_verification(
    method: ContactMethod, code: str, *, now: datetime | None = None
) -> ContactMethod:
    """Mark `method` verified if `code` is its current code; raise VerificationFailed if not.

    A wrong code uses up one of MAX_ATTEMPTS; after the last, or once expired, the code is void
    and a new one must be asked for. Verifying a first phone number sets up default rules.
    """
    now = now or timezone.now()
    code = (code or "").strip().replace(" ", "")
    with transaction.atomic():
        method = (
            ContactMethod.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=method.pk)
        )
        # The attempt is counted (committed) even though the answer is a refusal.
        refusal = _check_code(method, code, now)
        if refusal is None:
            _clear_code(method)
            method.verified_at = now
            method.save(update_fields=[*_CODE_FIELDS, "verified_at"])
            if method.kind in PHONE_KINDS:
                _phone_verified(method, now)
    if refusal is not None:
        raise VerificationFailed(refusal)
    return method


def _check_code(method: ContactMethod, code: str, now: datetime) -> str | None:
    """Return why `code` does not verify `method` (recording the attempt), or None if it does."""
    if method.is_verified:
        return None
    if not method.verification_code_hash:
        return "no code was sent for this contact method; ask for one"
    if method.verification_expires_at is None or method.verification_expires_at <= now:
        _clear_code(method)
        method.save(update_fields=_CODE_FIELDS)
        return "the code has expired; ask for a new one"
    if exhausted := verify_limits.failures_exhausted(method, now):
        return exhausted
    if hmac.compare_digest(method.verification_code_hash, _code_hash(method, code)):
        return None
    verify_limits.note_failure(method, now)
    method.verification_attempts += 1
    left = MAX_ATTEMPTS - method.verification_attempts
    if left <= 0:
        _clear_code(method)
    method.save(update_fields=_CODE_FIELDS)
    if left <= 0:
        return "wrong code, and that was the last try; ask for a new one"
    return f"wrong code; {left} {'try' if left == 1 else 'tries'} left"


def _phone_verified(method: ContactMethod, now: datetime) -> None:
    """Verify the number's other phone method too; give a first phone the default rules."""
    ContactMethod.objects.filter(
        user_id=method.user_id, kind__in=PHONE_KINDS, address=method.address, verified_at=None
    ).update(
        verified_at=now,
        verification_code_hash="",
        verification_expires_at=None,
        verification_attempts=0,
    )
    if NotificationRule.objects.filter(user_id=method.user_id).exists():
        return
    verified_phones = ContactMethod.objects.filter(
        user_id=method.user_id, kind__in=PHONE_KINDS, verified_at__isnull=False
    ).exclude(address=method.address)
    if verified_phones.exists():
        return  # not their first phone: they removed their rules on purpose
    create_default_rules(method.user, method.address, now=now)


def create_default_rules(user: User, number: str, *, now: datetime | None = None) -> list:
    """Give `user` the default notification rules on the verified phone `number`."""
    now = now or timezone.now()
    methods = {}
    for kind in PHONE_KINDS:
        methods[kind], _ = ContactMethod.objects.get_or_create(
            user=user, kind=kind, address=number, defaults={"verified_at": now}
        )
    return [
        NotificationRule.objects.get_or_create(
            user=user, urgency=urgency, delay_minutes=delay, contact_method=methods[kind]
        )[0]
        for urgency, kind, delay in DEFAULT_RULES
    ]


# --- notification rules -----------------------------------------------------------------------


def _check_rule(user: User, urgency: str, delay_minutes: int, method: ContactMethod) -> None:
    if urgency not in Urgency.values:
        raise ContactMethodError(f"urgency must be one of {', '.join(Urgency.values)}")
    if not 0 <= delay_minutes <= MAX_RULE_DELAY_MINUTES:
        raise ContactMethodError(f"delay_minutes must be 0 to {MAX_RULE_DELAY_MINUTES}")
    if method.user_id != user.pk:
        raise ContactMethodError("a rule can only use your own contact methods")
    if not method.is_verified:
        raise ContactMethodError(f"verify {method} before a rule can use it")


def _unique_rule(user: User, urgency, delay_minutes, method, exclude: int | None = None) -> None:
    same = NotificationRule.objects.filter(
        user=user, urgency=urgency, delay_minutes=delay_minutes, contact_method=method
    )
    if exclude is not None:
        same = same.exclude(pk=exclude)
    if same.exists():
        raise ContactMethodError("you already have this rule")


def add_notification_rule(
    user: User, *, urgency: str, delay_minutes: int, contact_method: ContactMethod
) -> NotificationRule:
    """Add a rule: reach `user` through `contact_method`, `delay_minutes` into a page."""
    _check_rule(user, urgency, delay_minutes, contact_method)
    _unique_rule(user, urgency, delay_minutes, contact_method)
    return NotificationRule.objects.create(
        user=user, urgency=urgency, delay_minutes=delay_minutes, contact_method=contact_method
    )


def update_notification_rule(rule: NotificationRule, **changes) -> NotificationRule:
    """Change a rule's urgency, delay or contact method (any of them)."""
    urgency = changes.get("urgency", rule.urgency)
    delay = changes.get("delay_minutes", rule.delay_minutes)
    method = changes.get("contact_method", rule.contact_method)
    _check_rule(rule.user, urgency, delay, method)
    _unique_rule(rule.user, urgency, delay, method, exclude=rule.pk)
    rule.urgency, rule.delay_minutes, rule.contact_method = urgency, delay, method
    rule.save(update_fields=["urgency", "delay_minutes", "contact_method"])
    return rule


def delete_notification_rule(rule: NotificationRule) -> None:
    rule.delete()


# --- settings and quiet hours -----------------------------------------------------------------


def person_settings(user: User) -> PersonSettings:
    """Return the person's settings, creating the defaults (UTC, no quiet hours) on first use."""
    found, _ = PersonSettings.objects.get_or_create(user=user)
    return found


def check_time_zone(name: str) -> str:
    """Return `name` if it is an IANA zone ("Europe/Berlin"); raise ContactMethodError if not."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ContactMethodError(f"{name!r} is not an IANA time zone, like Europe/Berlin") from None
    return name


_UNSET = object()


def update_person_settings(
    user: User, *, time_zone=_UNSET, quiet_start=_UNSET, quiet_end=_UNSET
) -> PersonSettings:
    """Change a person's time zone and quiet hours; quiet hours need both ends or neither."""
    prefs = person_settings(user)
    if time_zone is not _UNSET:
        prefs.time_zone = check_time_zone(time_zone)
    if quiet_start is not _UNSET:
        prefs.quiet_start = quiet_start
    if quiet_end is not _UNSET:
        prefs.quiet_end = quiet_end
    if (prefs.quiet_start is None) != (prefs.quiet_end is None):
        raise ContactMethodError("quiet hours need both quiet_start and quiet_end, or neither")
    if prefs.quiet_start is not None and prefs.quiet_start == prefs.quiet_end:
        raise ContactMethodError("quiet_start and quiet_end must differ")
    prefs.save()
    return prefs


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    def contains(self, moment: datetime) -> bool:
        t = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # overnight, like 22:00–07:00

    def end_after(self, moment: datetime) -> datetime | None:
        """Return when the quiet hours around `moment` end, or None if it is outside them."""
        if not self.contains(moment):
            return None
        local = moment.astimezone(self.zone)
        day = local.date()
        if local.time() >= self.end:  # the evening part of an overnight window
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.zone).astimezone(moment.tzinfo)


def quiet_hours(user: User) -> QuietHours | None:
    prefs = PersonSettings.objects.filter(user=user).first()
    if prefs is None or prefs.quiet_start is None or prefs.quiet_end is None:
        return None
    return QuietHours(prefs.quiet_start, prefs.quiet_end, ZoneInfo(prefs.time_zone))


def quiet_hours_end(user: User, at: datetime | None = None) -> datetime | None:
    """Return when `user`'s quiet hours end if `at` (default now) falls in them, else None.

    Low-urgency pages wait until then; high urgency never waits.
    """
    hours = quiet_hours(user)
    return hours.end_after(at or timezone.now()) if hours else None


def rotate_ical_token(user: User) -> PersonSettings:
    """Give the person's iCal feed a new secret URL; the old one stops working at once."""
    prefs = person_settings(user)
    prefs.ical_token = secrets.token_urlsafe(24)
    prefs.save(update_fields=["ical_token"])
    return prefs
