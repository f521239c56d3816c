from django.contrib import admin

from chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "content", "created_at", "processed_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "created_at", "last_activity_at", "ended_at")
    readonly_fields = ("user", "title", "created_at", "last_activity_at", "ended_at", "finalized_at")
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False
