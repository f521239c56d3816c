"""Erasure: everything that erases or undoes what a message taught.

Forgetting a memory takes what was derived from it: its older versions, revisions, recall records,
the turn episodes and summaries of its source messages (those messages are marked so that nothing
learns from them again), and the digests that quote it (rewritten from what remains). Deleting a
conversation takes what was learned only from it, undoes the in-place rewrites it made, and gives
back to older versions the place of what it had superseded. The whole-user erasure is in each app's
privacy.py.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from accounts.export.jobs import exports_outdate
from chat.models import Conversation, Message
from memories.episodes import turns_reembed_after
from memories.history import memory_rewrite, revision_record
from memories.models import Episode, Memory, MemoryRevision
from memories.tasks import digest_user as digest_user_task
from memories.tasks import fill_vectors as fill_vectors_task
from memories.tasks import summarize_conversation as summarize_conversation_task
from memoryweb.celery import enqueue
from memoryweb.privacy import Erasure


def memory_erase_everything(*, user) -> int:
    """ "Forget everything you know about me" said in a chat: every memory and episode of `user`."""
    Episode.objects.for_user(user).delete()
    return memory_erase(
        user=user, memory_ids=Memory.objects.for_user(user).values_list("pk", flat=True)
    )


def memory_erase(
    *, user, memory_ids, with_history: bool = True, erasure: Erasure | None = None
) -> int:
    """Delete memories (scoped to `user`) with everything derived from them: revisions, recall
    records, the turn episodes and conversation summaries of their source messages (which are marked
    so that nothing learns from them again; summaries are rewritten without them after commit), and
    the digests that quote them (rewritten too). `with_history`: the older versions they superseded
    go too (forgetting a thing forgets what it was before); without it (deleting a conversation
    takes only what was learned from it) the older versions stay, and take the place of what is
    erased (`_close_history_gaps`). Newer versions that superseded them are other memories and stay.
    What is deleted is counted in `erasure` (for a receipt). Call inside a transaction."""
    erasure = erasure if erasure is not None else Erasure()
    ids = set(memory_ids)
    frontier = set(ids) if with_history else set()
    while frontier:  # walk the history back: versions superseded by what is erased
        older = (
            Memory.objects.for_user(user)
            .filter(superseded_by__in=frontier)
            .values_list("pk", flat=True)
        )
        frontier = set(older) - ids
        ids |= frontier
    erased = {
        pk: (successor, valid_until is None)
        for pk, successor, valid_until in Memory.objects.for_user(user)
        .filter(pk__in=ids)
        .values_list("pk", "superseded_by_id", "valid_until")
    }
    orphans = list(
        Memory.objects.for_user(user)
        .filter(superseded_by__in=ids)
        .exclude(pk__in=ids)
        .defer("embedding")
    )
    memories = Memory.objects.for_user(user).filter(pk__in=ids)
    texts = list(memories.values_list("text", flat=True))
    sources = list(
        Memory.source_messages.through.objects.filter(memory_id__in=ids).values_list(
            "message_id", flat=True
        )
    )
    Message.objects.filter(pk__in=sources).update(excluded_from_memory=True)
    turns_reembed_after(message_ids=sources)
    episodes = Episode.objects.for_user(user)
    summarized = set(
        episodes.filter(kind=Episode.Kind.SUMMARY, messages__in=sources).values_list(
            "conversation_id", flat=True
        )
    )
    erasure.deleted(
        episodes.filter(
            kind__in=[Episode.Kind.TURN, Episode.Kind.SUMMARY], messages__in=sources
        ).delete()
    )
    digests = Q(messages__in=sources) | Q(
        pk__in=[d.pk for d in episodes.filter(kind=Episode.Kind.DIGEST) if _quotes(d.text, texts)]
    )
    periods = list(
        episodes.filter(Q(kind=Episode.Kind.DIGEST) & digests)
        .distinct()
        .values_list("ended_at", flat=True)
    )
    erasure.deleted(episodes.filter(Q(kind=Episode.Kind.DIGEST) & digests).delete())
    deleted = erasure.deleted(memories.delete())
    _close_history_gaps(orphans, erased)
    transaction.on_commit(lambda: _rewrite_derived(user, summarized, periods))
    user_id = getattr(user, "pk", user)
    transaction.on_commit(lambda: exports_outdate(user_id=user_id))
    return len(ids) if deleted else 0


def _close_history_gaps(orphans: list[Memory], erased: dict[int, tuple[int | None, bool]]) -> None:
    """Older versions whose newer version was erased (`erased`: id → (what superseded it, was it
    current)). Each is now superseded by the first version after it that remains. When none remains
    and the last erased one was current, what it had replaced (everything it had ended at once) is
    current again — what the user said before is the latest left — unless the same statement is
    current already; when the last erased one had itself ended (retracted, expired), they stay in
    the history."""
    for memory in orphans:
        successor, current = memory.superseded_by_id, False
        while successor in erased:
            successor, current = erased[successor]
        if successor is None and current:
            same = Memory.objects.for_user(memory.user_id).saying(memory.kind, memory.text)
            if (existing := same.first()) is None:
                memory.valid_until, memory.superseded_by = None, None
                memory.save(update_fields=["valid_until", "superseded_by", "updated_at"])
                revision_record(
                    memory, MemoryRevision.Action.RESTORE, MemoryRevision.Actor.USER, None
                )
                continue
            successor = existing.pk
        memory.superseded_by_id = successor
        memory.save(update_fields=["superseded_by"])


def _quotes(text: str, quoted: list[str]) -> bool:
    return any(q and q in text for q in quoted)


def _rewrite_derived(user, conversation_ids, periods) -> None:
    """Queue the summaries and digests that drew on erased text to be written again from what
    remains, and the vectors the erasure took to be embedded again."""
    user_id = getattr(user, "pk", user)
    enqueue(fill_vectors_task, user_id)
    for conversation_id in conversation_ids:
        enqueue(summarize_conversation_task, conversation_id)
    for period_end in periods:
        enqueue(digest_user_task, user_id, period_end.isoformat())


def teachings_erase(*, user, conversation: Conversation, erasure: Erasure) -> dict[str, int]:
    """Before `conversation` of `user` is deleted: erase the memories learned only from it, undo the
    in-place rewrites it made to memories that stay, drop its revisions of those, and delete the
    digests that drew on it (rewritten from what remains after commit). An older version learned
    elsewhere that an erased memory had superseded is current again. What is deleted is counted in
    `erasure`. Call inside a transaction, under lock_user."""
    undone = memory_changes_undo(
        user=user,
        message_ids=conversation.messages.values_list("pk", flat=True),
        erasure=erasure,
    )
    erasure.counts["memory_rewrites_undone"] += undone
    memory_ids = memories_learned_only_from(user=user, messages=conversation.messages.all())
    digests = digests_drawing_on(user=user, conversation=conversation)
    periods = [d.ended_at for d in digests]
    for digest in digests:
        erasure.deleted(digest.delete())
    erased = memory_erase(user=user, memory_ids=memory_ids, with_history=False, erasure=erasure)
    # The changes it made to memories that stay (e.g. "moved to Berlin" superseding "lives in
    # Paris") go with it: their revisions quote it.
    erasure.deleted(
        MemoryRevision.objects.filter(
            memory__user=user, message__conversation=conversation
        ).delete()
    )
    transaction.on_commit(lambda: _rewrite_derived(user, (), periods))
    return {"memories": erased, "digests": len(periods)}


def memory_delete(*, user, memory: Memory) -> int:
    """Delete one memory with its history and the turn episodes it was learned from."""
    with transaction.atomic():
        return memory_erase(user=user, memory_ids=[memory.pk])


def memory_changes_undo(*, user, message_ids, erasure: Erasure) -> int:
    """The in-place rewrites (UPDATE: the same fact, richer) these messages made to memories that
    stay are undone: such a memory gets back the text it had before them, when nothing rewrote it
    since (then it is left as it is); when another current memory says that earlier text already,
    the rewritten one is deleted (its other sources are the other memory's too). Returns how many
    were undone; what is deleted is counted in `erasure`. Call inside a transaction, under
    lock_user, before the messages go."""

    message_ids = set(message_ids)
    rewritten = MemoryRevision.objects.filter(
        memory__user=user, action=MemoryRevision.Action.UPDATE, message_id__in=message_ids
    )
    undone = 0
    for memory in (
        Memory.objects.for_user(user)
        .filter(pk__in=rewritten.values("memory_id"))
        .defer("embedding")
    ):
        changes = list(
            memory.revisions.filter(
                action__in=(MemoryRevision.Action.UPDATE, MemoryRevision.Action.EDIT)
            ).order_by("created_at", "id")
        )
        run = []  # the last changes of the text, if they all came from these messages
        while (
            changes
            and changes[-1].action == MemoryRevision.Action.UPDATE
            and changes[-1].message_id in message_ids
        ):
            run.append(changes.pop())
        if not run or (earlier := run[-1].old_text) in ("", memory.text):
            continue
        undone += 1
        same = Memory.objects.for_user(user).saying(memory.kind, earlier).exclude(pk=memory.pk)
        if memory.valid_until is None and (other := same.first()) is not None:
            other.source_messages.add(*memory.source_messages.exclude(pk__in=message_ids))
            erasure.deleted(memory.delete())
            continue
        # no vector yet: embedding is a network call, never made under the user's lock; found by
        # its words until `vectors_fill` (queued after commit) embeds it again
        memory_rewrite(
            memory,
            earlier,
            None,
            action=MemoryRevision.Action.UNDO,
            actor=MemoryRevision.Actor.USER,
            keep_old_text=False,
        )
    return undone


def memories_learned_only_from(*, user, messages) -> list[int]:
    """Ids of `user`'s memories whose every source message is in `messages` (nothing else supports
    them)."""
    message_ids = set(messages.values_list("pk", flat=True))
    through = Memory.source_messages.through.objects.filter(memory__user=user)
    candidates = set(through.filter(message_id__in=message_ids).values_list("memory_id", flat=True))
    supported_elsewhere = set(
        through.filter(memory_id__in=candidates)
        .exclude(message_id__in=message_ids)
        .values_list("memory_id", flat=True)
    )
    return sorted(candidates - supported_elsewhere)


def digests_drawing_on(*, user, conversation: Conversation) -> list[Episode]:
    """Digests whose period covers the conversation (they quote its summary) or that cite its
    messages."""
    covering = Episode.objects.for_user(user).filter(
        kind=Episode.Kind.DIGEST,
        started_at__lte=conversation.last_activity_at,
        ended_at__gte=conversation.created_at,
    )
    citing = Episode.objects.for_user(user).filter(
        kind=Episode.Kind.DIGEST, messages__conversation=conversation
    )
    return list((covering | citing).distinct())


def lock_messages(*, user, conversation_ids) -> None:
    """Wait for any worker still writing from these conversations' messages (it holds their row
    locks), so what it wrote is seen and erased, and it finds the messages gone afterwards."""
    messages = (
        Message.objects.for_user(user)
        .filter(conversation_id__in=conversation_ids)
        .select_for_update()
    )
    list(messages.values_list("pk", flat=True))  # only the ids: erasure never needs to decrypt
