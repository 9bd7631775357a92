from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, User
from accounts.services import revoke_api_token


@admin.register(User)
class MusterUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Muster", {"fields": ("role",)}))
    list_display = ("username", "email", "role", "is_active")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    # Revoked only through the action (accounts.services.revoke_api_token, which also closes
    # the token's websockets), and never un-revoked.
    readonly_fields = ("token_hash", "prefix", "revoked_at")
    actions = ("revoke",)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            revoke_api_token(token)
