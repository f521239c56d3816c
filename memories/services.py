"""The user's own changes to their memory ("What I remember"), and pushes from connected apps.

Each goes through the same consolidation as extraction, under the user's lock.
"""

from __future__ import annotations

import dataclasses
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.scopes import Scope
from accounts.selectors import memory_policy
from accounts.services import lock_user
from memories.consolidation import end_of_day, memory_apply, memory_approved
from memories.extraction import ExtractedItem, extract_with_rules, fingerprint
from memories.history import memory_rewrite, revision_record
from memories.models import Memory, MemoryRevision
from memories.selectors import is_usable
from memories.sensitive import not_allowed
from memories.text import verb_base_form
from memoryweb.ai.embeddings import embed_texts

# --- the user's own changes ("What I remember") ---------------------------------------------------


def memory_remember(*, user, kind: str, text: str) -> tuple[Memory | None, str]:
    """ "Remember this": a memory the user adds by hand, pinned, through the same consolidation as
    extraction (so stating a known thing reinforces it and a new value supersedes the old one).
    Embedded before the user's lock is taken: the embedding may be a call over the network."""
    item = ExtractedItem(kind=kind, subject="", text=text.strip(), confidence=1.0, pinned=True)
    subject = memory_subject_for(user=user, item=item)
    item = ExtractedItem(kind=kind, subject=subject, text=item.text, confidence=1.0, pinned=True)
    [vector] = embed_texts([item.text])
    with transaction.atomic():
        lock_user(user)
        return memory_apply(
            user=user,
            item=item,
            embedding=vector,
            message=None,
            source=Memory.Source.STATED,
            actor=MemoryRevision.Actor.USER,
        )


def memory_subject_for(*, user, item: ExtractedItem) -> str:
    """A subject for hand-written text ("User lives in Berlin"): what the rules make of it said in
    the first person ("I live in Berlin"), so that it can supersede a known value; else one of its
    own."""
    found = [i for i in extract_with_rules(_first_person(item.text)) if i.kind == item.kind]
    return found[0].subject if found else "note:" + fingerprint(item.text)[:16]


def _first_person(text: str) -> str:
    text = re.sub(r"^(?:the )?user is\b", "I am", text, flags=re.I)
    text = re.sub(r"^(?:the )?user's\b", "My", text, flags=re.I)
    text = re.sub(r"^(?:the )?user has\b", "I have", text, flags=re.I)
    return re.sub(
        r"^(?:the )?user (\w+)\b", lambda m: "I " + verb_base_form(m.group(1)), text, flags=re.I
    )


@transaction.atomic
def memory_edit(*, memory: Memory, text: str) -> Memory:
    """The user corrects a memory's text: re-embedded, and the change kept in its history.
    Raises ValidationError when another current memory already says the same."""
    old_text, text = memory.text, text.strip()
    if text == old_text:
        return memory
    if (
        Memory.objects.for_user(memory.user_id)
        .saying(memory.kind, text)
        .exclude(pk=memory.pk)
        .exists()
    ):
        raise ValidationError("You already have a memory that says this.")
    [vector] = embed_texts([text])
    memory_rewrite(
        memory,
        text,
        vector,
        action=MemoryRevision.Action.EDIT,
        actor=MemoryRevision.Actor.USER,
        confidence=1.0,
        source=Memory.Source.STATED,
    )
    return memory


def memory_set_use(*, memory: Memory, use_in_context: bool) -> None:
    """ "Don't use this" (False): kept and shown, never injected; True undoes it."""
    if memory.use_in_context != use_in_context:
        memory.use_in_context = use_in_context
        memory.save(update_fields=["use_in_context", "updated_at"])
        action = MemoryRevision.Action.USE if use_in_context else MemoryRevision.Action.DONT_USE
        revision_record(memory, action, MemoryRevision.Actor.USER, None)


def memory_set_end(*, memory: Memory, last_day) -> None:
    """ "True until …" set by hand: after `last_day` (a date, on the user's clock) the memory is not
    used; None: true for good."""
    ends_at = end_of_day(memory.user, last_day.isoformat()) if last_day else None
    if memory.ends_at != ends_at:
        memory.ends_at = ends_at
        memory.save(update_fields=["ends_at", "updated_at"])
        revision_record(memory, MemoryRevision.Action.EDIT, MemoryRevision.Actor.USER, None)


# --- moderation ------------------------------------------------------------------------------------


