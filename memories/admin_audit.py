"""Admin views of users' memory are audited and, without a dedicated permission, masked.

Every admin page that shows a user's memories or messages writes an AccessEvent for that user (they
see it in their access log). Staff without `memories.view_memory_text` see text masked and cannot
search it."""

from __future__ import annotations

from django.contrib import admin

from accounts.models import AccessEvent

TEXT_PERMISSION = "memories.view_memory_text"


def can_read_text(request) -> bool:
    return request.user.has_perm(TEXT_PERMISSION)


def masked(text: str) -> str:
    words = len(text.split())
    return f"••••• (hidden: {words} word{'s' if words != 1 else ''})"


def log_admin_access(
    *, user_ids, purpose: str, items_by_user: dict[int, int] | None = None
) -> None:
    """One access event per user whose data an admin page showed."""
    items_by_user = items_by_user or {}
    AccessEvent.objects.bulk_create(
        AccessEvent(
            user_id=uid,
            actor=AccessEvent.Actor.ADMIN,
            purpose=purpose,
            items=items_by_user.get(uid, 1),
        )
        for uid in set(user_ids)
    )


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin over rows with a `user` (or `user_path`) and text fields (`text_fields`)."""

    user_path = "user_id"
    text_fields: tuple[str, ...] = ("text",)
    searches_text = (
        False  # the search box also finds words of the (encrypted) text, by its search column
    )

    def owner_id(self, obj) -> int:
        value = obj
        for part in self.user_path.split("."):
            value = getattr(value, part)
        return value

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (
            getattr(response, "context_data", {}).get("cl")
            if hasattr(response, "context_data")
            else None
        )
        if changelist is not None:
            counts: dict[int, int] = {}
            for obj in changelist.result_list:
                counts[self.owner_id(obj)] = counts.get(self.owner_id(obj), 0) + 1
            log_admin_access(
                user_ids=counts,
                purpose=f"admin: {self.opts.verbose_name_plural}",
                items_by_user=counts,
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            log_admin_access(
                user_ids=[self.owner_id(obj)], purpose=f"admin: {self.opts.verbose_name}"
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_search_fields(self, request):
        fields = tuple(super().get_search_fields(request))
        return (
            fields
            if can_read_text(request)
            else tuple(f for f in fields if f not in self.text_fields)
        )

    def lookup_allowed(self, lookup, value, request=None):
        """Without the text permission, no filtering by what may not be read (a URL such as
        `?search=word` or `?subject=location` would confirm it row by row): Django answers 400."""
        field = lookup.split("__", 1)[0]
        if field in (*self.text_fields, "search") and (
            request is None or not can_read_text(request)
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if self.searches_text and search_term and can_read_text(request):
            results = results | queryset.with_words(search_term)
        return results, may_have_duplicates

    def get_exclude(self, request, obj=None):
        exclude = tuple(super().get_exclude(request, obj) or ())
        return exclude if can_read_text(request) else exclude + self.text_fields

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if can_read_text(request):
            return fields
        return tuple(f for f in fields if f not in self.text_fields) + ("masked_text",)

    def get_list_display(self, request):
        shown = "full_text" if can_read_text(request) else "masked_text"
        return (shown, *super().get_list_display(request))

    @admin.display(description="text")
    def full_text(self, obj) -> str:
        return getattr(obj, self.text_fields[0])[:200]

    @admin.display(description="text")
    def masked_text(self, obj) -> str:
        return masked(getattr(obj, self.text_fields[0]))
