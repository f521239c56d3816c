"""Episodes: embedded slices of conversation (a turn, a conversation's summary, a weekly digest).

Each has a key that says what it is of, so that writing it again (a task run twice) updates one row.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from accounts.selectors import memory_policy
from accounts.services import lock_user
from chat.models import Conversation, Message
from memories.lexical import turn_weights
from memories.models import Episode, Memory, episode_checks, search_vector
from memories.sensitive import not_allowed
from memoryweb.ai.embeddings import embed_texts


def turn_key(message_id: int) -> str:
    return f"turn:{message_id}"


def summary_key(conversation_id: int) -> str:
    return f"summary:{conversation_id}"


def digest_key(period_end: datetime) -> str:
    return f"digest:{period_end:%G-W%V}"


def episode_upsert(
    *,
    user,
    key: str,
    kind: str,
    text: str,
    embedding,
    started_at: datetime,
    ended_at: datetime,
    messages,
    conversation: Conversation | None = None,
    lexical=None,
    speaker: str = "",
) -> Episode:
    """Write the episode under `key` (new, or the one written before) with the messages it draws
    on. Most are new (a turn is written once): they are inserted at once, and only a key taken
    already goes the longer way of reading the row to update it."""
    fields = {
        "conversation": conversation,
        "kind": kind,
        "text": text,
        "started_at": started_at,
        "ended_at": ended_at,
        "embedding": embedding,
        "lexical": lexical,
        "speaker": speaker,
    }
    try:
        with transaction.atomic():
            episode = Episode.objects.create(user=user, key=key, **fields)
    except IntegrityError:  # written before under this key (episode_user_key_unique)
        episode, _ = Episode.objects.update_or_create(user=user, key=key, defaults=fields)
        episode.messages.set(messages)
        return episode
    Episode.messages.through.objects.bulk_create(
        [
            Episode.messages.through(episode=episode, message_id=getattr(m, "pk", m))
            for m in messages
        ]
    )
    return episode


def turn_text(message: Message) -> str:
    """What a turn's episode says (and shows): the speaker and the message."""
    speaker = message.speaker or "User"
    return f"{speaker}: {message.content}"


def turn_embedding_text(message: Message) -> str:
    """What a turn's episode is embedded as: the turn alone, speaker first.

    The message it answers reaches its ranking without being embedded with it: its words are in the
    turn's BM25 weights, and its score in the turn's neighbour share (`memories.lexical`). Embedding
    the two together doubled the word pieces the model reads for no recall (docs/benchmarks.md)."""
    return turn_text(message)


def message_answered(message: Message, allowed: frozenset[str]) -> Message | None:
    """The message said just before `message` in its conversation (either side), unless the user had
    it forgotten or it touches a special category the user has not opted in to."""
    previous = (
        message.conversation.messages.filter(created_at__lt=message.created_at)
        .order_by("-created_at", "-id")
        .only("role", "speaker", "content", "excluded_from_memory")
        .first()
    )
    return answerable(previous, allowed)


def answerable(previous: Message | None, allowed: frozenset[str]) -> Message | None:
    """`previous` as the message a turn answers (`message_answered`), or None when it may not be."""
    if previous is None or previous.excluded_from_memory or not_allowed(previous.content, allowed):
        return None
    return previous


def turn_upsert(
    message: Message, embedding: list[float], answered: Message | None = None
) -> Episode:
    """The turn episode of a user message, embedded with `embedding`, its words weighted with those
    of the message it `answered` (`message_answered`)."""
    fields = _turn_fields(message, embedding, answered)
    return episode_upsert(
        user=message.conversation.user,
        key=turn_key(message.pk),
        kind=Episode.Kind.TURN,
        messages=[message],
        **fields,
    )


