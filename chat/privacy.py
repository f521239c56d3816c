"""The chat app's share of a user's data: its erasure and its part of the data export."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction

from chat.models import Conversation, Message, Recall
from memories.erasure import lock_messages
from memoryweb.privacy import Erasure, PrivacyArea, register


@register
class ChatArea(PrivacyArea):
    """Conversations and their messages, with the recalls of each reply."""

    label = "chat"

    def export(self, user) -> dict[str, Any]:
        return export_user_data(user=user)

    def erase(self, user) -> Erasure:
        return erase_chat_data(user=user)


@transaction.atomic
def erase_chat_data(*, user) -> Erasure:
    """Delete all of `user`'s conversations and messages (with the recalls of each reply)."""
    conversations = Conversation.objects.for_user(user)
    lock_messages(user=user, conversation_ids=list(conversations.values_list("pk", flat=True)))
    erasure = Erasure()
    erasure.deleted(conversations.delete())
    return erasure


def export_user_data(*, user) -> dict[str, Any]:
    """Everything the chat app keeps about `user`: every conversation (temporary ones too) with its
    messages, and for each assistant reply the memories and episodes it used (recalls)."""
    recalls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for recall in Recall.objects.filter(message__conversation__user=user).order_by(
        "message_id", "rank", "id"
    ):
        recalls[recall.message_id].append(
            {
                "id": recall.pk,
                "rank": recall.rank,
                "score": recall.score,
                "memory_id": recall.memory_id,
                "episode_id": recall.episode_id,
            }
        )
    messages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in Message.objects.for_user(user).order_by("created_at", "id"):
        messages[message.conversation_id].append(
            {
                "id": message.pk,
                "role": message.role,
                "content": message.content,
                "created_at": message.created_at,
                "speaker": message.speaker,
                "external_id": message.external_id,
                "processed_at": message.processed_at,
                "excluded_from_memory": message.excluded_from_memory,
                "recalls": recalls.get(message.pk, []),
            }
        )
    conversations = [
        {
            "id": c.pk,
            "title": c.title,
            "temporary": c.temporary,
            "origin": c.origin,
            "origin_id": c.origin_id,
            "created_at": c.created_at,
            "last_activity_at": c.last_activity_at,
            "ended_at": c.ended_at,
            "finalized_at": c.finalized_at,
            "messages": messages.get(c.pk, []),
        }
        for c in Conversation.objects.for_user(user).order_by("created_at", "id")
    ]
    return {"conversations": conversations}
