"""Deleting conversations and everything derived only from them."""

from __future__ import annotations

from django.db import transaction

from chat.models import Conversation
from memories.consolidation import memory_erase
from memories.privacy import digests_drawing_on, lock_messages, memories_learned_only_from


def conversation_delete(*, user, conversation: Conversation) -> dict[str, int]:
    """Delete a conversation of `user` with its messages, its summary and turn episodes, the memories
    learned only from it (with their history), and the digests that drew on it (rewritten from what
    remains). Memories with other sources only lose this provenance. Returns what was deleted."""
    with transaction.atomic():
        lock_messages(user=user, conversation_ids=[conversation.pk])
        conversation = Conversation.objects.for_user(user).select_for_update().get(pk=conversation.pk)
        memory_ids = memories_learned_only_from(user=user, messages=conversation.messages.all())
        digests = digests_drawing_on(user=user, conversation=conversation)
        periods = [d.ended_at for d in digests]
        for digest in digests:
            digest.delete()
        erased = memory_erase(user=user, memory_ids=memory_ids)
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
