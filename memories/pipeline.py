"""The worker's services: what user messages teach, and what a conversation's end adds.

Idempotent, so a task run twice (or queued again by the sweep) changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.selectors import MemoryPolicy, memory_policies, memory_policy, memory_policy_in
from accounts.services import lock_users
from chat.models import Conversation, Message
from memories.consolidation import memory_apply
from memories.episodes import answerable, turn_embedding_text, turns_write
from memories.extraction import ExtractedItem, extract
from memories.models import Memory, MemoryRevision
from memories.sensitive import is_allowed
from memories.summaries import summary_write
from memories.tasks import process_message as process_message_task
from memoryweb.ai import llm
from memoryweb.ai.embeddings import embed_texts
from memoryweb.celery import enqueue
from vault import keys

logger = logging.getLogger(__name__)

# The first key of the advisory locks on messages being processed (the second is the message id).
MESSAGE_CLAIM_LOCKS = 0x6D77  # "mw"
# How long a message waits for another worker to finish the earlier message of its conversation
# (a batch, or one model call) before it leaves it to the sweep.
PREDECESSOR_WAIT_SECONDS = 120
# Batches one message may go through before it is done: each one processes earlier messages of
# its conversation (or waits for the worker that does); past that, the sweep takes over.
MAX_ROUNDS = 64


def _claim_key(message_id: int) -> list[int]:
    return [MESSAGE_CLAIM_LOCKS, message_id % 2**31]  # two int4 keys; ids past 2**31 may share one


@contextmanager
def message_claim(message_id: int) -> Iterator[bool]:
    """Whether this process may work on the message: a session advisory lock, held while it does.
    A second delivery of the same task finds it taken and leaves, so two never both extract; a
    worker that dies loses its connection and with it the lock, and the sweep queues it again."""
    key = _claim_key(message_id)
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


def claim_released(message_id: int, *, seconds: float) -> bool:
    """Wait, holding no claim, until whoever holds the message's claim lets go (False after
    `seconds`). Nothing waits while holding a claim, so waits never go round in a circle."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}"]
            )
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", _claim_key(message_id))
    except OperationalError:  # lock_timeout
        return False
    return True


def batch_size() -> int:
    """How many waiting messages one batch takes. With a model extracting, one: each of its calls
    takes seconds, and a batch would keep every message in it waiting for the slowest."""
    return 1 if llm.is_configured() else settings.MEMORY_BATCH_SIZE


@dataclass
class MessagePlan:
    """What a message will write, worked out before any lock (the slow part: the extractor, and
    what the embedding model will be given)."""

    message: Message
    items: list[ExtractedItem]
    extractor: str
    sources: dict[int, Message]  # the earlier messages an item may cite
    keep_episode: bool
    texts: list[str]  # to embed: the turn, then each item
    answered: Message | None = None  # the message the turn answers (`message_answered`)
    vectors: list[list[float]] = field(default_factory=list)

    @property
    def forgets(self) -> bool:
        return any(item.op == "forget" for item in self.items)


@dataclass
class Batch:
    """Messages claimed together, oldest first, and what became of them."""

    messages: list[Message]
    blocked_by: int | None = None  # an earlier message of the asked one's conversation, held
    processed: set[int] = field(default_factory=set)
    cut: list[Message] = field(default_factory=list)  # claimed, left for a later batch
    failed: dict[int, Exception] = field(default_factory=dict)  # by conversation id
    errors: dict[int, Exception] = field(default_factory=dict)  # by message id


