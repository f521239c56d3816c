"""Conversations in the admin: read-only, every view logged for the user, message text masked
without the dedicated permission."""

from django.contrib import admin

from chat.models import Conversation, Message
from memories.admin_audit import AuditedAdmin, can_read_text, masked


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False

    def get_fields(self, request, obj=None):
        return (
            "role",
            "content" if can_read_text(request) else "masked_content",
            "created_at",
            "processed_at",
        )

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="content")
    def masked_content(self, message) -> str:
        return masked(message.content)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(AuditedAdmin):
    list_display = ("user", "created_at", "last_activity_at", "ended_at", "temporary", "origin")
    text_fields = ("title",)
    search_fields = ("user__username",)
    readonly_fields = (
        "user",
        "title",
        "temporary",
        "origin",
        "origin_id",
        "created_at",
        "last_activity_at",
        "ended_at",
        "finalized_at",
    )
    inlines = [MessageInline]
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
