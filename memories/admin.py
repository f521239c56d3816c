"""Moderation in the Django admin: typed sections, filters, a review queue with bulk approve/reject.
Every view of a user's memories is logged for that user; text is masked without a dedicated
permission."""

from django.contrib import admin, messages
from django.db import transaction

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


def _review(request, queryset, status: str, action: str) -> None:
    if not request.user.has_perm(MODERATE_PERMISSION):
        messages.error(request, "You may not moderate memories.")
        return
    with transaction.atomic():
        memories = list(queryset.select_for_update())
        for memory in memories:
            memory.review_status = status
            memory.save(update_fields=["review_status", "updated_at"])
        MemoryRevision.objects.bulk_create(
            MemoryRevision(memory=m, action=action, actor=MemoryRevision.Actor.ADMIN)
            for m in memories
        )
    messages.success(
        request, f"{len(memories)} memor{'y' if len(memories) == 1 else 'ies'} {action}d."
    )


@admin.action(description="Approve: may be used in replies")
def approve(modeladmin, request, queryset):
    _review(request, queryset, Memory.Review.APPROVED, MemoryRevision.Action.APPROVE)


@admin.action(description="Reject: never used")
def reject(modeladmin, request, queryset):
    _review(request, queryset, Memory.Review.REJECTED, MemoryRevision.Action.REJECT)


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
