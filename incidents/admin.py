from django.contrib import admin

from incidents.models import Incident, Service, TimelineEntry


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "urgency_override", "auto_resolve", "ack_timeout_minutes")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Incidents change only through the verbs (API, chat, web UI); the admin only reads."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("number", "title", "service", "status", "severity", "created_at")
    list_filter = ("status", "severity", "service")
    search_fields = ("title",)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ("incident", "at", "kind", "actor_name", "source", "message")
    list_filter = ("kind", "source")
