"""The setup pages' forms. Rules shared with the API live in the models' clean() (run by each
ModelForm) and in alerts.matchers; what is checked here is only how a field is typed."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import User
from alerts.matchers import MatcherError, matcher_from_dict, parse_matchers
from alerts.models import SIGNING_KINDS, Integration, Kind, RoutingRule, Silence
from incidents.chat_settings import channel_id_error, chat_settings_errors
from incidents.models import Service
from oncall.models import EscalationPolicy, EscalationStep, Schedule, Team
from oncall.policies import MAX_STEP_DELAY, MAX_STEPS
from runbooks.models import MAX_RUNBOOK_BODY, Runbook
from warroom.chat.platforms import PLATFORMS

MAX_GROUP_BY_LABELS = 20  # as incidents/api.py ServiceSerializer
MAX_LABEL_NAME = 200
MAX_REPEAT = 9
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
CHAT_MODE_HELP = (
    "A channel per incident (made when it opens, archived when it resolves), only the service's "
    "shared channel, or nowhere."
)
MATCHERS_HELP = 'Comma-separated, as Alertmanager writes them: team="db", env!="dev", host=~"db-.*"'


def matchers_text(matchers: list) -> str:
    """Return stored matchers as the text a person types."""
    try:
        return ", ".join(str(matcher_from_dict(m)) for m in matchers or [])
    except MatcherError:
        return ""


class MatchersField(forms.CharField):
    """Matchers typed as text, cleaned to the stored `[{"label", "op", "value"}]` list."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", MATCHERS_HELP)
        kwargs.setdefault("max_length", 4000)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return matchers_text(value) if isinstance(value, list) else value

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return []
        try:
            return [m.to_dict() for m in parse_matchers(text)]
        except MatcherError as exc:
            raise ValidationError(str(exc)) from None


class ServiceForm(forms.ModelForm):
    group_by_labels = forms.CharField(
        required=False,
        label="Group by labels",
        help_text="Comma-separated label names; empty: alertname, service.",
    )
    policy = forms.ModelChoiceField(
        queryset=EscalationPolicy.objects.all(),
        required=False,
        label="Escalation policy",
        empty_label="None (nobody is paged)",
    )

    class Meta:
        model = Service
        fields = [
            "name",
            "description",
            "urgency_override",
            "auto_resolve",
            "ack_timeout_minutes",
            "slack_channel_mode",
            "slack_channel",
            "mattermost_channel_mode",
            "mattermost_channel",
            "archive_chat_channels",
        ]
        labels = {
            "urgency_override": "Urgency",
            "auto_resolve": "Auto-resolve",
            "ack_timeout_minutes": "Acknowledgement timeout (minutes)",
            "slack_channel_mode": "Slack: where incidents are told",
            "slack_channel": "Slack: shared channel id",
            "mattermost_channel_mode": "Mattermost: where incidents are told",
            "mattermost_channel": "Mattermost: shared channel id",
            "archive_chat_channels": "Archive an incident's chat channels when it resolves",
        }
        help_texts = {
            "urgency_override": "Empty: urgency follows severity (1–2 high, 3–5 low).",
            "slack_channel_mode": CHAT_MODE_HELP,
            "slack_channel": "Its id, not its name: C0123ABCD (the channel's details, at the "
            "bottom). Needed in shared mode; with a channel per incident, an incident's posts go "
            "here until its own channel exists. The bot must be a member of it.",
            "mattermost_channel_mode": CHAT_MODE_HELP,
            "mattermost_channel": "Its id, not its name: 26 lower-case letters and digits (the "
            "channel's menu, View Info). Needed in shared mode; with a channel per incident, an "
            "incident's posts go here until its own channel exists.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["urgency_override"].choices = [("", "Follows severity")] + [
            c for c in self.fields["urgency_override"].choices if c[0]
        ]
        if self.instance.pk:
            self.initial["group_by_labels"] = ", ".join(self.instance.group_by_labels or [])
            escalation = getattr(self.instance, "escalation", None)
            self.initial["policy"] = escalation.policy_id if escalation else None
        for name, platform in PLATFORMS.items():
            # Not sent (an older page, a script): the mode stays as it is.
            self.fields[f"{name}_channel_mode"].required = False
            if not platform.configured():  # still editable: ready for when it is
                for field in (f"{name}_channel_mode", f"{name}_channel"):
                    self.fields[field].label += f" ({platform.label} is not configured)"

    def clean(self):
        cleaned = super().clean()
        for name in PLATFORMS:
            mode = f"{name}_channel_mode"
            if not cleaned.get(mode) and mode not in self.errors:
                cleaned[mode] = getattr(self.instance, mode)
        for field, error in chat_settings_errors(cleaned).items():
            if field not in self.errors:
                self.add_error(field, error)
        return cleaned

    def clean_group_by_labels(self) -> list[str]:
        labels = [name.strip() for name in self.cleaned_data["group_by_labels"].split(",")]
        labels = [name for name in labels if name]
        if len(labels) > MAX_GROUP_BY_LABELS:
            raise ValidationError(f"at most {MAX_GROUP_BY_LABELS} labels")
        if any(len(name) > MAX_LABEL_NAME for name in labels):
            raise ValidationError(f"a label name has at most {MAX_LABEL_NAME} characters")
        return labels

    def save(self, commit: bool = True) -> Service:
        self.instance.group_by_labels = self.cleaned_data["group_by_labels"]
        return super().save(commit)


class IntegrationCreateForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = ["kind", "name", "service"]
        labels = {"service": "Default service"}
        help_texts = {"service": "Where its alerts go unless a routing rule says otherwise."}


class IntegrationForm(forms.ModelForm):
    """The settings of an existing integration; which fields depends on its kind."""

    hmac_secret = forms.CharField(
        required=False,
        max_length=200,
        label="Signing secret",
        widget=forms.PasswordInput(render_value=False),
        help_text="The HMAC-SHA256 secret the sender signs with. Empty: keep the current one.",
    )
    remove_hmac_secret = forms.BooleanField(required=False, label="Remove the signing secret")

    class Meta:
        model = Integration
        fields = [
            "name",
            "service",
            "hmac_header",
            "heartbeat_interval_seconds",
            "heartbeat_grace_seconds",
        ]
        labels = {
            "service": "Default service",
            "hmac_header": "Signature header",
            "heartbeat_interval_seconds": "Ping interval (seconds)",
            "heartbeat_grace_seconds": "Grace period (seconds)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.instance.kind
        if kind not in SIGNING_KINDS:
            for name in ("hmac_secret", "remove_hmac_secret", "hmac_header"):
                del self.fields[name]
        if kind != Kind.HEARTBEAT:
            del self.fields["heartbeat_interval_seconds"]
            del self.fields["heartbeat_grace_seconds"]

    def save(self, commit: bool = True) -> Integration:
        if self.cleaned_data.get("remove_hmac_secret"):
            self.instance.hmac_secret = ""
        elif self.cleaned_data.get("hmac_secret"):
            self.instance.hmac_secret = self.cleaned_data["hmac_secret"]
        return super().save(commit)


class RoutingRuleForm(forms.ModelForm):
    matchers = MatchersField(label="Matchers")

    class Meta:
        model = RoutingRule
        fields = ["name", "integration", "matchers", "service"]
        labels = {"service": "Send to service"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].empty_label = "Every integration (after their own rules)"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=DATETIME_FORMAT, **kwargs)


class SilenceForm(forms.ModelForm):
    matchers = MatchersField(label="Matchers", required=False)

    class Meta:
        model = Silence
        fields = ["matchers", "service", "starts_at", "ends_at", "comment"]
        labels = {"starts_at": "Starts (UTC)", "ends_at": "Ends (UTC)"}
        help_texts = {"service": "With no matchers: a maintenance window for the service."}
        widgets = {
            "starts_at": DateTimeLocalInput(),
            "ends_at": DateTimeLocalInput(),
            "comment": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].empty_label = "Any service"


class EscalationPolicyForm(forms.ModelForm):
    repeat = forms.IntegerField(
        min_value=0,
        max_value=MAX_REPEAT,
        initial=0,
        label="Repeat",
        help_text="How many more times the whole policy runs after the first pass.",
    )

    class Meta:
        model = EscalationPolicy
        fields = ["name", "description", "team", "repeat"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].empty_label = "No team"


class EscalationStepForm(forms.ModelForm):
    delay_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_STEP_DELAY,
        initial=EscalationStep._meta.get_field("delay_minutes").default,
        label="Then wait (minutes)",
        help_text="Before the next step pages.",
    )
    users = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        label="People",
        help_text="Ctrl- or Cmd-click to choose several.",
    )
    schedules = forms.ModelMultipleChoiceField(
        queryset=Schedule.objects.all(), required=False, label="Schedules (who is on call)"
    )
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.all(), required=False, label="Teams"
    )

    class Meta:
        model = EscalationStep
        fields = ["delay_minutes", "users", "schedules", "teams"]

    def __init__(self, *args, policy: EscalationPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy

    def clean(self):
        data = super().clean()
        if not (data.get("users") or data.get("schedules") or data.get("teams")):
            raise ValidationError("a step needs someone to page: people, schedules or teams")
        if self.instance.pk is None and self.policy.steps.count() >= MAX_STEPS:
            raise ValidationError(f"at most {MAX_STEPS} steps")
        return data


class RunbookForm(forms.ModelForm):
    matchers = MatchersField(
        label="Label matchers",
        required=False,
        help_text=MATCHERS_HELP + ". Empty: every incident of the service.",
    )
    body = forms.CharField(
        required=False,
        max_length=MAX_RUNBOOK_BODY,
        label="Runbook (Markdown)",
        widget=forms.Textarea(attrs={"rows": 18}),
    )

    class Meta:
        model = Runbook
        fields = ["title", "service", "matchers", "body", "position"]
        help_texts = {"position": "Among matching runbooks the lowest position wins."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].empty_label = "Any service"


class ChatTestForm(forms.Form):
    """The setup page's "send a test message" to a channel of one chat platform."""

    channel_id = forms.CharField(
        max_length=40,
        label="Channel id",
        help_text="Its id, not its name; the bot must be in the channel.",
    )

    def __init__(self, *args, platform: str, **kwargs):
        kwargs.setdefault("prefix", platform)
        super().__init__(*args, **kwargs)
        self.platform = platform

    def clean_channel_id(self) -> str:
        channel_id = self.cleaned_data["channel_id"]
        error = channel_id_error(self.platform, channel_id)
        if error:
            raise ValidationError(error)
        return channel_id
