"""The worker's services: what a user message teaches, and what a conversation's end adds.

Idempotent, so a task run twice (or queued again by the sweep) changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.selectors import memory_policy
from accounts.services import lock_user
from chat.models import Conversation, Message
from memories.consolidation import memory_apply
from memories.episodes import message_answered, turn_embedding_text, turn_upsert
from memories.extraction import extract
from memories.models import Memory, MemoryRevision
from memories.sensitive import is_allowed
from memories.summaries import summary_write
from memoryweb.ai.embeddings import embed_texts

logger = logging.getLogger(__name__)

# The first key of the advisory locks on messages being processed (the second is the message id).
MESSAGE_CLAIM_LOCKS = 0x6D77  # "mw"


@contextmanager
def message_claim(message_id: int) -> Iterator[bool]:
    """Whether this process may work on the message: a session advisory lock, held while it does.
    A second delivery of the same task finds it taken and leaves, so two never both extract; a
    worker that dies loses its connection and with it the lock, and the sweep queues it again."""
    key = [MESSAGE_CLAIM_LOCKS, message_id % 2**31]  # two int4 keys; ids past 2**31 may share one
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        claimed = cursor.fetchone()[0]
    try:
        yield claimed
    finally:
        if claimed:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
            except DatabaseError:  # the connection is gone, and the lock with it
                logger.warning("could not release the claim on message %s", message_id)


def message_process(*, message_id: int) -> bool:
    """Extract memories from a user message and embed its turn as an episode, exactly once.

    Slow work (the model, embeddings) runs outside the transaction, under the message's claim; the
    writes then happen under a lock on the message, and a message already processed (by a duplicate
    task) is left alone. Returns True when this call did the processing.
    """
    with message_claim(message_id) as claimed:
        if not claimed:
            logger.info("message %s is being processed by another task; leaving it", message_id)
            return False
        return _message_process(message_id)


def _message_process(message_id: int) -> bool:
    message = Message.objects.select_related("conversation__user").filter(pk=message_id).first()
    if message is None or message.role != Message.Role.USER or message.processed_at is not None:
        return False
    if message.excluded_from_memory:  # erased before it was processed: learn nothing from it
        Message.objects.filter(pk=message.pk, processed_at__isnull=True).update(
            processed_at=timezone.now()
        )
        return False
    policy = memory_policy(user=message.conversation.user, conversation=message.conversation)
    if not policy.extract:
        # Memory off, consent withdrawn, or a temporary chat: learn nothing, and don't ask again.
        Message.objects.filter(pk=message.pk, processed_at__isnull=True).update(
            processed_at=timezone.now()
        )
        return False
    # What an erasure excluded from memory never reaches an extractor again, not even as context.
    earlier = list(
        message.conversation.messages.filter(
            role=Message.Role.USER, created_at__lt=message.created_at, excluded_from_memory=False
        ).order_by("-created_at")[:4]
    )[::-1]
    history = [(m.pk, m.content) for m in earlier]
    try:
        # Relative dates ("next Friday") are resolved on the user's clock.
        now = message.conversation.user.local(message.created_at)
        items, extractor = extract(message.content, history, now=now, message_id=message.pk)
    except Exception:  # a bug in a rule must not leave the message to be retried for ever
        logger.exception("extraction failed for message %s; storing its episode only", message.pk)
        items, extractor = [], "none (extractor error)"
    sources = {m.pk: m for m in earlier}
    # Special categories the user has not opted in to are not stored: not as memories, not as an
    # episode.
    items = [item for item in items if is_allowed(item.text, policy.sensitive_categories)]
    keep_episode = is_allowed(message.content, policy.sensitive_categories)
    answered = message_answered(message, policy.sensitive_categories)
    vectors = embed_texts([turn_embedding_text(message, answered)] + [i.text for i in items])
    with transaction.atomic():
        user = message.conversation.user
        # One writer per user at a time (the portal's "remember this", erasure and digests take it
        # too), and the consent is checked again now: it may have been withdrawn while the model was
        # working.
        lock_user(user)
        locked = (
            Message.objects.select_for_update()
            .filter(pk=message.pk, processed_at__isnull=True)
            .first()
        )
        if locked is None:
            return False
        policy = memory_policy(user=user, conversation=message.conversation)
        pairs = [
            (item, vector)
            for item, vector in zip(items, vectors[1:], strict=True)
            if policy.extract and is_allowed(item.text, policy.sensitive_categories)
        ]
        keep_episode = (
            keep_episode
            and policy.extract
            and is_allowed(message.content, policy.sensitive_categories)
        )
        for item, vector in pairs:  # in order: forget, retract, add
            if item.op == "forget":
                continue  # a chat never erases: its reply showed what matches, the portal confirms
            memory_apply(
                user=user,
                item=item,
                embedding=vector,
                message=sources.get(item.message_id, message),  # the message that supports it
                source=Memory.Source.STATED,
                actor=MemoryRevision.Actor.EXTRACTOR,
            )
        # what a "forget ..." turn says is not kept either
        if any(item.op == "forget" for item, _ in pairs):
            locked.excluded_from_memory = True
        elif keep_episode:
            turn_upsert(message, vectors[0], answered)
        locked.processed_at = timezone.now()
        locked.save(update_fields=["processed_at", "excluded_from_memory"])
    logger.info("processed message %s: %d items by %s", message.pk, len(items), extractor)
    return True


def conversation_finalize(*, conversation_id: int) -> bool:
    """After a conversation ended: process whatever of it is unprocessed, summarize it (an embedded
    summary episode), then mark it finalized."""
    conversation = Conversation.objects.filter(pk=conversation_id, ended_at__isnull=False).first()
    if conversation is None or conversation.finalized_at is not None:
        return False
    for message_id in conversation.messages.unprocessed().values_list("pk", flat=True):
        message_process(message_id=message_id)
    policy = memory_policy(user=conversation.user, conversation=conversation)
    if policy.extract:
        summary_write(conversation=conversation, policy=policy)
    Conversation.objects.filter(pk=conversation.pk, finalized_at__isnull=True).update(
        finalized_at=timezone.now()
    )
    return True
