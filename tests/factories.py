"""Rows made directly for tests that need a precise starting state (most tests go through the
services)."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import DataExport
from accounts.privacy import export_file_name, exports_dir
from chat.models import Conversation, Message
from memories.extraction import fingerprint
from memories.lexical import turn_weights
from memories.models import Episode, Memory
from memoryweb.ai.embeddings import embed_texts


def make_memory(
    user, text: str, *, kind="fact", subject="", embed=False, days_ago: float = 0, **fields
) -> Memory:
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
    """A user message and its turn episode ("Speaker: text"), optionally embedded, its words weighed
    with the message before it (as `memories.episodes.turn_upsert` does)."""
    answered = conversation.messages.filter(created_at__lt=when).order_by("-created_at").first()
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
        lexical=turn_weights(f"{speaker or 'User'}: {text}", answered and answered.content),
        speaker=speaker,
    )
    episode.messages.set([message])
    return episode


# Text columns are encrypted (vault/): SQL cannot compare them, so tests find rows by text in
# Python.


def memories_saying(text: str, **filters) -> list[Memory]:
    """The memories (matching `filters`) whose text is exactly `text`: narrowed by fingerprint, then
    compared."""
    return [
        m for m in Memory.objects.filter(fingerprint=fingerprint(text), **filters) if m.text == text
    ]


def memory_saying(text: str, **filters) -> Memory:
    [memory] = memories_saying(text, **filters)
    return memory


def message_starting(prefix: str, **filters) -> Message:
    """The one message (matching `filters`) whose content starts with `prefix`."""
    [message] = [m for m in Message.objects.filter(**filters) if m.content.startswith(prefix)]
    return message


def ready_export(user) -> DataExport:
    """An export of `user` that is ready to download (a small zip in the exports folder)."""
    export = DataExport.objects.create(
        user=user,
        status=DataExport.Status.READY,
        progress=100,
        finished_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    export.file_name = export_file_name(user_id=user.pk, token=export.token)
    with zipfile.ZipFile(exports_dir() / export.file_name, "w") as archive:
        archive.writestr("export.json", "{}")
    export.save(update_fields=["file_name"])
    return export
