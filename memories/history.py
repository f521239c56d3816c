"""A memory's history: every change writes a revision, and new text keeps what follows from it in
step."""

from __future__ import annotations

from chat.models import Message
from memories.extraction import fingerprint
from memories.models import Memory, MemoryRevision
from memories.poisoning import poisoning_reasons
from memories.sensitive import sensitive_categories


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
    fingerprint and sensitive category follow the text, new text that reads as an instruction puts
    it under review, and a revision keeps the old text (unless it is being erased:
    `keep_old_text`)."""
    old_text = memory.text
    memory.text, memory.fingerprint, memory.embedding = text, fingerprint(text), embedding
    memory.sensitive_categories = sorted(sensitive_categories(text))
    for field, value in changes.items():
        setattr(memory, field, value)
    hold_if_poisoned(memory)
    fields = [
        "text",
        "fingerprint",
        "embedding",
        "sensitive_categories",
        "review_status",
        "flag_reasons",
        "updated_at",
    ]
    memory.save(update_fields=[*fields, *changes])
    revision_record(
        memory, action, actor, message, old_text=old_text if keep_old_text else "", new_text=text
    )


def hold_if_poisoned(memory: Memory) -> None:
    """New text that reads as an instruction to the assistant puts the memory back under review."""
    if reasons := poisoning_reasons(memory.text):
        memory.review_status, memory.flag_reasons = Memory.Review.PENDING, reasons


def revision_record(
    memory: Memory,
    action: str,
    actor: str,
    message: Message | None,
    *,
    old_text="",
    new_text="",
    source=True,
) -> None:
    """One change in `memory`'s history; the message that taught it becomes a source (unless
    `source` is False: a message that ended a memory is not a source of what it said)."""
    if message is not None and source:
        memory.source_messages.add(message)
    MemoryRevision.objects.create(
        memory=memory,
        action=action,
        actor=actor,
        old_text=old_text,
        new_text=new_text,
        message=message,
    )
