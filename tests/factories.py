"""Rows made directly for tests that need a precise starting state (most tests go through the services)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from chat.models import Conversation, Message
from memories.extraction import fingerprint
from memories.models import Episode, Memory
from memoryweb.ai.embeddings import embed_texts


def make_memory(user, text: str, *, kind="fact", subject="", embed=False, days_ago: float = 0, **fields) -> Memory:
    """A memory learned `days_ago` (valid_from and updated_at), optionally embedded."""
    when = timezone.now() - timedelta(days=days_ago)
    memory = Memory.objects.create(
        user=user,
        kind=kind,
        subject=subject or fingerprint(text)[:12],
        text=text,
        fingerprint=fingerprint(text),
        valid_from=when,
        embedding=embed_texts([text])[0] if embed else None,
        **fields,
    )
    Memory.objects.filter(pk=memory.pk).update(updated_at=when)
    memory.refresh_from_db()
    return memory


def make_turn(
    user, conversation: Conversation, text: str, *, when: datetime, speaker: str = "", embed=False
) -> Episode:
    """A user message and its turn episode ("Speaker: text"), optionally embedded."""
    message = Message.objects.create(
        conversation=conversation, role="user", speaker=speaker, content=text, created_at=when
    )
    episode = Episode.objects.create(
        user=user,
        conversation=conversation,
        kind="turn",
        key=f"turn:{message.pk}",
        text=f"{speaker or 'User'}: {text}",
        started_at=when,
        ended_at=when,
        embedding=embed_texts([text])[0] if embed else None,
    )
    episode.messages.set([message])
    return episode
