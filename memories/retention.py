"""Retention: what is kept no longer than the configured limits (README, Configuration).

- Conversations (with their messages, turn episodes and summaries) whose last activity is older than
  RETENTION_CONVERSATION_DAYS are deleted. Memories learned from them stay, without that provenance:
  memories have their own limit.
- Memories neither restated nor recalled for RETENTION_MEMORY_DAYS are deleted with their revisions,
  except pinned ones (the user asked to remember them); old versions expire the same way.
- Digests older than the conversation limit go too.
0 switches a limit off. Applied by the periodic sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce, Greatest

from chat.models import Conversation
from memories.models import Episode, Memory


def apply_retention(now: datetime) -> dict[str, int]:
    """Delete what is past its retention limit, for every user. Returns the counts deleted."""
    return {"conversations": _expire_conversations(now), "memories": _expire_memories(now)}


def _expire_conversations(now: datetime) -> int:
    days = settings.RETENTION_CONVERSATION_DAYS
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    with transaction.atomic():
        Episode.objects.filter(kind=Episode.Kind.DIGEST, ended_at__lt=cutoff).delete()
        deleted, _ = Conversation.objects.filter(last_activity_at__lt=cutoff).delete()
    return deleted


def _expire_memories(now: datetime) -> int:
    """Memories (current ones and old versions alike) untouched since the cutoff, unless pinned."""
    days = settings.RETENTION_MEMORY_DAYS
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    last_touched = Greatest("updated_at", Coalesce("last_recalled_at", "updated_at"))
    stale = Memory.objects.filter(pinned=False).annotate(last_touched=last_touched).filter(last_touched__lt=cutoff)
    deleted, _ = Memory.objects.filter(pk__in=stale.values("pk")).delete()  # revisions and recalls cascade
    return deleted
