from django.contrib import admin

from warroom.models import Room, Subscription


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "incident", "created_by", "created_at")
    readonly_fields = ("incident", "created_by", "created_at")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Stakeholders of a whole service get its incidents' status updates: added here (people
    subscribe to one incident themselves, with `subscribe` in its room)."""

    list_display = ("user", "service", "incident", "channel", "created_at")
    list_filter = ("channel", "service")
    raw_id_fields = ("incident",)