def message_process(*, message_id: int) -> bool:
    """Learn from a user message exactly once (its memories and its turn's episode), together with
    the other user messages waiting: their turns embedded in one call, their writes in one
    transaction. A conversation's messages are written in the order they were said.

    Returns True when this call processed `message_id`; False when it was done already, is another
    worker's, or taught nothing (memory off, excluded).
    """
    for _ in range(MAX_ROUNDS):
        batch = _batch_round(message_id)
        if batch is None or message_id in batch.processed:
            return batch is not None
        if message_id in batch.errors:
            raise batch.errors[message_id]
        if batch.blocked_by is not None:
            # Another worker has an earlier message of the conversation: this one follows it.
            if not claim_released(batch.blocked_by, seconds=PREDECESSOR_WAIT_SECONDS):
                logger.info("message %s waited too long for an earlier one; leaving it", message_id)
                return False
        elif not any(m.pk == message_id for m in batch.cut):
            return False  # taught nothing (memory off, excluded) or gone
    logger.warning(
        "message %s is still waiting after %d batches; leaving it", message_id, MAX_ROUNDS
    )
    return False


def _batch_round(message_id: int) -> Batch | None:
    """One batch for the asked message: None when it is not there to process, or another worker
    holds it (a second delivery of its task)."""
    # Done already (most often by another task's batch): one light query, no claim.
    asked = (
        Message.objects.unprocessed()
        .filter(pk=message_id)
        .only("id", "conversation_id", "created_at")
        .first()
    )
    if asked is None:
        return None
    with message_claim(message_id) as claimed:
        if not claimed:
            logger.info("message %s is being processed by another task; leaving it", message_id)
            return None
        with ExitStack() as claims:
            batch = _batch_claim(asked, claims, batch_size())
            if batch.blocked_by is None:
                _batch_process(batch)
    _hand_on(batch, asked_id=message_id)
    return batch


def _batch_claim(asked: Message, claims: ExitStack, size: int) -> Batch:
    """The asked message and up to `size` others waiting, claimed, oldest first. The asked one's
    conversation comes from its oldest waiting message (all claimed, or none: `blocked_by`); any
    other's only as a run from its oldest waiting one. So no message is written before an earlier
    one of its conversation."""
    earlier = list(
        Message.objects.unprocessed()
        .filter(conversation_id=asked.conversation_id, created_at__lte=asked.created_at)
        .exclude(created_at=asked.created_at, pk__gt=asked.pk)
        .values_list("pk", flat=True)[:size]
    )
    for pk in earlier:
        if pk != asked.pk and not claims.enter_context(message_claim(pk)):
            return Batch(messages=[], blocked_by=pk)
    claimed = set(earlier)
    if len(claimed) < size:
        claimed.update(_claim_waiting(claims, exclude=claimed, count=size - len(claimed)))
    # Read again under the claims: another worker may have processed some in the meantime.
    messages = list(
        Message.objects.unprocessed().filter(pk__in=claimed).select_related("conversation__user")
    )
    # More of its conversation waits before it than a batch takes: its turn comes next batch (or
    # another worker processed it meanwhile, which the next round finds).
    cut = [] if asked.pk in claimed else [asked]
    return Batch(messages=messages, cut=cut)


def _claim_waiting(claims: ExitStack, *, exclude: set[int], count: int) -> list[int]:
    """Up to `count` of the oldest waiting messages, claimed. A conversation whose waiting message
    another worker holds is skipped from there on: its later messages wait for that one."""
    waiting = (
        Message.objects.unprocessed()
        .exclude(pk__in=exclude)
        .values_list("pk", "conversation_id")[: 2 * count]
    )
    claimed, blocked = [], set()
    for pk, conversation_id in waiting:
        if len(claimed) >= count:
            break
        if conversation_id in blocked:
            continue
        if claims.enter_context(message_claim(pk)):
            claimed.append(pk)
        else:
            blocked.add(conversation_id)
    return claimed


