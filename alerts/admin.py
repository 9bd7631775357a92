from django.contrib import admin

from alerts.models import Alert, IngestRequest, Integration, RoutingRule, Silence


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "service", "enabled", "created_at")
    readonly_fields = ("token", "token_rotated_at", "last_ping_at", "heartbeat_down")


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "integration", "position", "service")


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("__str__", "service", "starts_at", "ends_at", "created_by")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("summary", "integration", "status", "incident", "occurrences", "last_seen")
    list_filter = ("status", "integration")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IngestRequest)
class IngestRequestAdmin(admin.ModelAdmin):
    list_display = ("integration", "received_at", "outcome", "status_code", "reason")
    list_filter = ("outcome", "integration")

    def has_change_permission(self, request, obj=None):
        return False
