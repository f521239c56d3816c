"""Moderation in the Django admin: typed sections, filters, a review queue with bulk approve/reject.
Every view of a user's memories is logged for that user; text is masked without a dedicated
permission."""

from django.contrib import admin, messages

from accounts.models import SensitiveCategory
from memories.admin_audit import AuditedAdmin, can_read_text
from memories.models import (
    Episode,
    Event,
    Fact,
    HeldMemory,
    Instruction,
    Memory,
    MemoryRevision,
    Preference,
    Project,
    Relationship,
)
from memories.services import memories_moderate

MODERATE_PERMISSION = "memories.moderate_memory"


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged by the poisoning check"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", "Flagged"), ("no", "Not flagged")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(flag_reasons=[])
        if self.value() == "no":
            return queryset.filter(flag_reasons=[])
        return queryset


class SensitiveCategoryFilter(admin.SimpleListFilter):
    title = "sensitive category"
    parameter_name = "sensitive"

    def lookups(self, request, model_admin):
        return [("none", "None"), *SensitiveCategory.choices]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(sensitive_categories=[])
        if self.value():
            return queryset.filter(sensitive_categories__contains=[self.value()])
        return queryset


class RevisionInline(admin.TabularInline):
    model = MemoryRevision
    extra = 0
    fields = ("action", "actor", "message", "created_at")
    readonly_fields = fields
    can_delete = False


def _review(request, queryset, approve: bool) -> None:
    if not request.user.has_perm(MODERATE_PERMISSION):
        messages.error(request, "You may not moderate memories.")
        return
    count = memories_moderate(
        memory_ids=list(queryset.values_list("pk", flat=True)), approve=approve
    )
    verb = "approved" if approve else "rejected"
    messages.success(request, f"{count} memor{'y' if count == 1 else 'ies'} {verb}.")


@admin.action(description="Approve: may be used in replies")
def approve(modeladmin, request, queryset):
    _review(request, queryset, approve=True)


@admin.action(description="Reject: never used")
def reject(modeladmin, request, queryset):
    _review(request, queryset, approve=False)


class MemoryAdmin(AuditedAdmin):
    list_display = ("kind", "user", "source", "review_status", "sensitive", "pinned", "valid_from")
    list_filter = (
        "kind",
        "source",
        SensitiveCategoryFilter,
        "review_status",
        FlaggedFilter,
        "pinned",
    )
    search_fields = ("subject", "user__username")
    text_fields = ("text", "subject", "attributes")  # what it is about is the user's data too
    searches_text = True
    exclude = ("embedding", "source_messages", "fingerprint")
    readonly_fields = (
        "user",
        "review_status",
        "flag_reasons",
        "recall_count",
        "last_recalled_at",
        "superseded_by",
    )
    actions = [approve, reject]
    inlines = [RevisionInline]
    list_select_related = ("user",)

    @admin.display(description="sensitive categories")
    def sensitive(self, obj) -> str:
        return ", ".join(obj.sensitive_categories)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm(MODERATE_PERMISSION):
            actions.pop("approve", None)
            actions.pop("reject", None)
        return actions


admin.site.register(Memory, MemoryAdmin)
for proxy in (Fact, Preference, Relationship, Project, Instruction, Event):
    admin.site.register(proxy, MemoryAdmin)


@admin.register(HeldMemory)
class ModerationQueueAdmin(MemoryAdmin):
    """The moderation queue: memories held for review (flagged by the poisoning check, or pushed by
    apps when the operator holds those), oldest first."""

    ordering = ("created_at",)


@admin.register(Episode)
class EpisodeAdmin(AuditedAdmin):
    list_display = ("key", "kind", "user", "started_at")
    list_filter = ("kind",)
    exclude = ("embedding", "messages")
    readonly_fields = ("user", "conversation", "kind", "key", "started_at", "ended_at")
    list_select_related = ("user",)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "text") if can_read_text(request) else fields
