"""Reads for chat pages and the API, always scoped to the requesting user."""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404

from chat.models import Conversation, Message, Recall


def conversation_get(*, user, conversation_id) -> Conversation:
    """The user's conversation, or 404 (also for other users' ids)."""
    return get_object_or_404(Conversation.objects.for_user(user), pk=conversation_id)


def conversation_list(*, user):
    return Conversation.objects.for_user(user).order_by("-last_activity_at", "-id")


def message_list(*, conversation: Conversation):
    """Messages in order, each assistant message with what it recalled (two queries in all)."""
    recalls = (
        Recall.objects.select_related("memory", "episode")
        .defer("memory__embedding", "memory__search", "episode__embedding", "episode__search")
        .order_by("rank")
    )
    return conversation.messages.prefetch_related(Prefetch("recalls", queryset=recalls)).order_by(
        "created_at", "id"
    )


def message_get(*, user, message_id) -> Message:
    return get_object_or_404(Message.objects.for_user(user), pk=message_id)
