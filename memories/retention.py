"""Retention of memory data: what is kept no longer than the configured limits
(docs/configuration.md).

Conversations past RETENTION_CONVERSATION_DAYS are chat's to delete (chat.tasks.delete_old_conversations).
- Memories neither restated nor recalled for RETENTION_MEMORY_DAYS are deleted with their revisions,
  except pinned ones (the user asked to remember them); old versions expire the same way.
- Digests older than the conversation limit go too.
0 switches a limit off. Applied by the periodic task memories.tasks.apply_retention.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models.functions import Coalesce, Greatest

from memories.models import Episode, Memory


def apply_retention(now: datetime) -> dict[str, int]:
    """Delete what is past its retention limit, for every user. Returns the counts deleted."""
    return {"digests": _expire_digests(now), "memories": _expire_memories(now)}


def _expire_digests(now: datetime) -> int:
    """Digests go with the conversations they summarize: at the conversations' limit."""
    if not (days := settings.RETENTION_CONVERSATION_DAYS):
        return 0
    deleted, _ = Episode.objects.filter(
        kind=Episode.Kind.DIGEST, ended_at__lt=now - timedelta(days=days)
    ).delete()
    return deleted


def _expire_memories(now: datetime) -> int:
    """Memories (current ones and old versions alike) untouched since the cutoff, unless pinned."""
    days = settings.RETENTION_MEMORY_DAYS
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    last_touched = Greatest("updated_at", Coalesce("last_recalled_at", "updated_at"))
    stale = (
        Memory.objects.filter(pinned=False)
        .annotate(last_touched=last_touched)
        .filter(last_touched__lt=cutoff)
    )
    # revisions and recalls cascade
    deleted, _ = Memory.objects.filter(pk__in=stale.values("pk")).delete()
    return deleted
