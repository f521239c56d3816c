"""Staying true over time: how one extracted item changes a user's memory.

For each item the current memories about the same thing are found (same kind and subject, or a very
close embedding) and one decision is taken:

- NO-OP     the same statement is already current: reinforce it (confidence, importance, recency, provenance);
- UPDATE    same subject, and the new text only adds to the old one: rewrite it in place;
- SUPERSEDE same subject, different content (a contradiction or a change): the old memory gets
            `valid_until` and `superseded_by`, stays in the history, and stops being current;
- ADD       nothing similar is current.

A "retract" item ("I'm not vegetarian any more") supersedes what it ends; a "forget" item erases the
matching memories with their history and the episodes they came from. Every change writes a
revision. Decisions are rules, the same with or without a language model, so a model cannot invent
ids.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from pgvector.django import CosineDistance

from chat.models import Message
from memories.erasure import memory_erase, memory_erase_everything
from memories.extraction import ExtractedItem, fingerprint
from memories.history import memory_rewrite, revision_record
from memories.models import Memory, MemoryRevision
from memories.poisoning import poisoning_reasons
from memories.sensitive import sensitive_categories
from memories.text import content_words, negated

logger = logging.getLogger(__name__)


class Decision(models.TextChoices):
    """What one extracted item did to the user's memory."""

    REINFORCE = "reinforce"  # NO-OP: the same statement is current
    UPDATE = "update"
    SUPERSEDE = "supersede"
    ADD = "add"
    RETRACT = "retract"
    FORGET = "forget"


REINFORCE_CONFIDENCE = 0.05
REINFORCE_IMPORTANCE = 0.1
SAME_STATEMENT_DISTANCE = 0.08  # cosine distance under which two texts say the same thing
RELATED_DISTANCE = 0.35  # for "retract" and "forget" without a known subject


def memory_apply(
    *,
    user,
    item: ExtractedItem,
    embedding: list[float] | None,
    message: Message | None,
    source: str,
    actor: str,
    hold_reason: str = "",
) -> tuple[Memory | None, Decision]:
    """Apply one extracted item to `user`'s memory; returns (the memory now current, the decision).
    With `hold_reason` (or text the poisoning check flags) a new memory is held for review.

    Call inside a transaction.
    """
    if item.op == "forget":
        memory_forget_matching(user=user, text=item.text, subject=item.subject, embedding=embedding)
        return None, Decision.FORGET
    current = Memory.objects.for_user(user).current().filter(kind=item.kind)
    if same := Memory.objects.for_user(user).saying(item.kind, item.text).first():
        _reinforce(same, item, message, actor)
        return same, Decision.REINFORCE
    related = list(current.filter(subject=item.subject)) if item.subject else []
    if (
        not related
        and item.op == "add"
        and (same := _near_duplicate(current, item.text, embedding))
    ):
        _reinforce(same, item, message, actor)  # the same thing filed under another subject
        return same, Decision.REINFORCE
    if not related and item.op == "retract":
        related = _related(current, embedding)
    reasons = [*poisoning_reasons(item.text), *([hold_reason] if hold_reason else [])]
    if not related:
        return _add(user, item, embedding, message, source, actor, reasons), Decision.ADD
    said_before = message is not None and any(m.valid_from > message.created_at for m in related)
    if (
        item.op != "retract"
        and not said_before  # an older text never rewrites what was said since
        and len(related) == 1
        and _only_adds_to(related[0].text, item.text)
        and not reasons  # what is held goes beside the memory, not into it
    ):
        _update(related[0], item, embedding, message, actor)
        return related[0], Decision.UPDATE
    new = _add(user, item, embedding, message, source, actor, reasons)
    if new.review_status != Memory.Review.APPROVED:
        return new, Decision.ADD  # held for review: it ends nothing until it is approved
    current = _in_time_order(new, related, message, actor)
    return current, Decision.RETRACT if item.op == "retract" else Decision.SUPERSEDE


def memory_approved(memory: Memory, actor: str) -> None:
    """A held memory was approved: it now ends what it would have ended when it was learned (the
    current memories of its kind and subject from before it), or is itself ended by a newer one.
    Call inside a transaction, the memory locked."""
    if memory.valid_until is not None:
        return  # a newer statement already ended it while it was held
    peers = (
        Memory.objects.for_user(memory.user_id)
        .current()
        .filter(kind=memory.kind, subject=memory.subject, review_status=Memory.Review.APPROVED)
        .exclude(pk=memory.pk)
    )
    _in_time_order(memory, list(peers), None, actor)


def _in_time_order(memory: Memory, peers: list[Memory], message: Message | None, actor: str):
    """`memory` ends the peers said before it and is ended by the latest said after it (a held
    memory approved late; a past conversation imported now), so the history keeps the order in
    which things were said. Returns the one current now."""
    peers = sorted(peers, key=lambda p: (p.valid_from, p.pk))
    newer = [p for p in peers if p.valid_from > memory.valid_from]
    latest = newer[-1] if newer else memory
    if newer:
        _supersede(memory, latest, message, actor)
    for old in peers:
        if old.valid_from <= memory.valid_from:
            _supersede(old, latest, message, actor)
    return latest


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
    return closest if closest is not None and negated(closest.text) == negated(text) else None


