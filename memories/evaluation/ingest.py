"""Ingesting a LoCoMo conversation as a fresh user, through the product's own memory pipeline.

Each session becomes a Conversation with its original date; each turn a user Message (speaker and dia_id
kept) processed by `memories.services.message_process`, synchronously; each conversation is then ended and
finalized by `conversation_finalize`, as the worker would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model

from chat.models import Conversation, Message
from memories.evaluation.locomo import Sample, Session
from memories.services import conversation_finalize, message_process

TURN_SPACING = timedelta(seconds=30)  # turn i of a session is stored at the session's time + i × 30 s
USERNAME_PREFIX = "locomo-"


@dataclass
class IngestedSample:
    sample: Sample
    user: object
    dia_by_message: dict[int, str]  # Message id → the turn's dia_id
    turns: int


def ingest_sample(sample: Sample) -> IngestedSample:
    """A new user holding `sample`'s sessions, every turn processed into memories and episodes."""
    user = get_user_model().objects.create_user(username=unique_username(sample.sample_id), password=None)
    dia_by_message: dict[int, str] = {}
    for session in sample.sessions:
        if session.turns:
            dia_by_message.update(_ingest_session(user, sample.sample_id, session))
    return IngestedSample(sample=sample, user=user, dia_by_message=dia_by_message, turns=len(dia_by_message))


def unique_username(sample_id: str) -> str:
    return f"{USERNAME_PREFIX}{sample_id}-{secrets.token_hex(4)}"[:150]


def _ingest_session(user, sample_id: str, session: Session) -> dict[int, str]:
    times = [session.started_at + i * TURN_SPACING for i in range(len(session.turns))]
    conversation = Conversation.objects.create(
        user=user,
        title=f"LoCoMo {sample_id} session {session.number}"[:200],
        created_at=times[0],
        last_activity_at=times[-1],
    )
    dia_by_message: dict[int, str] = {}
    for turn, created_at in zip(session.turns, times, strict=True):
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            speaker=turn.speaker[:100],
            external_id=turn.dia_id[:100],
            content=turn.content,
            created_at=created_at,
        )
        dia_by_message[message.pk] = turn.dia_id
        message_process(message_id=message.pk)
    Conversation.objects.filter(pk=conversation.pk).update(ended_at=times[-1])
    conversation_finalize(conversation_id=conversation.pk)
    return dia_by_message


def delete_users(users: list) -> None:
    """Erase the benchmark's users and, by cascade, their conversations, messages, memories and episodes."""
    for user in users:
        user.delete()
