from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from accounts.connected_apps import app_secret_set
from accounts.models import AccessEvent, ApiKey, AppGrant, RegisteredApp, User

admin.site.register(User, UserAdmin)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = ("prefix", "hashed_key", "created_at", "last_used_at")
    search_fields = ("user__username", "name", "prefix")

    def get_readonly_fields(self, request, obj=None):
        """A key's owner and scopes are fixed once it exists: moving it would let staff act as
        another user, widening it would give it more than its owner chose."""
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "user", "scopes") if obj is not None else fields


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "actor", "purpose", "app", "items")
    list_filter = ("actor",)
    readonly_fields = [f.name for f in AccessEvent._meta.fields]


@admin.action(description="Issue a new secret (the old one stops working)")
def new_secret(modeladmin, request, queryset):
    for app in queryset:
        _show_secret(request, app, app_secret_set(app=app))


def _show_secret(request, app: RegisteredApp, secret: str) -> None:
    messages.warning(
        request, f"The secret of {app.name}, shown only now (give it to the app): {secret}"
    )


@admin.register(RegisteredApp)
class RegisteredAppAdmin(admin.ModelAdmin):
    """The operator registers apps here; each user decides on the portal's apps page whether an app
    may use their memory. The secret is made when the app is saved first and shown once."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "disabled_at")
    fields = ("name", "description", "disabled_at", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    search_fields = ("name",)
    actions = [new_secret]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            _show_secret(request, obj, app_secret_set(app=obj))


@admin.register(AppGrant)
class AppGrantAdmin(admin.ModelAdmin):
    """Users' grants (read-only: only the user grants and revokes, on the portal)."""

    list_display = ("app", "user", "scopes", "created_at", "revoked_at")
    list_filter = ("app",)
    readonly_fields = ("user", "app", "scopes", "created_at", "revoked_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
