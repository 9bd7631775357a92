from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, User


@admin.register(User)
class MusterUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Muster", {"fields": ("role",)}))
    list_display = ("username", "email", "role", "is_active")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_hash", "prefix")
