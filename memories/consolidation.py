"""Staying true over time: how one extracted item changes a user's memory.

For each item the current memories about the same thing are found (same kind and subject, or a very
close embedding) and one decision is taken:

- NO-OP     the same statement is already current: reinforce it (confidence, importance, recency, provenance);
- UPDATE    same subject, and the new text only adds to the old one: rewrite it in place;
- SUPERSEDE same subject, different content (a contradiction or a change): the old memory gets
            `valid_until` and `superseded_by`, stays in the history, and stops being current;
- ADD       nothing similar is current.

A "retract" item ("I'm not vegetarian any more") supersedes what it ends; a "forget" item erases the
matching memories with their history and the episodes they came from. Every change writes a revision.
Decisions are rules, the same with or without a language model, so a model cannot invent ids.
"""

from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from pgvector.django import CosineDistance

from chat.models import Message
from memories.extraction import ExtractedItem, fingerprint
from memories.models import Episode, Memory, MemoryRevision
from memories.poisoning import poisoning_reasons
from memories.sensitive import sensitive_categories

logger = logging.getLogger(__name__)

REINFORCE_CONFIDENCE = 0.05
REINFORCE_IMPORTANCE = 0.1
SAME_STATEMENT_DISTANCE = 0.08  # cosine distance under which two texts say the same thing
RELATED_DISTANCE = 0.35  # for "retract" and "forget" without a known subject
_NEGATION = re.compile(r"\b(?:not|no|never|no longer|any ?more|n't|don't|doesn't|isn't|won't)\b|n't\b", re.I)
_STOP = {"user", "is", "the", "a", "an", "of", "to", "in", "at", "and", "s", "user's"}


def memory_apply(
    *, user, item: ExtractedItem, embedding: list[float] | None, message: Message | None, source: str, actor: str
) -> tuple[Memory | None, str]:
    """Apply one extracted item to `user`'s memory; returns (the memory now current, the decision).

    Decisions: "reinforce", "update", "supersede", "add", "retract", "forget". Call inside a transaction.
    """
    if item.op == "forget":
        memory_forget_matching(user=user, text=item.text, subject=item.subject, embedding=embedding)
        return None, "forget"
    current = Memory.objects.for_user(user).current().filter(kind=item.kind)
    if same := Memory.objects.for_user(user).saying(item.kind, item.text).first():
        _reinforce(same, item, message, actor)
        return same, "reinforce"
    related = list(current.filter(subject=item.subject)) if item.subject else []
    if not related and item.op == "add" and (same := _near_duplicate(current, item.text, embedding)):
        _reinforce(same, item, message, actor)  # the same thing filed under another subject
        return same, "reinforce"
    if not related and item.op == "retract":
        related = _related(current, embedding)
    if not related:
        return _add(user, item, embedding, message, source, actor), "add"
    if item.op != "retract" and len(related) == 1 and _only_adds_to(related[0].text, item.text):
        _update(related[0], item, embedding, message, actor)
        return related[0], "update"
    new = _add(user, item, embedding, message, source, actor)
    for old in related:
        _supersede(old, new, message, actor)
    return new, "retract" if item.op == "retract" else "supersede"


def _near_duplicate(current, text: str, embedding: list[float] | None) -> Memory | None:
    """A current memory that says the same as `text` in other words. Embeddings barely see negation
    ("is vegetarian" / "is no longer vegetarian" are close), so both must be negated or neither."""
    if embedding is None:
        return None
    closest = (
        current.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", embedding))
        .filter(distance__lt=SAME_STATEMENT_DISTANCE)
        .order_by("distance")
        .first()
    )
    return closest if closest is not None and _negated(closest.text) == _negated(text) else None


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def _related(current, embedding: list[float] | None) -> list[Memory]:
    if embedding is None:
        return []
    return list(
        current.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", embedding))
        .filter(distance__lt=RELATED_DISTANCE)
        .order_by("distance")[:1]
    )


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP}


def _only_adds_to(old: str, new: str) -> bool:
    """True when `new` says everything `old` says and more ("User works at Acme" -> "... at Acme as CTO")."""
    old_words, new_words = _words(old), _words(new)
    return bool(old_words) and old_words < new_words