def _batch_process(batch: Batch) -> None:
    """Plan each message, embed them all in one call, and write them in one transaction."""
    plans = _batch_plan(batch)
    texts = [text for plan in plans for text in plan.texts]
    vectors = iter(embed_texts(texts))  # an error here writes nothing: the sweep retries them all
    for plan in plans:
        plan.vectors = [next(vectors) for _ in plan.texts]
    with transaction.atomic():
        # Every user of the batch is locked now, in one order: two batches never wait on each other
        # in a circle. The consents are read again under the locks: one may have been withdrawn
        # while the model worked.
        user_ids = sorted({plan.message.conversation.user_id for plan in plans})
        lock_users(user_ids)
        with keys.locked_users_keys(user_ids):  # their data keys read once, under the locks
            policies = memory_policies(user_ids=user_ids)
            try:
                with transaction.atomic():  # the whole batch at once, the way it mostly goes
                    batch.processed.update(messages_write(plans, policies))
            except Exception:
                # Something failed: again message by message, each in a savepoint of its own, so
                # that one message's error spares the rest (and the rest of its conversation waits).
                for plan in plans:
                    if plan.message.conversation_id in batch.failed:
                        continue
                    try:
                        with transaction.atomic():
                            batch.processed.update(messages_write([plan], policies))
                    except Exception as error:
                        _batch_fail(batch, plan.message, error)


def _batch_plan(batch: Batch) -> list[MessagePlan]:
    """The plans of the batch's messages, in order. A conversation stops at a message that says
    "forget ...": it is excluded from memory when written, and so must be from what follows. What
    teaches nothing (excluded from memory, or memory off) is marked processed at once."""
    policies = memory_policies(user_ids={m.conversation.user_id for m in batch.messages})
    earlier = _earlier_messages(batch.messages)
    plans, stopped, done = [], set(), []
    for message in batch.messages:
        conversation_id = message.conversation_id
        if conversation_id in batch.failed:
            continue
        if conversation_id in stopped:
            batch.cut.append(message)
            continue
        try:
            plan = message_plan(
                message, memory_policy_in(message.conversation, policies), *earlier[message.pk]
            )
        except Exception as error:
            _batch_fail(batch, message, error)
            continue
        if plan is None:
            done.append(message.pk)
            continue
        plans.append(plan)
        if plan.forgets:
            stopped.add(conversation_id)
    # learn nothing from these, and don't ask again
    Message.objects.filter(pk__in=done, processed_at__isnull=True).update(
        processed_at=timezone.now()
    )
    return plans


# The messages a plan reads, for every message of a batch in one statement: the extractor's
# history (the user's last few messages before it; what an erasure excluded from memory never
# reaches an extractor again, not even as context) and the message just before it, either side
# (`message_answered`).
EARLIER_SQL = """
SELECT asked.id, earlier.id, earlier.history
FROM chat_message asked
CROSS JOIN LATERAL (
    (SELECT m.id, true AS history FROM chat_message m
     WHERE m.conversation_id = asked.conversation_id AND m.created_at < asked.created_at
       AND m.role = %(user)s AND NOT m.excluded_from_memory
     ORDER BY m.created_at DESC, m.id DESC LIMIT %(history)s)
    UNION ALL
    (SELECT m.id, false FROM chat_message m
     WHERE m.conversation_id = asked.conversation_id AND m.created_at < asked.created_at
     ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
) earlier
WHERE asked.id = ANY(%(ids)s)
"""
HISTORY_MESSAGES = 4  # earlier user messages the extractor is given as context


def _earlier_messages(messages: list[Message]) -> dict[int, tuple[list[Message], Message | None]]:
    """By message id: its history for the extractor, oldest first, and the message before it."""
    with connection.cursor() as cursor:
        cursor.execute(
            EARLIER_SQL,
            {
                "ids": [m.pk for m in messages],
                "user": Message.Role.USER,
                "history": HISTORY_MESSAGES,
            },
        )
        rows = cursor.fetchall()
    loaded = Message.objects.in_bulk({earlier_id for _, earlier_id, _ in rows})
    found = {m.pk: ([], None) for m in messages}
    for asked_id, earlier_id, history in rows:
        if history:
            found[asked_id][0].insert(0, loaded[earlier_id])  # newest came first
        else:
            found[asked_id] = found[asked_id][0], loaded[earlier_id]
    return found


def _batch_fail(batch: Batch, message: Message, error: Exception) -> None:
    """The message stays unprocessed, and so does the rest of its conversation in this batch; the
    sweep queues it again."""
    logger.error("processing message %s failed; it is left for a retry", message.pk, exc_info=error)
    batch.failed[message.conversation_id] = error
    batch.errors[message.pk] = error


