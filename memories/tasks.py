"""Celery tasks: thin interfaces that take ids and call idempotent services."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chat.models import Conversation, Message
from memories import services, summaries
from memories.retention import apply_retention

logger = logging.getLogger(__name__)

# A task enqueued this recently may still be on its way: the sweep leaves it alone.
SWEEP_GRACE = timedelta(minutes=2)  # work younger than this is left to its own task
REQUEUE_AFTER = timedelta(minutes=10)  # a task queued (by its turn or a sweep) is queued again after this


@worker_process_init.connect
def _warm_up(**kwargs) -> None:
    from memoryweb.ai.embeddings import warm_up

    warm_up()


@shared_task(name="memories.tasks.process_message", acks_late=True)
def process_message(message_id: int) -> bool:
    return services.message_process(message_id=message_id)


@shared_task(name="memories.tasks.finalize_conversation", acks_late=True)
def finalize_conversation(conversation_id: int) -> bool:
    return services.conversation_finalize(conversation_id=conversation_id)


@shared_task(name="memories.tasks.summarize_conversation", acks_late=True)
def summarize_conversation(conversation_id: int) -> bool:
    """Rewrite an ended conversation's summary (after part of it was forgotten)."""
    conversation = Conversation.objects.filter(pk=conversation_id, ended_at__isnull=False).first()
    return conversation is not None and summaries.conversation_summarize(conversation=conversation) is not None


@shared_task(name="memories.tasks.digest_user", acks_late=True)
def digest_user(user_id: int, period_end: str) -> bool:
    from accounts.models import User

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    return summaries.user_digest(user=user, period_end=datetime.fromisoformat(period_end)) is not None


@shared_task(name="memories.tasks.digest_all")
def digest_all() -> int:
    """Queue this period's digest for every user who said something in it."""
    now = timezone.now()
    user_ids = list(summaries.users_due_a_digest(now).values_list("pk", flat=True))
    for user_id in user_ids:
        digest_user.delay(user_id, now.isoformat())
    return len(user_ids)


def _delete_expired_temporary_chats(now) -> int:
    """Temporary chats go once unused for the user's temporary_chat_hours (default 24)."""
    from accounts.models import MemorySettings

    temporary = list(Conversation.objects.filter(temporary=True).only("pk", "user_id", "last_activity_at"))
    users = {c.user_id for c in temporary}
    hours = dict(MemorySettings.objects.filter(user_id__in=users).values_list("user_id", "temporary_chat_hours"))
    default_hours = MemorySettings._meta.get_field("temporary_chat_hours").default
    expired = [
        c.pk for c in temporary if c.last_activity_at < now - timedelta(hours=hours.get(c.user_id, default_hours))
    ]
    Conversation.objects.filter(pk__in=expired).delete()
    return len(expired)


@shared_task(name="memories.tasks.sweep")
def sweep() -> dict:
    """Find work a lost broker message left undone (state lives in Postgres) and queue it again;
    end conversations idle for CONVERSATION_IDLE_MINUTES."""
    from chat.services import conversation_end

    now = timezone.now()
    idle_before = now - timedelta(minutes=settings.CONVERSATION_IDLE_MINUTES)
    ended = 0
    for conversation in Conversation.objects.open().filter(last_activity_at__lt=idle_before):
        conversation_end(conversation=conversation)
        ended += 1
    stale, lapsed = now - SWEEP_GRACE, now - REQUEUE_AFTER
    messages = _claim(
        Message.objects.unprocessed().filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lapsed), created_at__lt=stale),
        "queued_at",
        now,
    )
    for message_id in messages:
        process_message.delay(message_id)
    unfinished = Conversation.objects.filter(finalized_at__isnull=True, ended_at__lt=stale)
    conversations = _claim(
        unfinished.filter(Q(finalize_queued_at__isnull=True) | Q(finalize_queued_at__lt=lapsed)),
        "finalize_queued_at",
        now,
    )
    for conversation_id in conversations:
        finalize_conversation.delay(conversation_id)
    result = {
        "ended": ended,
        "messages": len(messages),
        "conversations": len(conversations),
        "temporary_deleted": _delete_expired_temporary_chats(now),
        **{f"retention_{k}": v for k, v in apply_retention(now).items()},
    }
    if any(result.values()):
        logger.info("sweep re-queued %s", result)
    return result


def _claim(queryset, field: str, now) -> list[int]:
    """Mark the rows as queued `now` and return their ids. Rows another sweep is claiming are skipped,
    and it finds them queued afterwards: two sweeps at once never queue the same work twice."""
    with transaction.atomic():
        ids = list(queryset.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
        queryset.model.objects.filter(pk__in=ids).update(**{field: now})
    return ids
