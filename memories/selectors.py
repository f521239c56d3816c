"""Reads of a user's memory for pages and the API."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.selectors import memory_policy
from chat.models import Message
from memories import candidates
from memories.models import Memory


def memory_list(
    *,
    user,
    query: str = "",
    kind: str = "",
    source: str = "",
    since: date | None = None,
    until: date | None = None,
    usable_only: bool = False,
):
    """Current memories, optionally searched (words in the text) and filtered by kind, source and
    the day they were learned (`since` and `until` included); `usable_only`: only those the user's
    memory policy lets be used (what an app may see: not "don't use this", held, or of a category
    not opted in to); with their source messages, those messages' conversations, and the older
    versions they superseded."""
    sources = Message.objects.select_related("conversation").order_by("created_at")
    history = Memory.objects.defer("embedding", "search").order_by("-valid_until")
    memories = (
        _memories_of(user, usable_only)
        .current()
        .defer("embedding", "search")
        .prefetch_related(
            Prefetch("source_messages", queryset=sources), Prefetch("superseded", queryset=history)
        )
        .order_by("kind", "-pinned", "-updated_at", "-id")
    )
    if query:
        memories = memories.with_words(query)
    if kind:
        memories = memories.filter(kind=kind)
    if source:
        memories = memories.filter(source=source)
    if since:
        memories = memories.filter(created_at__date__gte=since)
    if until:
        memories = memories.filter(created_at__date__lte=until)
    return memories


def due_soon(*, user, conversation=None, now: datetime | None = None) -> list[Memory]:
    """Deadlines and events within two days and open action items, for the session-start banner;
    none in a temporary chat or when memory may not be used."""
    policy = memory_policy(user=user, conversation=conversation)
    today = user.local(now or timezone.now())  # "within two days" on the user's clock
    # the context builder's own list of what is due
    return candidates.ranked_memories(
        Memory.objects.for_user(user).usable(policy), candidates.due(today)
    )


def memory_get(*, user, memory_id, usable_only: bool = False) -> Memory:
    return get_object_or_404(_memories_of(user, usable_only), pk=memory_id)


def is_usable(*, user, memory: Memory) -> bool:
    """Whether the user's memory policy lets this memory be used (and so be seen by an app)."""
    return _memories_of(user, usable_only=True).filter(pk=memory.pk).exists()


def _memories_of(user, usable_only: bool):
    memories = Memory.objects.for_user(user)
    return memories.usable(memory_policy(user=user)) if usable_only else memories


def profile(*, user) -> list[Memory]:
    """The user's always-on profile as the context builder injects it with every reply (pinned
    memories, instructions, name, diet, occupation, location, allergies), under the user's memory
    policy."""
    # the context builder's own definition of the profile
    memories = Memory.objects.for_user(user).usable(memory_policy(user=user))
    return candidates.ranked_memories(memories, candidates.core())
