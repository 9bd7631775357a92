from django.contrib import admin

from warroom.models import ChatAccount, Room, Subscription


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


@admin.register(ChatAccount)
class ChatAccountAdmin(admin.ModelAdmin):
    """Slack and Mattermost accounts people linked with `/muster link`; deleting one unlinks it
    (for Slack, its cached mapping lasts up to 5 more minutes; Mattermost's is not cached)."""

    list_display = ("platform", "team_id", "user_id", "person", "created_at")
    list_filter = ("platform",)
    search_fields = ("user_id", "person__username")
    readonly_fields = ("platform", "team_id", "user_id", "person", "created_at")