def _hand_on(batch: Batch, *, asked_id: int) -> None:
    """Queue what the batch claimed but left for later (one per conversation: its batch takes the
    rest), once the claims are let go. The asked message goes round again in its own task."""
    handed = set()
    for message in batch.cut:
        if message.pk != asked_id and message.conversation_id not in handed:
            handed.add(message.conversation_id)
            enqueue(process_message_task, message.pk)


def message_plan(
    message: Message,
    policy: MemoryPolicy,
    history: list[Message],
    previous: Message | None,
) -> MessagePlan | None:
    """Extract and filter what a message says, before any lock, given the messages before it
    (`_earlier_messages`). None when it teaches nothing (excluded from memory, or memory off for
    its conversation: a temporary chat, consent withdrawn)."""
    if message.excluded_from_memory:  # erased before it was processed: learn nothing from it
        return None
    if not policy.extract:
        return None
    try:
        # Relative dates ("next Friday") are resolved on the user's clock.
        now = message.conversation.user.local(message.created_at)
        items, extractor = extract(
            message.content, [(m.pk, m.content) for m in history], now=now, message_id=message.pk
        )
    except Exception:  # a bug in a rule must not leave the message to be retried for ever
        logger.exception("extraction failed for message %s; storing its episode only", message.pk)
        items, extractor = [], "none (extractor error)"
    # Special categories the user has not opted in to are not stored: not as memories, not as an
    # episode.
    items = [item for item in items if is_allowed(item.text, policy.sensitive_categories)]
    answered = answerable(previous, policy.sensitive_categories)
    return MessagePlan(
        message=message,
        items=items,
        extractor=extractor,
        sources={m.pk: m for m in history},
        keep_episode=is_allowed(message.content, policy.sensitive_categories),
        texts=[turn_embedding_text(message)] + [i.text for i in items],
        answered=answered,
    )


def messages_write(plans: list[MessagePlan], policies: dict[int, MemoryPolicy]) -> list[int]:
    """Write what the plans say, in the caller's transaction with their users locked
    (`lock_users`), and return the ids of the messages written: not those processed meanwhile (a
    duplicate task), nor anything memory was switched off for while the model worked (`policies`,
    read under the locks)."""
    unprocessed = set(
        Message.objects.select_for_update()
        .filter(pk__in=[plan.message.pk for plan in plans], processed_at__isnull=True)
        .values_list("pk", flat=True)
    )
    written, forgetting, turns = [], [], []
    for plan in plans:
        message, items, vectors = plan.message, plan.items, plan.vectors
        if message.pk not in unprocessed:
            continue
        policy = memory_policy_in(message.conversation, policies)
        pairs = [
            (item, vector)
            for item, vector in zip(items, vectors[1:], strict=True)
            if policy.extract and is_allowed(item.text, policy.sensitive_categories)
        ]
        for item, vector in pairs:  # in order: forget, retract, add
            if item.op == "forget":
                continue  # a chat never erases: its reply showed what matches, the portal confirms
            memory_apply(
                user=message.conversation.user,
                item=item,
                embedding=vector,
                message=plan.sources.get(item.message_id, message),  # the message that supports it
                source=Memory.Source.STATED,
                actor=MemoryRevision.Actor.EXTRACTOR,
            )
        # what a "forget ..." turn says is not kept either
        if any(item.op == "forget" for item, _ in pairs):
            forgetting.append(message.pk)
        elif (
            plan.keep_episode
            and policy.extract
            and is_allowed(message.content, policy.sensitive_categories)
        ):
            turns.append((message, vectors[0], plan.answered))
        written.append(message.pk)
    turns_write(turns)
    Message.objects.filter(pk__in=written).update(processed_at=timezone.now())
    if forgetting:
        Message.objects.filter(pk__in=forgetting).update(excluded_from_memory=True)
    for plan in plans:
        if plan.message.pk in unprocessed:
            logger.info(
                "processed message %s: %d items by %s",
                plan.message.pk,
                len(plan.items),
                plan.extractor,
            )
    return written


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
