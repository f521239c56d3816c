"""STORE: writes to memory. Idempotent, so a task run twice (or re-queued by the sweep) changes nothing."""

from __future__ import annotations

import dataclasses
import logging
import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.selectors import memory_policy
from accounts.services import lock_user
from chat.models import Conversation, Message
from memories.consolidation import memory_apply, memory_rewrite
from memories.extraction import ExtractedItem, extract
from memories.models import Episode, Memory, MemoryRevision
from memories.sensitive import not_allowed
from memories.summaries import conversation_summarize
from memoryweb.ai.embeddings import EmbeddingError, embed_texts

logger = logging.getLogger(__name__)


def message_process(*, message_id: int) -> bool:
    """Extract memories from a user message and embed its turn as an episode, exactly once.

    Slow work (the model, embeddings) runs outside the transaction; the writes then happen under a lock
    on the message, and a message already processed (by a duplicate task) is left alone.
    Returns True when this call did the processing.
    """
    message = Message.objects.select_related("conversation__user").filter(pk=message_id).first()
    if message is None or message.role != Message.Role.USER or message.processed_at is not None:
        return False
    policy = memory_policy(user=message.conversation.user, conversation=message.conversation)
    if not policy.extract:
        # Memory off, consent withdrawn, or a temporary chat: learn nothing, and don't ask again.
        Message.objects.filter(pk=message.pk, processed_at__isnull=True).update(processed_at=timezone.now())
        return False
    earlier = list(
        message.conversation.messages.filter(role=Message.Role.USER, created_at__lt=message.created_at).order_by(
            "-created_at"
        )[:4]
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
    # Special categories the user has not opted in to are not stored: not as memories, not as an episode.
    items = [item for item in items if not not_allowed(item.text, policy.sensitive_categories)]
    keep_episode = not not_allowed(message.content, policy.sensitive_categories)
    answered = _previous_message(message, policy.sensitive_categories)
    vectors = embed_texts([message_episode_embedding_text(message, answered)] + [i.text for i in items])
    with transaction.atomic():
        user = message.conversation.user
        # One writer per user at a time (the portal's "remember this", erasure and digests take it too),
        # and the consent is checked again now: it may have been withdrawn while the model was working.
        lock_user(user)
        locked = Message.objects.select_for_update().filter(pk=message.pk, processed_at__isnull=True).first()
        if locked is None:
            return False
        policy = memory_policy(user=user, conversation=message.conversation)
        pairs = [
            (item, vector)
            for item, vector in zip(items, vectors[1:], strict=True)
            if policy.extract and not not_allowed(item.text, policy.sensitive_categories)
        ]
        keep_episode = keep_episode and policy.extract and not not_allowed(message.content, policy.sensitive_categories)
        for item, vector in pairs:  # in order: forget, retract, add
            memory_apply(
                user=user,
                item=item,
                embedding=vector,
                message=sources.get(item.message_id, message),  # the message that supports it
                source=Memory.Source.STATED,
                actor=MemoryRevision.Actor.EXTRACTOR,
            )
        if any(item.op == "forget" for item, _ in pairs):  # what a "forget ..." turn says is not kept either
            locked.excluded_from_memory = True
        elif keep_episode:
            _episode_upsert(message, vectors[0])
        locked.processed_at = timezone.now()
        locked.save(update_fields=["processed_at", "excluded_from_memory"])
    logger.info("processed message %s: %d items by %s", message.pk, len(items), extractor)
    return True


def message_episode_text(message: Message) -> str:
    speaker = message.speaker or "User"
    return f"{speaker}: {message.content}"


EPISODE_CONTEXT_CHARS = 300  # of the message a turn answers, embedded with it


def message_episode_embedding_text(message: Message, answered: Message | None = None) -> str:
    """What a turn's episode is embedded as: the turn, then the message just before it as context.

    A reply means little alone ("A sunrise!"; "Yes, last Friday"): with the question it answers, its
    vector is close to questions about it. The episode's text and sources stay the turn alone."""
    text = message_episode_text(message)
    if answered is None:
        return text
    speaker = answered.speaker or ("User" if answered.role == Message.Role.USER else "Assistant")
    return f"{text}\n(In reply to {speaker}: {answered.content[:EPISODE_CONTEXT_CHARS]})"


def _previous_message(message: Message, allowed: frozenset[str]) -> Message | None:
    """The message said just before `message` in its conversation (either side), unless the user had
    it forgotten or it touches a special category the user has not opted in to."""
    previous = (
        message.conversation.messages.filter(created_at__lt=message.created_at)
        .order_by("-created_at", "-id")
        .only("role", "speaker", "content", "excluded_from_memory")
        .first()
    )
    if previous is None or previous.excluded_from_memory or not_allowed(previous.content, allowed):
        return None
    return previous


def _episode_upsert(message: Message, embedding: list[float]) -> Episode:
    episode, _ = Episode.objects.update_or_create(
        user=message.conversation.user,
        key=f"turn:{message.pk}",
        defaults={
            "conversation": message.conversation,
            "kind": Episode.Kind.TURN,
            "text": message_episode_text(message),
            "started_at": message.created_at,
            "ended_at": message.created_at,
            "embedding": embedding,
        },
    )
    episode.messages.set([message])
    return episode


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
        conversation_summarize(conversation=conversation, policy=policy)
    Conversation.objects.filter(pk=conversation.pk, finalized_at__isnull=True).update(finalized_at=timezone.now())
    return True


# --- the user's own changes ("What I remember") ---------------------------------------------------------


@transaction.atomic
def memory_remember(*, user, kind: str, text: str) -> tuple[Memory | None, str]:
    """ "Remember this": a memory the user adds by hand, pinned, through the same consolidation as
    extraction (so stating a known thing reinforces it and a new value supersedes the old one)."""
    lock_user(user)
    item = ExtractedItem(kind=kind, subject="", text=text.strip(), confidence=1.0, pinned=True)
    subject = memory_subject_for(user=user, item=item)
    item = ExtractedItem(kind=kind, subject=subject, text=item.text, confidence=1.0, pinned=True)
    [vector] = embed_texts([item.text])
    return memory_apply(
        user=user,
        item=item,
        embedding=vector,
        message=None,
        source=Memory.Source.STATED,
        actor=MemoryRevision.Actor.USER,
    )


def memory_subject_for(*, user, item: ExtractedItem) -> str:
    """A subject for hand-written text ("User lives in Berlin"): what the rules make of it said in the
    first person ("I live in Berlin"), so that it can supersede a known value; else one of its own."""
    from memories.extraction import extract_with_rules, fingerprint

    found = [i for i in extract_with_rules(_first_person(item.text)) if i.kind == item.kind]
    return found[0].subject if found else "note:" + fingerprint(item.text)[:16]


def _first_person(text: str) -> str:
    text = re.sub(r"^(?:the )?user is\b", "I am", text, flags=re.I)
    text = re.sub(r"^(?:the )?user's\b", "My", text, flags=re.I)
    text = re.sub(r"^(?:the )?user has\b", "I have", text, flags=re.I)
    return re.sub(r"^(?:the )?user (\w+)\b", lambda m: "I " + _base_form(m.group(1)), text, flags=re.I)


def _base_form(verb: str) -> str:
    """'lives' -> 'live', 'watches' -> 'watch', 'goes' -> 'go', 'studies' -> 'study'."""
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb


@transaction.atomic
def memory_edit(*, memory: Memory, text: str) -> Memory:
    """The user corrects a memory's text: re-embedded, and the change kept in its history.
    Raises ValidationError when another current memory already says the same."""
    old_text, text = memory.text, text.strip()
    if text == old_text:
        return memory
    if Memory.objects.for_user(memory.user_id).saying(memory.kind, text).exclude(pk=memory.pk).exists():
        raise ValidationError("You already have a memory that says this.")
    [vector] = embed_texts([text])
    memory_rewrite(
        memory,
        text,
        vector,
        action="edit",
        actor=MemoryRevision.Actor.USER,
        confidence=1.0,
        source=Memory.Source.STATED,
    )
    return memory


def memory_changes_undo(*, user, message_ids) -> int:
    """The in-place rewrites (UPDATE: the same fact, richer) these messages made to memories that stay are
    undone: such a memory gets back the text it had before them, when nothing rewrote it since (then
    it is left as it is); when another current memory says that earlier text already, the rewritten one
    is deleted (its other sources are the other memory's too). Returns how many were undone. Call inside
    a transaction, under lock_user, before the messages go."""

    message_ids = set(message_ids)
    rewritten = MemoryRevision.objects.filter(memory__user=user, action="update", message_id__in=message_ids)
    undone = 0
    for memory in Memory.objects.for_user(user).filter(pk__in=rewritten.values("memory_id")).defer("embedding"):
        changes = list(memory.revisions.filter(action__in=("update", "edit")).order_by("created_at", "id"))
        run = []  # the last changes of the text, if they all came from these messages
        while changes and changes[-1].action == "update" and changes[-1].message_id in message_ids:
            run.append(changes.pop())
        if not run or (earlier := run[-1].old_text) in ("", memory.text):
            continue
        undone += 1
        same = Memory.objects.for_user(user).saying(memory.kind, earlier).exclude(pk=memory.pk)
        if memory.valid_until is None and (other := same.first()) is not None:
            other.source_messages.add(*memory.source_messages.exclude(pk__in=message_ids))
            memory.delete()
            continue
        try:
            [vector] = embed_texts([earlier])
        except EmbeddingError:  # the deletion goes on; the memory is found by its words until re-embedded
            vector = None
        memory_rewrite(memory, earlier, vector, action="undo", actor=MemoryRevision.Actor.USER, keep_old_text=False)
    return undone


def memory_set_use(*, memory: Memory, use_in_context: bool) -> None:
    """ "Don't use this" (False): kept and shown, never injected; True undoes it."""
    if memory.use_in_context != use_in_context:
        memory.use_in_context = use_in_context
        memory.save(update_fields=["use_in_context", "updated_at"])
        MemoryRevision.objects.create(
            memory=memory, action="use" if use_in_context else "dont-use", actor=MemoryRevision.Actor.USER
        )


def memory_delete(*, user, memory: Memory) -> int:
    """Delete one memory with its history and the turn episodes it was learned from."""
    from memories.consolidation import memory_erase

    with transaction.atomic():
        return memory_erase(user=user, memory_ids=[memory.pk])


def turns_reembed_after(*, message_ids) -> int:
    """Re-embed the turn episodes that were embedded with one of these messages as the message they
    answer (after the user had those forgotten): their vectors must not carry the forgotten text."""
    followers = []
    for message in Message.objects.filter(pk__in=list(message_ids)).select_related("conversation"):
        following = (
            message.conversation.messages.filter(created_at__gt=message.created_at, role=Message.Role.USER)
            .order_by("created_at", "id")
            .first()
        )
        if following is not None:
            followers.append(following)
    episodes = {e.key: e for e in Episode.objects.filter(key__in=[f"turn:{m.pk}" for m in followers])}
    todo = [(m, episodes[f"turn:{m.pk}"]) for m in followers if f"turn:{m.pk}" in episodes]
    if not todo:
        return 0
    allowed = memory_policy(user=todo[0][0].conversation.user).sensitive_categories
    texts = [message_episode_embedding_text(m, _previous_message(m, allowed)) for m, _ in todo]
    for (_, episode), vector in zip(todo, embed_texts(texts), strict=True):
        episode.embedding = vector
        episode.save(update_fields=["embedding"])
    return len(todo)


# --- reports and apps ----------------------------------------------------------------------------------

REPORT_REASONS = ("wrong", "not-mine", "instruction", "other")


@transaction.atomic
def memory_report(*, memory: Memory, reason: str = "other") -> bool:
    """The user reports a memory (wrong, not theirs, an instruction slipped in): it is held for review, so
    never injected until a moderator approves it, and shows in the admin's moderation queue with the
    reason among its `flag_reasons` ("reported:<reason>"); the report is in its history.
    Returns False when it was already held or rejected (nothing changes)."""
    if reason not in REPORT_REASONS:
        raise ValueError(f"unknown report reason {reason!r}")
    lock_user(memory.user_id)
    memory = Memory.objects.select_for_update().get(pk=memory.pk)
    if memory.review_status != Memory.Review.APPROVED:
        return False
    memory.review_status = Memory.Review.PENDING
    memory.flag_reasons = [*memory.flag_reasons, f"reported:{reason}"]
    memory.save(update_fields=["review_status", "flag_reasons", "updated_at"])
    MemoryRevision.objects.create(memory=memory, action="report", actor=MemoryRevision.Actor.USER)
    return True


def memory_push(
    *, user, app_name: str, kind: str, text: str, confidence: float, hold: bool
) -> tuple[Memory | None, str]:
    """A fact or observation pushed by a registered app (or the user's own API key, `app_name` ""): source
    "api", the app's name in its attributes (`{"app": name}`), through the same consolidation and poisoning
    check as everything else.

    Nothing is stored (returns None with "memory-off" or "sensitive") when the user's memory policy
    forbids learning, or the text touches a special category the user did not opt in to; nor (None,
    "known") when an app pushes what a memory the user keeps out of use (held, "don't use this") says. With `hold`
    (the operator's API_PUSH_REVIEW) a new memory is held for review ("app-push" among its flag reasons)
    and, filed under a subject of its own, supersedes nothing; restating a known memory reinforces it.
    Returns (the memory now current, the decision)."""
    from memories.extraction import fingerprint

    text = text.strip()
    [vector] = embed_texts([text])
    with transaction.atomic():
        lock_user(user)  # then decide under the lock: consent may have been withdrawn meanwhile
        policy = memory_policy(user=user)
        if not policy.extract:
            return None, "memory-off"
        if not_allowed(text, policy.sensitive_categories):
            return None, "sensitive"
        attributes = {"app": app_name} if app_name else {}
        current = Memory.objects.for_user(user).saying(kind, text)
        if app_name and current.exists() and not current.usable(policy).exists():
            return None, "known"  # an app neither strengthens nor learns about what the user keeps out of use
        item = ExtractedItem(kind=kind, subject="", text=text, confidence=confidence, attributes=attributes)
        subject = "app:" + fingerprint(text)[:16] if hold else memory_subject_for(user=user, item=item)
        item = dataclasses.replace(item, subject=subject)
        memory, decision = memory_apply(
            user=user,
            item=item,
            embedding=vector,
            message=None,
            source=Memory.Source.API,
            actor=MemoryRevision.Actor.API,
        )
        if hold and decision == "add" and memory.review_status == Memory.Review.APPROVED:
            memory.review_status, memory.flag_reasons = Memory.Review.PENDING, [*memory.flag_reasons, "app-push"]
            memory.save(update_fields=["review_status", "flag_reasons", "updated_at"])
    return memory, decision
