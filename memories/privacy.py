"""Erasure of memory data. Everything derived from erased data goes too: older versions, revisions,
recall records, turn episodes, and the summaries and digests that drew on it (digests are rewritten
from what remains). And the memories part of the data export."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction

from memories.models import Episode, Memory, MemoryRevision, TurnTerm
from memoryweb.privacy import Erasure, PrivacyArea, register


@register
class MemoriesArea(PrivacyArea):
    """Memories (with their history) and episodes: turns, conversation summaries, digests."""

    label = "memories"

    def export(self, user) -> dict[str, Any]:
        return export_user_data(user=user)

    def erase(self, user) -> Erasure:
        return erase_memory_data(user=user)


@transaction.atomic
def erase_memory_data(*, user) -> Erasure:
    """Delete all of `user`'s memories (with revisions) and episodes (turns, summaries, digests)."""
    erasure = Erasure()
    erasure.deleted(Memory.objects.for_user(user).delete())
    erasure.deleted(Episode.objects.for_user(user).delete())
    return erasure


def export_user_data(*, user) -> dict[str, Any]:
    """Everything the memories app keeps about `user`: every memory, current or not, with its
    provenance (source message ids) and history (revisions, the versions it superseded and what
    superseded it), and every episode (turns, conversation summaries, digests) with the ids of the
    messages it drew on. Embeddings, search vectors and fingerprints are derived from the text and
    are not exported."""
    return {
        "memories": _memories_export(user),
        "episodes": _episodes_export(user),
        "turn_term_counts": _term_counts_export(user),
    }


def _memories_export(user) -> list[dict[str, Any]]:
    memories = list(
        Memory.objects.for_user(user).order_by("created_at", "id").defer("embedding", "search")
    )
    sources = _ids_by_owner(
        Memory.source_messages.through.objects.filter(memory__user=user), "memory_id", "message_id"
    )
    supersedes: dict[int, list[int]] = defaultdict(list)
    for memory in memories:
        if memory.superseded_by_id is not None:
            supersedes[memory.superseded_by_id].append(memory.pk)
    revisions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for revision in MemoryRevision.objects.filter(memory__user=user).order_by("created_at", "id"):
        revisions[revision.memory_id].append(
            {
                "id": revision.pk,
                "action": revision.action,
                "actor": revision.actor,
                "old_text": revision.old_text,
                "new_text": revision.new_text,
                "message_id": revision.message_id,
                "created_at": revision.created_at,
            }
        )
    return [
        {
            "id": m.pk,
            "kind": m.kind,
            "subject": m.subject,
            "text": m.text,
            "attributes": m.attributes,
            "confidence": m.confidence,
            "importance": m.importance,
            "source": m.source,
            "pinned": m.pinned,
            "sensitive_categories": m.sensitive_categories,
            "review_status": m.review_status,
            "flag_reasons": m.flag_reasons,
            "use_in_context": m.use_in_context,
            "current": m.valid_until is None,
            "valid_from": m.valid_from,
            "valid_until": m.valid_until,
            "ends_at": m.ends_at,
            "superseded_by": m.superseded_by_id,
            "supersedes": supersedes.get(m.pk, []),
            "source_message_ids": sources.get(m.pk, []),
            "recall_count": m.recall_count,
            "last_recalled_at": m.last_recalled_at,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "revisions": revisions.get(m.pk, []),
        }
        for m in memories
    ]


def _episodes_export(user) -> list[dict[str, Any]]:
    messages = _ids_by_owner(
        Episode.messages.through.objects.filter(episode__user=user), "episode_id", "message_id"
    )
    return [
        {
            "id": e.pk,
            "kind": e.kind,
            "key": e.key,
            "conversation_id": e.conversation_id,
            "text": e.text,
            "started_at": e.started_at,
            "ended_at": e.ended_at,
            "message_ids": messages.get(e.pk, []),
            "speaker": e.speaker,
            "flag_reasons": e.flag_reasons,
            "sensitive_categories": e.sensitive_categories,
            "created_at": e.created_at,
        }
        for e in Episode.objects.for_user(user)
        .order_by("started_at", "id")
        .defer("embedding", "search", "lexical")
    ]


def _term_counts_export(user) -> list[dict[str, Any]]:
    """In how many of the user's turns each (hashed) term occurs: derived, but about them."""
    rows = TurnTerm.objects.filter(user=user).order_by("term")
    return [{"term": term, "turns": turns} for term, turns in rows.values_list("term", "turns")]


def _ids_by_owner(rows, owner: str, target: str) -> dict[int, list[int]]:
    """{owner id: sorted target ids} from the rows of a many-to-many table."""
    grouped: dict[int, list[int]] = defaultdict(list)
    for owner_id, target_id in rows.order_by(owner, target).values_list(owner, target):
        grouped[owner_id].append(target_id)
    return grouped
