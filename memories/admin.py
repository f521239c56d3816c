from django.contrib import admin

from memories.models import Episode, Memory, MemoryRevision


class RevisionInline(admin.TabularInline):
    model = MemoryRevision
    extra = 0
    readonly_fields = ("action", "actor", "old_text", "new_text", "message", "created_at")
    can_delete = False


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("text", "kind", "user", "source", "pinned", "confidence", "valid_from", "valid_until")
    list_filter = ("kind", "source", "pinned")
    search_fields = ("text", "subject", "user__username")
    exclude = ("embedding", "source_messages")
    readonly_fields = ("fingerprint", "recall_count", "last_recalled_at", "superseded_by")
    inlines = [RevisionInline]


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "user", "started_at")
    list_filter = ("kind",)
    exclude = ("embedding", "messages")
    readonly_fields = ("user", "conversation", "kind", "key", "text", "started_at", "ended_at")
