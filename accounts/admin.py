from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import AccessEvent, ApiKey, User

admin.site.register(User, UserAdmin)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "hashed_key", "created_at", "last_used_at")
    search_fields = ("user__username", "name", "prefix")


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "actor", "purpose", "items")
    list_filter = ("actor",)
    readonly_fields = [f.name for f in AccessEvent._meta.fields]