def _related(current, embedding: list[float] | None) -> list[Memory]:
    if embedding is None:
        return []
    return list(
        current.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", embedding))
        .filter(distance__lt=RELATED_DISTANCE)
        .order_by("distance")[:1]
    )


def _only_adds_to(old: str, new: str) -> bool:
    """True when `new` says everything `old` says and more ("User works at Acme" -> "... at Acme as
    CTO")."""
    old_words, new_words = content_words(old), content_words(new)
    return bool(old_words) and old_words < new_words


def _add(
    user,
    item: ExtractedItem,
    embedding,
    message: Message | None,
    source: str,
    actor: str,
    reasons: list[str],
) -> Memory:
    """A new memory; held for review when there are `reasons` (text that reads as an instruction to
    the assistant, an app's push the operator reviews)."""
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
                ends_at=end_of_day(user, item.attributes.get("until")),
                embedding=embedding,
            )
    except IntegrityError:  # the same statement was added concurrently: that one is it
        memory = Memory.objects.for_user(user).saying(item.kind, item.text).get()
        _reinforce(memory, item, message, actor)
        return memory
    revision_record(memory, MemoryRevision.Action.ADD, actor, message, new_text=item.text)
    return memory


def end_of_day(user, day: str | None):
    """The end of `day` (ISO) on the user's clock: "until Friday" holds through Friday."""
    if not day:
        return None
    try:
        on = date.fromisoformat(day)
    except (TypeError, ValueError):
        return None
    zone = getattr(user, "zone", None) or UTC
    return datetime.combine(on + timedelta(days=1), time.min, tzinfo=zone)


def _reinforce(memory: Memory, item: ExtractedItem, message: Message | None, actor: str) -> None:
    """NO-OP on the content; the memory gets surer, more important and recent again."""
    memory.confidence = min(1.0, max(memory.confidence, item.confidence) + REINFORCE_CONFIDENCE)
    memory.importance = min(1.0, memory.importance + REINFORCE_IMPORTANCE)
    memory.pinned = memory.pinned or item.pinned
    memory.save(update_fields=["confidence", "importance", "pinned", "updated_at"])
    revision_record(memory, MemoryRevision.Action.REINFORCE, actor, message)


def _update(
    memory: Memory, item: ExtractedItem, embedding, message: Message | None, actor: str
) -> None:
    memory_rewrite(
        memory,
        item.text,
        embedding,
        action=MemoryRevision.Action.UPDATE,
        actor=actor,
        message=message,
        attributes={**memory.attributes, **item.attributes},
        confidence=max(memory.confidence, item.confidence),
        pinned=memory.pinned or item.pinned,
    )


def _supersede(old: Memory, new: Memory, message: Message | None, actor: str) -> None:
    old.valid_until = new.valid_from
    old.superseded_by = new
    old.save(update_fields=["valid_until", "superseded_by", "updated_at"])
    # The message ended the old memory; it is not a source of what the old one says (the revision
    # keeps it).
    revision_record(
        old,
        MemoryRevision.Action.SUPERSEDE,
        actor,
        message,
        old_text=old.text,
        new_text=new.text,
        source=False,
    )


def memory_forget_matching(
    *, user, text: str, subject: str = "", embedding: list[float] | None = None
) -> int:
    """Erase `user`'s memories matching a "forget ..." request (`forget_matches`); subject "*" means
    everything. Their history (superseded versions, revisions) and the turn episodes they were
    learned from go too. Returns how many were erased."""
    if subject == "*":  # "forget everything you know about me": every memory and episode
        return memory_erase_everything(user=user)
    matches = forget_matches(user=user, text=text, subject=subject, embedding=embedding)
    return memory_erase(user=user, memory_ids=matches)


def forget_matches(
    *, user, text: str, subject: str = "", embedding: list[float] | None = None
) -> set[int]:
    """Ids of `user`'s memories a "forget ..." request names: the same subject (and every word the
    request says beyond it), or all of the request's words, or a close embedding that agrees on
    negation. Erases nothing: what a chat asks is shown before anything goes."""
    memories = Memory.objects.for_user(user)
    words = content_words(text)
    # what the request says beyond its subject
    specific = words - content_words(subject.replace(":", " "))
    matches: set[int] = set()
    # "forget where I live": the whole subject; "forget that I live in Paris": that value
    if subject:
        matches |= {
            m.pk for m in memories.filter(subject=subject) if specific <= content_words(m.text)
        }
    if words:
        matches |= {m.pk for m in memories.only("pk", "text") if words <= content_words(m.text)}
    if embedding is not None:
        close = (
            memories.filter(embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", embedding))
            .filter(distance__lt=SAME_STATEMENT_DISTANCE)
        )
        matches |= {m.pk for m in close.only("pk", "text") if negated(m.text) == negated(text)}
    return matches
