"""Web UI: the forms of my profile page (contact methods, codes, rules, settings, tokens)."""

from __future__ import annotations

import phonenumbers
from django import forms

from accounts.models import User
from incidents.models import Urgency
from oncall import people
from oncall.models import ContactKind, ContactMethod


class ContactMethodForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (ContactKind.SMS, "SMS"),
            (ContactKind.VOICE, "Voice call"),
            (ContactKind.EMAIL, "Email"),
        ],
        label="Kind",
    )
    address = forms.CharField(
        max_length=254,
        label="Phone number or email",
        help_text="A phone number with its country code, like +14155550100.",
    )
    region = forms.CharField(
        max_length=2,
        required=False,
        label="Country",
        help_text="For a number without +: its country code, like US or DE.",
    )
    label = forms.CharField(max_length=100, required=False, label="Label")

    def clean_region(self) -> str:
        region = self.cleaned_data["region"].strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise forms.ValidationError(f"{region} is not a country code, like US or DE")
        return region


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=20,
        label="Code",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class RuleForm(forms.Form):
    urgency = forms.ChoiceField(choices=Urgency.choices, label="Urgency")
    delay_minutes = forms.IntegerField(
        min_value=0, max_value=people.MAX_RULE_DELAY_MINUTES, initial=0, label="After (minutes)"
    )
    contact_method = forms.ModelChoiceField(
        queryset=ContactMethod.objects.none(), label="Contact method", empty_label=None
    )

    def __init__(self, *args, user: User, methods=None, **kwargs):
        super().__init__(*args, **kwargs)
        if methods is None:
            methods = list(ContactMethod.objects.filter(user=user, verified_at__isnull=False))
        self.fields["contact_method"].queryset = ContactMethod.objects.filter(
            pk__in=[m.pk for m in methods if m.is_verified]
        )
        # The choices render from the list already fetched, not another query per form.
        self.fields["contact_method"].choices = [(m.pk, str(m)) for m in methods if m.is_verified]


class SettingsForm(forms.Form):
    time_zone = forms.CharField(
        max_length=64,
        label="Time zone",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    quiet_start = forms.TimeField(
        required=False, label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(
        required=False, label="Quiet until", widget=forms.TimeInput(attrs={"type": "time"})
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name")