def _add(user, item: ExtractedItem, embedding, message: Message | None, source: str, actor: str) -> Memory:
    """A new memory; text that reads as an instruction to the assistant is held for review."""
    reasons = poisoning_reasons(item.text)
    try:
        with transaction.atomic():
            memory = Memory.objects.create(
                user=user,
                kind=item.kind,
                subject=item.subject[:200],
                text=item.text,
                attributes=item.attributes,
                fingerprint=fingerprint(item.text),
                confidence=item.confidence,
                importance=0.8 if item.pinned else 0.5,
                source=source,
                pinned=item.pinned,
                sensitive_categories=sorted(sensitive_categories(item.text)),
                review_status=Memory.Review.PENDING if reasons else Memory.Review.APPROVED,
                flag_reasons=reasons,
                valid_from=message.created_at if message else timezone.now(),
                embedding=embedding,
            )
    except IntegrityError:  # the same statement was added concurrently: that one is it
        memory = Memory.objects.for_user(user).saying(item.kind, item.text).get()
        _reinforce(memory, item, message, actor)
        return memory
    _record(memory, "add", actor, message, new_text=item.text)
    return memory


def _reinforce(memory: Memory, item: ExtractedItem, message: Message | None, actor: str) -> None:
    """NO-OP on the content; the memory gets surer, more important and recent again."""
    memory.confidence = min(1.0, max(memory.confidence, item.confidence) + REINFORCE_CONFIDENCE)
    memory.importance = min(1.0, memory.importance + REINFORCE_IMPORTANCE)
    memory.pinned = memory.pinned or item.pinned
    memory.save(update_fields=["confidence", "importance", "pinned", "updated_at"])
    _record(memory, "reinforce", actor, message)


def _update(memory: Memory, item: ExtractedItem, embedding, message: Message | None, actor: str) -> None:
    memory_rewrite(
        memory,
        item.text,
        embedding,
        action="update",
        actor=actor,
        message=message,
        attributes={**memory.attributes, **item.attributes},
        confidence=max(memory.confidence, item.confidence),
        pinned=memory.pinned or item.pinned,
    )


def memory_rewrite(
    memory: Memory,
    text: str,
    embedding,
    *,
    action: str,
    actor: str,
    message: Message | None = None,
    keep_old_text: bool = True,
    **changes,
) -> None:
    """Give a memory new text (with its embedding), and whatever other field `changes` say: its
    fingerprint and sensitive category follow the text, new text that reads as an instruction puts it
    under review, and a revision keeps the old text (unless it is being erased: `keep_old_text`)."""
    old_text = memory.text
    memory.text, memory.fingerprint, memory.embedding = text, fingerprint(text), embedding
    memory.sensitive_categories = sorted(sensitive_categories(text))
    for field, value in changes.items():
        setattr(memory, field, value)
    hold_if_poisoned(memory)
    fields = ["text", "fingerprint", "embedding", "sensitive_categories", "review_status", "flag_reasons", "updated_at"]
    memory.save(update_fields=[*fields, *changes])
    _record(memory, action, actor, message, old_text=old_text if keep_old_text else "", new_text=text)


def hold_if_poisoned(memory: Memory) -> None:
    """New text that reads as an instruction to the assistant puts the memory back under review."""
    if reasons := poisoning_reasons(memory.text):
        memory.review_status, memory.flag_reasons = Memory.Review.PENDING, reasons


def _supersede(old: Memory, new: Memory, message: Message | None, actor: str) -> None:
    old.valid_until = new.valid_from
    old.superseded_by = new
    old.save(update_fields=["valid_until", "superseded_by", "updated_at"])
    # The message ended the old memory; it is not a source of what the old one says (the revision keeps it).
    _record(old, "supersede", actor, message, old_text=old.text, new_text=new.text, source=False)


def _record(
    memory: Memory, action: str, actor: str, message: Message | None, *, old_text="", new_text="", source=True
) -> None:
    if message is not None and source:
        memory.source_messages.add(message)
    MemoryRevision.objects.create(
        memory=memory, action=action, actor=actor, old_text=old_text, new_text=new_text, message=message
    )


