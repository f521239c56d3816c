"""Ingesting a LoCoMo conversation as a fresh user, through the product's own memory pipeline.

Each session becomes a Conversation with its original date; each turn a user Message (speaker and
dia_id kept) processed by `memories.pipeline.message_process`, synchronously; each conversation is
then ended and finalized by `conversation_finalize`, as the worker would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model

from accounts.models import ConsentRecord, SensitiveCategory
from accounts.services import consent_set, memory_settings_update
from chat.models import Conversation, Message
from memories.evaluation.locomo import Sample, Session
from memories.models import Episode
from memories.pipeline import conversation_finalize, message_process

# turn i of a session is stored at the session's time + i × 30 s
TURN_SPACING = timedelta(seconds=30)
USERNAME_PREFIX = "locomo-"


@dataclass
class IngestedSample:
    sample: Sample
    user: object
    dia_by_message: dict[int, str]  # Message id → the turn's dia_id
    turns: int
    # the last turn's time (None: no turns): when its questions are asked by default
    ended_at: datetime | None
    turns_without_episode: int  # turns the pipeline kept no episode of (e.g. read as "forget …")


def ingest_sample(sample: Sample) -> IngestedSample:
    """A new user holding `sample`'s sessions, every turn processed into memories and episodes."""
    user = get_user_model().objects.create_user(
        username=unique_username(sample.sample_id), password=None
    )
    # An evaluation user has consented to memory, to every sensitive category (the data set's people
    # talk about health, beliefs, identity) and turned on the use of past chats (all off by
    # default).
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="evaluation")
    for category in SensitiveCategory:
        consent_set(
            user=user,
            purpose=ConsentRecord.SENSITIVE_PREFIX + category,
            granted=True,
            method="evaluation",
        )
    memory_settings_update(user=user, use_past_chats=True)
    dia_by_message: dict[int, str] = {}
    for session in sample.sessions:
        if session.turns:
            dia_by_message.update(_ingest_session(user, sample.sample_id, session))
    sessions = [s for s in sample.sessions if s.turns]
    episodes = Episode.objects.filter(user=user, kind=Episode.Kind.TURN).count()
    return IngestedSample(
        sample=sample,
        user=user,
        dia_by_message=dia_by_message,
        turns=len(dia_by_message),
        ended_at=max((_turn_times(s)[-1] for s in sessions), default=None),
        turns_without_episode=len(dia_by_message) - episodes,
    )


def kept_sample(sample: Sample) -> IngestedSample | None:
    """`sample` as a run with --keep-users left it: its newest user whose messages are exactly the
    sample's turns (a run stopped halfway left fewer), read back; None when there is no such
    user."""
    users = get_user_model().objects.filter(
        username__startswith=f"{USERNAME_PREFIX}{sample.sample_id}-"
    )
    user = users.order_by("-date_joined", "-id").first()
    if user is None:
        return None
    messages = Message.objects.filter(conversation__user=user).values_list(
        "pk", "external_id", "created_at"
    )
    dia_by_message = {pk: dia_id for pk, dia_id, _ in messages}
    if sorted(dia_by_message.values()) != sorted(t.dia_id[:100] for t in sample.turns):
        return None
    episodes = Episode.objects.filter(user=user, kind=Episode.Kind.TURN).count()
    return IngestedSample(
        sample=sample,
        user=user,
        dia_by_message=dia_by_message,
        turns=len(dia_by_message),
        ended_at=max((created_at for _, _, created_at in messages), default=None),
        turns_without_episode=len(dia_by_message) - episodes,
    )


def unique_username(sample_id: str) -> str:
    return f"{USERNAME_PREFIX}{sample_id}-{secrets.token_hex(4)}"[:150]


def _turn_times(session: Session) -> list[datetime]:
    return [session.started_at + i * TURN_SPACING for i in range(len(session.turns))]


def _ingest_session(user, sample_id: str, session: Session) -> dict[int, str]:
    times = _turn_times(session)
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
    """Erase the benchmark's users and, by cascade, their conversations, messages, memories and
    episodes."""
    for user in users:
        user.delete()
