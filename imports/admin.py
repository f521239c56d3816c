"""The admin's view of imports: status and counts only, never a title (they are the user's text)."""

from django.contrib import admin

from imports.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "source",
        "status",
        "progress",
        "conversations_imported",
        "messages_imported",
        "created_at",
    )
    list_filter = ("status", "source")
    # not the upload's file name: a path on the server
    readonly_fields = fields = [f.name for f in ImportJob._meta.fields if f.name != "file_name"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
