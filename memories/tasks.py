"""Celery tasks of the memory engine: thin interfaces that take ids and call idempotent services.

Each task imports its service inside its body, so that services can import the tasks they queue.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from memoryweb.ai.embeddings import warm_up
from memoryweb.celery import enqueue

logger = logging.getLogger(__name__)

# An ended conversation younger than this is left to its own finalize task; one queued (by its end
# or a sweep) is queued again after REQUEUE_AFTER. A user message is queued again once it has waited
# MEMORY_REQUEUE_SECONDS since it was last queued (settings): within two minutes of a lost task.
SWEEP_GRACE = timedelta(minutes=2)
REQUEUE_AFTER = timedelta(minutes=10)


@worker_process_init.connect
def _warm_up(**kwargs) -> None:
    """Each process that runs tasks loads the embedding model as it starts, beside its work: a
    worker started again after a crash takes tasks (and stops on Ctrl-C) at once; a task that needs
    the model waits for it. Prefork and solo pools signal here."""
    threading.Thread(target=warm_up, name="embedding warm-up", daemon=True).start()


@worker_ready.connect
def _warm_up_threads_pool(sender, **kwargs) -> None:
    """The threads pool (the settings' default) runs tasks in the worker's own process."""
    if type(sender.pool).__module__ == "celery.concurrency.threads":
        _warm_up()


@shared_task(name="memories.tasks.process_message", acks_late=True)
def process_message(message_id: int) -> bool:
    from memories.pipeline import message_process

    return message_process(message_id=message_id)


@shared_task(name="memories.tasks.finalize_conversation", acks_late=True)
def finalize_conversation(conversation_id: int) -> bool:
    from memories.pipeline import conversation_finalize

    return conversation_finalize(conversation_id=conversation_id)


@shared_task(name="memories.tasks.summarize_conversation", acks_late=True)
def summarize_conversation(conversation_id: int) -> bool:
    """Rewrite an ended conversation's summary (after part of it was forgotten)."""
    from chat.models import Conversation
    from memories.summaries import summary_write

    conversation = Conversation.objects.filter(pk=conversation_id, ended_at__isnull=False).first()
    return conversation is not None and summary_write(conversation=conversation) is not None


@shared_task(name="memories.tasks.digest_user", acks_late=True)
def digest_user(user_id: int, period_end: str) -> bool:
    from accounts.models import User
    from memories.summaries import user_digest

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    return user_digest(user=user, period_end=datetime.fromisoformat(period_end)) is not None


@shared_task(name="memories.tasks.fill_vectors", acks_late=True)
def fill_vectors(user_id: int) -> int:
    """Embed again what an erasure left without a vector (outside the user's lock)."""
    from memories.episodes import vectors_fill

    return vectors_fill(user_id=user_id)


@shared_task(name="memories.tasks.digest_all")
def digest_all() -> int:
    """Queue this period's digest for every user who said something in it."""
    from memories.summaries import users_due_a_digest

    now = timezone.now()
    user_ids = list(users_due_a_digest(now).values_list("pk", flat=True))
    for user_id in user_ids:
        enqueue(digest_user, user_id, now.isoformat())
    return len(user_ids)


@shared_task(name="memories.tasks.sweep")
def sweep() -> dict:
    """Find the work a lost broker message or a killed worker left undone (its state lives in
    Postgres) and queue it again: user messages not processed, ended conversations not finalized.
    A message still in a worker's hands is queued again too; that delivery finds it claimed."""
    from chat.models import Conversation, Message

    now = timezone.now()
    stale, lapsed = now - SWEEP_GRACE, now - REQUEUE_AFTER
    lost = now - timedelta(seconds=settings.MEMORY_REQUEUE_SECONDS)
    messages = _claim(
        Message.objects.unprocessed().filter(
            Q(queued_at__isnull=True) | Q(queued_at__lt=lost), created_at__lt=lost
        ),
        "queued_at",
        now,
    )
    for message_id in messages:
        enqueue(process_message, message_id)
    unfinished = Conversation.objects.filter(finalized_at__isnull=True, ended_at__lt=stale)
    conversations = _claim(
        unfinished.filter(Q(finalize_queued_at__isnull=True) | Q(finalize_queued_at__lt=lapsed)),
        "finalize_queued_at",
        now,
    )
    for conversation_id in conversations:
        enqueue(finalize_conversation, conversation_id)
    result = {"messages": len(messages), "conversations": len(conversations)}
    if any(result.values()):
        logger.info("sweep re-queued %s", result)
    return result


@shared_task(name="memories.tasks.apply_retention")
def apply_retention() -> dict[str, int]:
    """Delete the memories and digests past their retention limits."""
    from memories.retention import apply_retention as retention_apply

    return retention_apply(timezone.now())


def _claim(queryset, field: str, now) -> list[int]:
    """Mark the rows as queued `now` and return their ids. Rows another sweep is claiming are
    skipped, and it finds them queued afterwards: two sweeps at once never queue the same work
    twice."""
    with transaction.atomic():
        ids = list(
            queryset.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)
        )
        queryset.model.objects.filter(pk__in=ids).update(**{field: now})
    return ids
