"""Chat's periodic jobs: conversations end when idle, temporary chats and old conversations go.

Each deletes through `chat.services.conversation_delete`, the one way a conversation goes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="chat.tasks.end_idle_conversations")
def end_idle_conversations() -> int:
    """End the conversations idle for CONVERSATION_IDLE_MINUTES (their finalization is queued)."""
    from chat.models import Conversation
    from chat.services import conversation_end

    idle_before = timezone.now() - timedelta(minutes=settings.CONVERSATION_IDLE_MINUTES)
    ended = 0
    for conversation in Conversation.objects.open().filter(last_activity_at__lt=idle_before):
        ended += conversation_end(conversation=conversation)
    return ended


@shared_task(name="chat.tasks.delete_expired_temporary_chats")
def delete_expired_temporary_chats() -> int:
    """Temporary chats go once unused for the user's temporary_chat_hours (default 24)."""
    from accounts.models import MemorySettings
    from chat.models import Conversation

    now = timezone.now()
    temporary = list(
        Conversation.objects.filter(temporary=True).only("pk", "user_id", "last_activity_at")
    )
    users = {c.user_id for c in temporary}
    settings_of = MemorySettings.objects.filter(user_id__in=users)
    hours = dict(settings_of.values_list("user_id", "temporary_chat_hours"))
    default_hours = MemorySettings._meta.get_field("temporary_chat_hours").default
    return _delete_unused(
        temporary, lambda c: now - timedelta(hours=hours.get(c.user_id, default_hours))
    )


@shared_task(name="chat.tasks.delete_old_conversations")
def delete_old_conversations() -> int:
    """Conversations inactive for RETENTION_CONVERSATION_DAYS go with their messages, turn episodes
    and summaries; the memories learned from them stay, without that provenance (they have their own
    limit)."""
    from chat.models import Conversation

    if not (days := settings.RETENTION_CONVERSATION_DAYS):
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = _delete_unused(
        Conversation.objects.filter(last_activity_at__lt=cutoff).only(
            "pk", "user_id", "last_activity_at"
        ),
        lambda c: cutoff,
    )
    if deleted:
        logger.info("retention deleted %d conversations", deleted)
    return deleted


def _delete_unused(conversations, unused_since) -> int:
    """Delete each conversation not used since `unused_since(conversation)` (checked again under its
    lock: a chat resumed meanwhile stays), keeping what it taught. Returns how many went."""
    from chat.models import Conversation
    from chat.services import conversation_delete

    ids = []
    for conversation in conversations:
        cutoff = unused_since(conversation)
        if conversation.last_activity_at < cutoff:
            ids.append(conversation.pk)
            conversation_delete(
                user=conversation.user_id,
                conversation=conversation,
                keep_memories=True,
                inactive_before=cutoff,
            )
    return len(ids) - Conversation.objects.filter(pk__in=ids).count()