def memories_moderate(*, memory_ids, approve: bool) -> int:
    """A moderator's decision on held memories: approved ones may be used and only now end what they
    contradict (`memory_approved`); rejected ones are never used. Returns how many were decided."""
    action = MemoryRevision.Action.APPROVE if approve else MemoryRevision.Action.REJECT
    status = Memory.Review.APPROVED if approve else Memory.Review.REJECTED
    with transaction.atomic():
        users = Memory.objects.filter(pk__in=memory_ids).values_list("user_id", flat=True)
        for user_id in sorted(set(users)):
            lock_user(user_id)  # the writers' lock order: the user, then their memories
        memories = list(Memory.objects.filter(pk__in=memory_ids).select_for_update())
        for memory in memories:
            memory.review_status = status
            memory.save(update_fields=["review_status", "updated_at"])
            revision_record(memory, action, MemoryRevision.Actor.ADMIN, None)
            if approve:
                memory_approved(memory, MemoryRevision.Actor.ADMIN)
    return len(memories)


# --- reports and apps -----------------------------------------------------------------------------

REPORT_REASONS = ("wrong", "not-mine", "instruction", "other")


@transaction.atomic
def memory_report(*, memory: Memory, reason: str = "other") -> bool:
    """The user reports a memory (wrong, not theirs, an instruction slipped in): it is held for
    review, so never injected until a moderator approves it, and shows in the admin's moderation
    queue with the reason among its `flag_reasons` ("reported:<reason>"); the report is in its
    history. Returns False when it was already held or rejected (nothing changes)."""
    if reason not in REPORT_REASONS:
        raise ValueError(f"unknown report reason {reason!r}")
    lock_user(memory.user_id)
    memory = Memory.objects.select_for_update().get(pk=memory.pk)
    if memory.review_status != Memory.Review.APPROVED:
        return False
    memory.review_status = Memory.Review.PENDING
    memory.flag_reasons = [*memory.flag_reasons, f"reported:{reason}"]
    memory.save(update_fields=["review_status", "flag_reasons", "updated_at"])
    revision_record(memory, MemoryRevision.Action.REPORT, MemoryRevision.Actor.USER, None)
    return True


APP_SUBJECT_PREFIX = "app:"


def memory_push(
    *, user, app_name: str, kind: str, text: str, confidence: float, hold: bool
) -> tuple[Memory | None, str]:
    """A fact or observation pushed by a registered app (or the user's own API key, `app_name` ""):
    source "api", the app's name in its attributes (`{"app": name}`), through the same consolidation
    and poisoning check as everything else.

    An app never steers the assistant or overrides the user: it may not push instructions (None,
    "instruction"), never pins, and files what it pushes under subjects of its own
    ("app:<name>:<subject>"), so that it adds beside what the user or an admin said and never
    updates or supersedes it (only the app's own earlier pushes). Nothing is stored (None with
    "memory-off" or "sensitive") when the user's memory policy forbids learning, or the text touches
    a special category the user did not opt in to; nor (None, "known") when an app pushes what a
    memory the user keeps out of use (held, "don't use this") says. With `hold` a new memory is held
    for review ("app-push" among its flag reasons) and ends nothing until approved. Returns (the
    memory now current, the decision)."""
    text = text.strip()
    if app_name and kind == Memory.Kind.INSTRUCTION:
        return None, "instruction"
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
            # an app neither strengthens nor learns about what the user keeps out of use
            return None, "known"
        item = ExtractedItem(
            kind=kind, subject="", text=text, confidence=confidence, attributes=attributes
        )
        subject = memory_subject_for(user=user, item=item)
        if app_name:
            subject = f"{APP_SUBJECT_PREFIX}{app_name}:{subject}"[:200]
        memory, decision = memory_apply(
            user=user,
            item=dataclasses.replace(item, subject=subject),
            embedding=vector,
            message=None,
            source=Memory.Source.API,
            actor=MemoryRevision.Actor.API,
            hold_reason="app-push" if hold else "",
        )
    return memory, decision


# memory_push's decisions that refuse the push: nothing stored (the API and MCP say why).
PUSH_REFUSED = frozenset({"instruction", "memory-off", "sensitive"})


def memory_push_as(
    *, user, access, kind: str, text: str, confidence: float
) -> tuple[str, Memory | None]:
    """A push by an app (`access`, from its secret or an OAuth token) or the user's own key (None),
    and what the caller may see of it: the decision (a refusal: "instruction" or one of
    `PUSH_REFUSED`, with no memory) and the memory, for the context API and MCP alike."""
    memory, decision = memory_push(
        user=user,
        app_name=access.app.name if access else "",
        kind=kind,
        text=text,
        confidence=confidence,
        hold=settings.API_PUSH_REVIEW and access is not None,
    )
    if decision in PUSH_REFUSED or access is None:
        return decision, memory
    return _as_the_app_may_see(user, access, memory, decision)


def _as_the_app_may_see(user, access, memory, decision) -> tuple[str, Memory | None]:
    """What an app learns from its push: without context:read nothing ("accepted", whatever
    happened, so that pushes can't probe what the user keeps); with it, the memory only when memory
    may use it, else "held" (also for what the user keeps out of use, so the two look the same)."""
    if not access.allows(Scope.CONTEXT_READ):
        return "accepted", None
    if memory is None or not is_usable(user=user, memory=memory):
        return "held", None
    return decision, memory