def turns_write(turns: list[tuple[Message, list[float], Message | None]]) -> None:
    """`turn_upsert` of many (message, embedding, answered) at once, as the worker's batches write
    them: three statements however many (their ids drawn, the rows, their links to the messages).
    A key written before (a message processed again) sends them the one-by-one way instead."""
    if not turns:
        return
    ids = Episode._meta.pk.draw(len(turns))
    episodes = []
    for pk, (message, embedding, answered) in zip(ids, turns, strict=True):
        fields = _turn_fields(message, embedding, answered)
        flag_reasons, categories = episode_checks(fields["text"])
        episodes.append(
            Episode(
                pk=pk,
                user_id=message.conversation.user_id,
                key=turn_key(message.pk),
                kind=Episode.Kind.TURN,
                search=search_vector(fields["text"]),
                flag_reasons=flag_reasons,
                sensitive_categories=categories,
                **fields,
            )
        )
    try:
        with transaction.atomic():
            Episode.objects.bulk_create(episodes)
    except IntegrityError:  # one was written before (episode_user_key_unique)
        for message, embedding, answered in turns:
            turn_upsert(message, embedding, answered)
        return
    Episode.messages.through.objects.bulk_create(
        [
            Episode.messages.through(episode_id=pk, message_id=message.pk)
            for pk, (message, _, _) in zip(ids, turns, strict=True)
        ]
    )


def _turn_fields(message: Message, embedding, answered: Message | None) -> dict:
    return {
        "conversation": message.conversation,
        "text": turn_text(message),
        "embedding": embedding,
        "started_at": message.created_at,
        "ended_at": message.created_at,
        "lexical": turn_lexical(message, answered),
        "speaker": message.speaker,
    }


def turn_lexical(message: Message, answered: Message | None = None):
    """A turn's BM25 weights: its words, and those of the message it `answered` at a lesser weight
    (`lexical.turn_weights`)."""
    return turn_weights(turn_text(message), answered.content if answered is not None else None)


def turns_reembed_after(*, message_ids) -> int:
    """The turn episodes answering one of these messages (after the user had those forgotten) have
    their words weighted alone at once, and lose their vectors: a turn written before turns were
    embedded alone (December 2026) carries the message it answered in its vector. `vectors_fill`
    embeds and weighs them again, with the message they now answer, outside the user's lock."""
    following = (
        Message.objects.filter(
            conversation=OuterRef("conversation"),
            created_at__gt=OuterRef("created_at"),
            role=Message.Role.USER,
        )
        .order_by("created_at", "id")
        .values("pk")[:1]
    )
    forgotten = Message.objects.filter(pk__in=list(message_ids))
    followers = {
        turn_key(m.pk): m
        for m in Message.objects.filter(pk__in=forgotten.values(next=Subquery(following)))
    }
    turns = list(Episode.objects.filter(key__in=followers, kind=Episode.Kind.TURN).only("key"))
    for turn in turns:
        turn.embedding, turn.lexical = None, turn_lexical(followers[turn.key])
    Episode.objects.bulk_update(turns, ["embedding", "lexical"])
    return len(turns)


VECTORS_FILL_BATCH = 64


def vectors_fill(*, user_id: int) -> int:
    """Embed the user's memories and turns that an erasure left without a vector. The embedding (a
    network call, with a model server) runs outside the user's lock; each vector is then written
    under it only if the row still says what was embedded. Returns how many were filled."""
    memories = list(
        Memory.objects.for_user(user_id)
        .filter(embedding__isnull=True)
        .values_list("pk", "text")[:VECTORS_FILL_BATCH]
    )
    allowed = memory_policy(user=user_id).sensitive_categories
    turns = [
        (episode.pk, message, message_answered(message, allowed))
        for episode in Episode.objects.for_user(user_id)
        .filter(kind=Episode.Kind.TURN, embedding__isnull=True)
        .prefetch_related("messages__conversation")[:VECTORS_FILL_BATCH]
        for message in episode.messages.all()[:1]
    ]
    if not memories and not turns:
        return 0
    turn_texts = [turn_embedding_text(message) for _, message, _ in turns]
    vectors = embed_texts([text for _, text in memories] + turn_texts)
    filled = 0
    with transaction.atomic():
        lock_user(user_id)
        for (pk, text), vector in zip(memories, vectors, strict=False):
            current = Memory.objects.filter(pk=pk, embedding__isnull=True).first()
            if current is not None and current.text == text:
                Memory.objects.filter(pk=pk).update(embedding=vector)
                filled += 1
        for (pk, _, answered), text, vector in zip(
            turns, turn_texts, vectors[len(memories) :], strict=True
        ):
            episode = Episode.objects.filter(pk=pk, embedding__isnull=True).first()
            message = episode.messages.select_related("conversation").first() if episode else None
            if (
                message is not None
                and message_answered(message, allowed) == answered
                and turn_embedding_text(message) == text
            ):
                Episode.objects.filter(pk=pk).update(
                    embedding=vector, lexical=turn_lexical(message, answered)
                )
                filled += 1
    return filled
