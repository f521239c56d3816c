"""Reads of a user's memory for pages and the API."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone

from chat.models import Message
from memories.models import Memory
from memories.retrieval import upcoming


def memory_list(*, user):
    """Current memories with their source messages (and those messages' conversations) prefetched."""
    sources = Message.objects.select_related("conversation").order_by("created_at")
    return (
        Memory.objects.for_user(user)
        .current()
        .prefetch_related(Prefetch("source_messages", queryset=sources))
        .order_by("kind", "-pinned", "-updated_at")
    )


def due_soon(*, user, now: datetime | None = None) -> list[Memory]:
    """Deadlines and events within two days and open action items, for the session-start banner."""
    return upcoming(Memory.objects.for_user(user).current(), now or timezone.now())


def memory_get(*, user, memory_id) -> Memory:
    return get_object_or_404(Memory.objects.for_user(user), pk=memory_id)
