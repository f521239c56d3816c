"""Deleting conversations and everything derived only from them; the chat part of the data export."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction

from accounts.services import lock_user
from chat.models import Conversation, Message, Recall
from memories.consolidation import memory_erase
from memories.models import MemoryRevision
from memories.privacy import digests_drawing_on, lock_messages, memories_learned_only_from
from memories.services import memory_changes_undo


def conversation_delete(*, user, conversation: Conversation) -> dict[str, int]:
    """Delete a conversation of `user` with its messages, its summary and turn episodes, the memories
    learned only from it, and the digests that drew on it (rewritten from what remains). Memories with
    other sources only lose this provenance; an older version learned elsewhere that one of the erased
    memories had superseded is current again. Returns what was deleted."""
    with transaction.atomic():
        lock_user(user)
        lock_messages(user=user, conversation_ids=[conversation.pk])
        conversation = Conversation.objects.for_user(user).select_for_update().defer("title").get(pk=conversation.pk)
        memory_changes_undo(user=user, message_ids=conversation.messages.values_list("pk", flat=True))
        memory_ids = memories_learned_only_from(user=user, messages=conversation.messages.all())
        digests = digests_drawing_on(user=user, conversation=conversation)
        periods = [d.ended_at for d in digests]
        for digest in digests:
            digest.delete()
        erased = memory_erase(user=user, memory_ids=memory_ids, with_history=False)
        # The changes it made to memories that stay (e.g. "moved to Berlin" superseding "lives in Paris")
        # go with it: their revisions quote it.
        MemoryRevision.objects.filter(memory__user=user, message__conversation=conversation).delete()
        messages = conversation.messages.count()
        conversation.delete()
        transaction.on_commit(lambda: _rewrite_digests(user.pk, periods))
    return {"messages": messages, "memories": erased, "digests": len(periods)}


def _rewrite_digests(user_id: int, periods) -> None:
    from memories.tasks import digest_user

    for period_end in periods:
        digest_user.delay(user_id, period_end.isoformat())


@transaction.atomic
def erase_chat_data(*, user) -> int:
    """Delete all of `user`'s conversations and messages."""
    conversations = Conversation.objects.for_user(user)
    lock_messages(user=user, conversation_ids=list(conversations.values_list("pk", flat=True)))
    deleted, _ = conversations.delete()
    return deleted


def export_user_data(*, user) -> dict[str, Any]:
    """Everything the chat app keeps about `user`: every conversation (temporary ones too) with its
    messages, and for each assistant reply the memories and episodes it used (recalls)."""
    recalls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for recall in Recall.objects.filter(message__conversation__user=user).order_by("message_id", "rank", "id"):
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
            "created_at": c.created_at,
            "last_activity_at": c.last_activity_at,
            "ended_at": c.ended_at,
            "finalized_at": c.finalized_at,
            "messages": messages.get(c.pk, []),
        }
        for c in Conversation.objects.for_user(user).order_by("created_at", "id")
    ]
    return {"conversations": conversations}
