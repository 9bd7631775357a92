from django import forms
from django.contrib import admin

from accounts.models import AuditEntry
from oncall import people, rotations
from oncall.models import (
    ContactMethod,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Layer,
    LayerParticipant,
    Membership,
    NotificationRule,
    Override,
    Page,
    PersonSettings,
    Schedule,
    ServicePolicy,
    Team,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
    inlines = [MembershipInline]


def _check_zone(value: str) -> str:
    try:
        return people.check_time_zone(value)
    except people.ContactMethodError as exc:
        raise forms.ValidationError(str(exc)) from None


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["name", "description", "team", "time_zone"]

    def clean_time_zone(self):
        return _check_zone(self.cleaned_data["time_zone"])


class LayerForm(forms.ModelForm):
    class Meta:
        model = Layer
        fields = [
            "schedule",
            "name",
            "level",
            "rotation",
            "shift_hours",
            "start",
            "end",
            "restrictions",
        ]

    def clean_restrictions(self):
        value = self.cleaned_data["restrictions"] or []
        if not isinstance(value, list):
            raise forms.ValidationError("restrictions must be a list")
        try:
            return [rotations.restriction_from_dict(r).to_dict() for r in value]
        except rotations.RestrictionError as exc:
            raise forms.ValidationError(str(exc)) from None


class LayerInline(admin.StackedInline):
    model = Layer
    form = LayerForm
    extra = 0
    show_change_link = True


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "team", "time_zone")
    search_fields = ("name",)
    readonly_fields = ("ical_token",)
    inlines = [LayerInline]


class ParticipantInline(admin.TabularInline):
    model = LayerParticipant
    extra = 1
    autocomplete_fields = ("user",)


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    form = LayerForm
    list_display = ("__str__", "schedule", "level", "rotation", "start", "end")
    list_filter = ("rotation",)
    inlines = [ParticipantInline]


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ("__str__", "schedule", "user", "start", "end", "created_by")
    list_filter = ("schedule",)
    autocomplete_fields = ("user",)


class StepInline(admin.StackedInline):
    model = EscalationStep
    extra = 0
    filter_horizontal = ("users", "schedules", "teams")


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "repeat")
    search_fields = ("name",)
    inlines = [StepInline]


@admin.register(ServicePolicy)
class ServicePolicyAdmin(admin.ModelAdmin):
    list_display = ("service", "policy")


@admin.register(ContactMethod)
class ContactMethodAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "address", "label", "verified_at", "opted_out")
    list_filter = ("kind", "opted_out")
    search_fields = ("address", "user__username")
    readonly_fields = (
        "verification_code_hash",
        "verification_expires_at",
        "verification_attempts",
    )


@admin.register(NotificationRule)
class NotificationRuleAdmin(admin.ModelAdmin):
    list_display = ("user", "urgency", "delay_minutes", "contact_method")
    list_filter = ("urgency",)


class PersonSettingsForm(forms.ModelForm):
    class Meta:
        model = PersonSettings
        fields = ["user", "time_zone", "quiet_start", "quiet_end"]

    def clean_time_zone(self):
        return _check_zone(self.cleaned_data["time_zone"])


@admin.register(PersonSettings)
class PersonSettingsAdmin(admin.ModelAdmin):
    form = PersonSettingsForm
    list_display = ("user", "time_zone", "quiet_start", "quiet_end")
    readonly_fields = ("ical_token",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the system writes: viewable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "incident", "policy", "status", "next_at")
    list_filter = ("status",)


@admin.register(Page)
class PageAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "incident", "person", "channel", "status", "created_at")
    list_filter = ("status", "channel")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action", "object_type")
    search_fields = ("summary",)

    def has_delete_permission(self, request, obj=None):
        return False
