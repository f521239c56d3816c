"""Reads of a user's memory for pages and the API."""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404

from chat.models import Message
from memories.models import Memory


def memory_list(*, user):
    """Current memories with their source messages (and those messages' conversations) prefetched."""
    sources = Message.objects.select_related("conversation").order_by("created_at")
    return (
        Memory.objects.for_user(user)
        .current()
        .prefetch_related(Prefetch("source_messages", queryset=sources))
        .order_by("kind", "-pinned", "-updated_at")
    )


def memory_get(*, user, memory_id) -> Memory:
    return get_object_or_404(Memory.objects.for_user(user), pk=memory_id)
