"""Web UI: my profile page — what it shows, with the forms a failed write re-renders.

Roles match /api/v1/me/*: anyone signed in reads their profile and manages their settings,
tokens and iCal URL; contact methods and rules need the responder role. Every write goes
through oncall.people / accounts.services and is audited like the API's (the sibling modules:
methods, rules, account).
"""

from __future__ import annotations

import functools
from zoneinfo import available_timezones

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from accounts.models import ApiToken, Role
from oncall import people
from oncall.channels.registry import channel_for
from oncall.ical import ical_url
from oncall.models import ContactKind, ContactMethod, NotificationRule
from warroom import links
from web.access import role_required
from web.views.profile.forms import ContactMethodForm, RuleForm, SettingsForm, TokenForm

MAX_TOKENS_SHOWN = 50


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Return the IANA zone names, sorted (read from disk once: it takes tens of ms)."""
    return tuple(sorted(available_timezones()))


def profile_context(request: HttpRequest, **overrides) -> dict:
    """Return everything the profile page shows; `overrides` replace unbound forms with bound
    ones that carry errors."""
    user = request.user
    methods = list(ContactMethod.objects.filter(user=user).order_by("kind", "id"))
    by_id = {m.pk: m for m in methods}
    rules = list(NotificationRule.objects.filter(user=user).order_by("urgency", "delay_minutes"))
    for rule in rules:
        rule.contact_method = by_id[rule.contact_method_id]  # already fetched: no join needed
    rule_forms = overrides.pop("rule_forms", {})
    for rule in rules:
        rule.form = rule_forms.get(rule.pk) or RuleForm(
            user=user,
            methods=methods,
            prefix=f"rule-{rule.pk}",
            initial={
                "urgency": rule.urgency,
                "delay_minutes": rule.delay_minutes,
                "contact_method": rule.contact_method_id,
            },
        )
    prefs = people.person_settings(user)
    tokens = list(
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-id")[
            :MAX_TOKENS_SHOWN
        ]
    )
    context = {
        "methods": methods,
        "rules": rules,
        "prefs": prefs,
        "tokens": tokens,
        "chat_accounts": links.linked_accounts(user),
        "ical_url": ical_url("person", prefs.ical_token),
        "can_manage_methods": user.has_role(Role.RESPONDER),
        "console_outbox": channel_for(ContactKind.SMS) == "console",
        "time_zones": time_zone_names(),
        "method_form": ContactMethodForm(),
        "rule_form": RuleForm(user=user, methods=methods, prefix="new-rule"),
        "settings_form": SettingsForm(
            initial={
                "time_zone": prefs.time_zone,
                "quiet_start": prefs.quiet_start,
                "quiet_end": prefs.quiet_end,
            }
        ),
        "token_form": TokenForm(),
        "new_token": None,
        "max_tokens": MAX_TOKENS_SHOWN,
    }
    context.update(overrides)
    return context


@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def profile_page(request: HttpRequest) -> HttpResponse:
    """Show the signed-in person's profile."""
    return render(request, "web/profile/page.html", profile_context(request))


urlpatterns = [
    path("profile/", profile_page, name="web-profile"),
]
