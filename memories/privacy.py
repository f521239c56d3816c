"""Erasure of memory data. Everything derived from erased data goes too: older versions, revisions,
recall records, turn episodes, and the summaries and digests that drew on it (digests are rewritten
from what remains)."""

from __future__ import annotations

from django.db import transaction

from chat.models import Conversation, Message
from memories.models import Episode, Memory


def memories_learned_only_from(*, user, messages) -> list[int]:
    """Ids of `user`'s memories whose every source message is in `messages` (nothing else supports them)."""
    message_ids = set(messages.values_list("pk", flat=True))
    through = Memory.source_messages.through.objects.filter(memory__user=user)
    candidates = set(through.filter(message_id__in=message_ids).values_list("memory_id", flat=True))
    supported_elsewhere = set(
        through.filter(memory_id__in=candidates).exclude(message_id__in=message_ids).values_list("memory_id", flat=True)
    )
    return sorted(candidates - supported_elsewhere)


def digests_drawing_on(*, user, conversation: Conversation) -> list[Episode]:
    """Digests whose period covers the conversation (they quote its summary) or that cite its messages."""
    covering = Episode.objects.for_user(user).filter(
        kind=Episode.Kind.DIGEST, started_at__lte=conversation.last_activity_at, ended_at__gte=conversation.created_at
    )
    citing = Episode.objects.for_user(user).filter(kind=Episode.Kind.DIGEST, messages__conversation=conversation)
    return list((covering | citing).distinct())


@transaction.atomic
def erase_memory_data(*, user) -> dict[str, int]:
    """Delete all of `user`'s memories (with revisions) and episodes (turns, summaries, digests)."""
    memories, _ = Memory.objects.for_user(user).delete()
    episodes, _ = Episode.objects.for_user(user).delete()
    return {"memories": memories, "episodes": episodes}


def lock_messages(*, user, conversation_ids) -> None:
    """Wait for any worker still writing from these conversations' messages (it holds their row locks),
    so what it wrote is seen and erased, and it finds the messages gone afterwards."""
    list(Message.objects.for_user(user).filter(conversation_id__in=conversation_ids).select_for_update())