def memory_forget_matching(*, user, text: str, subject: str = "", embedding: list[float] | None = None) -> int:
    """Erase `user`'s memories matching a "forget ..." request: same subject, or a close embedding, or
    all of the request's words; subject "*" means everything. Their history (superseded versions,
    revisions) and the turn episodes they were learned from go too. Returns how many were erased."""
    memories = Memory.objects.for_user(user)
    if subject == "*":  # "forget everything you know about me": every memory and episode
        Episode.objects.for_user(user).delete()
        return memory_erase(user=user, memory_ids=memories.values_list("pk", flat=True))
    words = _words(text)
    specific = words - _words(subject.replace(":", " "))  # what the request says beyond its subject
    matches: set[int] = set()
    if subject:  # "forget where I live": the whole subject; "forget that I live in Paris": that value
        matches |= {m.pk for m in memories.filter(subject=subject) if specific <= _words(m.text)}
    if words:
        matches |= {m.pk for m in memories.only("pk", "text") if words <= _words(m.text)}
    if embedding is not None:
        close = (
            memories.filter(embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", embedding))
            .filter(distance__lt=SAME_STATEMENT_DISTANCE)
        )
        matches |= {m.pk for m in close.only("pk", "text") if _negated(m.text) == _negated(text)}
    return memory_erase(user=user, memory_ids=matches)


def memory_erase(*, user, memory_ids, with_history: bool = True) -> int:
    """Delete memories (scoped to `user`) with everything derived from them: revisions, recall records,
    the turn episodes and conversation summaries of their source messages (which are marked so that
    nothing learns from them again; summaries are rewritten without them after commit), and the digests
    that quote them (rewritten too). `with_history`: the older versions they superseded go too (forgetting
    a thing forgets what it was before); without it (deleting a conversation takes only what was learned
    from it) the older versions stay, and take the place of what is erased (`_close_history_gaps`). Newer
    versions that superseded them are other memories and stay. Call inside a transaction."""
    ids = set(memory_ids)
    frontier = set(ids) if with_history else set()
    while frontier:  # walk the history back: versions superseded by what is erased
        older = Memory.objects.for_user(user).filter(superseded_by__in=frontier).values_list("pk", flat=True)
        frontier = set(older) - ids
        ids |= frontier
    erased = {
        pk: (successor, valid_until is None)
        for pk, successor, valid_until in Memory.objects.for_user(user)
        .filter(pk__in=ids)
        .values_list("pk", "superseded_by_id", "valid_until")
    }
    orphans = list(Memory.objects.for_user(user).filter(superseded_by__in=ids).exclude(pk__in=ids).defer("embedding"))
    memories = Memory.objects.for_user(user).filter(pk__in=ids)
    texts = list(memories.values_list("text", flat=True))
    sources = list(
        Memory.source_messages.through.objects.filter(memory_id__in=ids).values_list("message_id", flat=True)
    )
    Message.objects.filter(pk__in=sources).update(excluded_from_memory=True)
    from memories.services import turns_reembed_after  # services builds on this module

    turns_reembed_after(message_ids=sources)
    episodes = Episode.objects.for_user(user)
    summarized = set(
        episodes.filter(kind=Episode.Kind.SUMMARY, messages__in=sources).values_list("conversation_id", flat=True)
    )
    episodes.filter(kind__in=[Episode.Kind.TURN, Episode.Kind.SUMMARY], messages__in=sources).delete()
    digests = Q(messages__in=sources) | Q(
        pk__in=[d.pk for d in episodes.filter(kind=Episode.Kind.DIGEST) if _quotes(d.text, texts)]
    )
    periods = list(episodes.filter(Q(kind=Episode.Kind.DIGEST) & digests).distinct().values_list("ended_at", flat=True))
    episodes.filter(Q(kind=Episode.Kind.DIGEST) & digests).delete()
    deleted, _ = memories.delete()
    _close_history_gaps(orphans, erased)
    transaction.on_commit(lambda: _rewrite_derived(user, summarized, periods))
    return len(ids) if deleted else 0


def _close_history_gaps(orphans: list[Memory], erased: dict[int, tuple[int | None, bool]]) -> None:
    """Older versions whose newer version was erased (`erased`: id → (what superseded it, was it current)).
    Each is now superseded by the first version after it that remains. When none remains and the last
    erased one was current, what it had replaced (everything it had ended at once) is current again — what
    the user said before is the latest left — unless the same statement is current already; when the last
    erased one had itself ended (retracted, expired), they stay in the history."""
    for memory in orphans:
        successor, current = memory.superseded_by_id, False
        while successor in erased:
            successor, current = erased[successor]
        if successor is None and current:
            same = Memory.objects.for_user(memory.user_id).saying(memory.kind, memory.text)
            if (existing := same.first()) is None:
                memory.valid_until, memory.superseded_by = None, None
                memory.save(update_fields=["valid_until", "superseded_by", "updated_at"])
                _record(memory, "restore", MemoryRevision.Actor.USER, None)
                continue
            successor = existing.pk
        memory.superseded_by_id = successor
        memory.save(update_fields=["superseded_by"])


def _quotes(text: str, quoted: list[str]) -> bool:
    return any(q and q in text for q in quoted)


def _rewrite_derived(user, conversation_ids, periods) -> None:
    from memories.tasks import digest_user, summarize_conversation

    user_id = getattr(user, "pk", user)
    for conversation_id in conversation_ids:
        summarize_conversation.delay(conversation_id)
    for period_end in periods:
        digest_user.delay(user_id, period_end.isoformat())
