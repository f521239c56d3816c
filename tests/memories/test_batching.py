"""The worker's batches: the user messages waiting are embedded in one call and written in one
transaction, each exactly once, a conversation's in the order they were said, and each under the
same checks as alone (consent, sensitive categories, exclusion)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ConsentRecord, SensitiveCategory, User
from accounts.services import consent_set
from chat.models import Conversation, Message
from memories import pipeline
from memories.episodes import turn_embedding_text
from memories.models import Episode, Memory, MemoryRevision
from memories.pipeline import MESSAGE_CLAIM_LOCKS, message_process
from memories.tasks import sweep
from memoryweb.ai.embeddings import EmbeddingError, embed_texts
from tests.factories import memories_saying

PROCESSED = re.compile(r"processed message (\d+):")


def _conversation(user, **fields) -> Conversation:
    now = timezone.now()
    return Conversation.objects.create(user=user, created_at=now, last_activity_at=now, **fields)


def _said(*turns: tuple[Conversation, str]) -> list[Message]:
    """User messages in the order given, a millisecond apart, unprocessed (as the chat turn leaves
    them for the worker)."""
    start = timezone.now()
    return [
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=text,
            created_at=start + timedelta(milliseconds=i),
        )
        for i, (conversation, text) in enumerate(turns)
    ]


def _processed_at(messages: list[Message]) -> list:
    return [Message.objects.get(pk=m.pk).processed_at for m in messages]


class OtherWorker:
    """Another worker's database connection, holding the claims of the messages it works on."""

    def __init__(self):
        self.connection = connections.create_connection("default")

    def claim(self, message: Message) -> bool:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [MESSAGE_CLAIM_LOCKS, message.pk])
            return cursor.fetchone()[0]

    def release(self, message: Message) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [MESSAGE_CLAIM_LOCKS, message.pk])

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def other_worker():
    worker = OtherWorker()
    yield worker
    worker.close()


@pytest.fixture
def embedding_calls(monkeypatch):
    """The texts of each embedding call the pipeline makes (the real model still embeds them)."""
    calls = []

    def embed_and_record(texts):
        calls.append(list(texts))
        return embed_texts(texts)

    monkeypatch.setattr(pipeline, "embed_texts", embed_and_record)
    return calls


def test_the_waiting_messages_are_embedded_in_one_call_and_written_in_order(
    alice, bob, embedding_calls
):
    at_home, at_work = _conversation(alice), _conversation(bob)
    said = _said(
        (at_home, "I live in Porto."),
        (at_work, "I work at Initech."),
        (at_home, "What a lovely morning it is."),
        (at_work, "My manager is called Lumbergh."),
        (at_home, "I'm vegetarian."),
    )

    assert message_process(message_id=said[2].pk) is True  # the middle one of its conversation

    turns = [turn_embedding_text(m) for m in said]
    [texts] = embedding_calls  # every turn (and every item) at once
    assert [texts.index(turn) for turn in turns] == sorted(texts.index(turn) for turn in turns)
    assert all(_processed_at(said))
    # written in the order they were said: what each taught, and in that order
    order = [m.pk for m in said]
    taught = MemoryRevision.objects.order_by("id").values_list("message_id", flat=True)
    assert [order.index(pk) for pk in taught] == [0, 1, 3, 4]
    assert memories_saying("User lives in Porto", user=alice)
    assert memories_saying("User works at Initech", user=bob)
    assert memories_saying("User is vegetarian", user=alice)
    # each turn's vector is the one it gets when embedded alone
    for message, turn in zip(said, turns, strict=True):
        episode = Episode.objects.get(key=f"turn:{message.pk}")
        [alone] = embed_texts([turn])
        assert np.allclose(episode.embedding, alone, atol=1e-4)
    assert message_process(message_id=said[4].pk) is False  # done in the batch


def test_a_conversation_whose_oldest_message_another_worker_holds_is_left_to_it(
    alice, bob, other_worker
):
    at_home, at_work = _conversation(alice), _conversation(bob)
    held, later, other = _said(
        (at_home, "I live in Porto."),
        (at_home, "I'm vegetarian."),
        (at_work, "I work at Initech."),
    )
    assert other_worker.claim(held)

    assert message_process(message_id=other.pk) is True

    assert _processed_at([held, later, other])[:2] == [None, None]  # not before the held one
    assert not memories_saying("User is vegetarian", user=alice)
    assert memories_saying("User works at Initech", user=bob)


@pytest.mark.django_db(transaction=True)
def test_a_message_waits_for_the_earlier_one_another_worker_holds_then_follows_it(
    alice, other_worker
):
    conversation = _conversation(alice)
    earlier, asked = _said((conversation, "I live in Porto."), (conversation, "I'm vegetarian."))
    assert other_worker.claim(earlier)  # that worker is still extracting it
    results = []

    def deliver():
        try:
            results.append(message_process(message_id=asked.pk))
        finally:
            connection.close()

    delivery = threading.Thread(target=deliver)
    delivery.start()
    time.sleep(2)
    assert delivery.is_alive() and _processed_at([earlier, asked]) == [None, None]

    other_worker.release(earlier)  # that worker died before writing: this one takes both
    delivery.join(timeout=60)

    assert results == [True]
    first, second = _processed_at([earlier, asked])
    assert first and second and first <= second  # in one batch, the earlier written first
    taught = MemoryRevision.objects.order_by("id").values_list("message_id", flat=True)
    assert list(taught) == [earlier.pk, asked.pk]
    assert memories_saying("User lives in Porto", user=alice)


def test_a_duplicate_delivery_or_the_sweep_changes_nothing(alice, bob):
    said = _said(
        (_conversation(alice), "I live in Porto."), (_conversation(bob), "I'm vegetarian.")
    )
    assert message_process(message_id=said[0].pk) is True
    counts = (Memory.objects.count(), MemoryRevision.objects.count(), Episode.objects.count())
    assert counts == (2, 2, 2)

    assert message_process(message_id=said[0].pk) is False
    assert message_process(message_id=said[1].pk) is False  # processed by the first one's batch
    old = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk__in=[m.pk for m in said]).update(created_at=old, queued_at=old)
    assert sweep()["messages"] == 0

    assert (Memory.objects.count(), MemoryRevision.objects.count(), Episode.objects.count()) == (
        counts
    )


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_process_one_message_twice(
    alice, bob, charlie, settings, caplog, monkeypatch
):
    """Two workers (threads, each on its own connection) get every message's task, in order, as
    when a task is delivered twice; small batches so that they meet often."""
    settings.MEMORY_BATCH_SIZE = 3
    planned = Counter()  # extracted: the slow work the claims keep from being done twice
    plan = pipeline.message_plan

    def plan_and_count(message, *args):
        planned[message.pk] += 1
        return plan(message, *args)

    monkeypatch.setattr(pipeline, "message_plan", plan_and_count)
    caplog.set_level(logging.INFO, logger="memories.pipeline")
    users = [alice, alice, bob, bob, charlie, charlie]
    conversations = [_conversation(user) for user in users]
    facts = ["I live in Porto", "I work at Initech"] * 3
    said = _said(
        *[(c, f"Just thinking about the day, round {i}.") for i in range(6) for c in conversations],
        *[(c, f"{fact}.") for c, fact in zip(conversations, facts, strict=True)],
    )
    errors = []

    def worker():
        try:
            for message in said:
                message_process(message_id=message.pk)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)

    assert errors == []
    processed = Counter(
        int(match.group(1)) for r in caplog.records if (match := PROCESSED.match(r.getMessage()))
    )
    assert processed == Counter(m.pk for m in said)  # each written exactly once
    assert planned == processed  # and extracted exactly once
    for conversation in conversations:
        times = [m.processed_at for m in conversation.messages.order_by("created_at", "id")]
        assert all(times) and times == sorted(times)
    for user in (alice, bob, charlie):
        for text in ("User lives in Porto", "User works at Initech"):
            [memory] = memories_saying(text, user=user)
            assert memory.revisions.count() == 1 and memory.source_messages.count() == 1


def test_a_failing_embedding_loses_nothing(alice, bob, monkeypatch, other_worker):
    said = _said(
        (_conversation(alice), "I live in Porto."),
        (_conversation(bob), "I work at Initech."),
        (_conversation(bob), "I'm vegetarian."),
    )

    def embedding_server_down(texts):
        raise EmbeddingError("The embedding endpoint failed: APIConnectionError")

    monkeypatch.setattr(pipeline, "embed_texts", embedding_server_down)
    with pytest.raises(EmbeddingError):
        message_process(message_id=said[1].pk)

    assert _processed_at(said) == [None, None, None]
    assert not Memory.objects.exists() and not Episode.objects.exists()
    for message in said:  # nothing is left claimed
        assert other_worker.claim(message)
        other_worker.release(message)

    monkeypatch.setattr(pipeline, "embed_texts", embed_texts)  # it is back
    old = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk__in=[m.pk for m in said]).update(created_at=old, queued_at=old)
    assert sweep()["messages"] == 3  # queued again, and (eagerly) processed

    assert all(_processed_at(said))
    assert memories_saying("User lives in Porto", user=alice)
    assert memories_saying("User works at Initech", user=bob)
    assert Episode.objects.count() == 3


def test_a_message_whose_writes_fail_is_left_with_the_rest_of_its_conversation(
    alice, bob, monkeypatch
):
    at_home, at_work = _conversation(alice), _conversation(bob)
    failing, after_it, other = _said(
        (at_home, "I live in Porto."),
        (at_home, "I'm vegetarian."),
        (at_work, "I work at Initech."),
    )
    real_apply = pipeline.memory_apply

    def apply_failing(*, message, **fields):
        if message.pk == failing.pk:
            raise RuntimeError("a bug in writing this turn")
        return real_apply(message=message, **fields)

    monkeypatch.setattr(pipeline, "memory_apply", apply_failing)
    assert message_process(message_id=other.pk) is True

    assert _processed_at([failing, after_it]) == [None, None]
    assert not memories_saying("User lives in Porto", user=alice)  # its savepoint rolled back
    assert not memories_saying("User is vegetarian", user=alice)  # not written before it
    assert memories_saying("User works at Initech", user=bob)

    with pytest.raises(RuntimeError):  # its own task fails, and the sweep will retry it
        message_process(message_id=failing.pk)
    monkeypatch.setattr(pipeline, "memory_apply", real_apply)
    assert message_process(message_id=failing.pk) is True
    assert all(_processed_at([failing, after_it]))
    assert memories_saying("User is vegetarian", user=alice)


def test_consent_exclusion_and_sensitive_categories_apply_to_each_message_of_a_batch(alice, bob):
    stranger = User.objects.create_user(username="stranger", password="stranger-pass-123")
    consent_set(
        user=bob,
        purpose=ConsentRecord.SENSITIVE_PREFIX + SensitiveCategory.HEALTH,
        granted=True,
        method="test",
    )
    chat, temporary = _conversation(alice), _conversation(alice, temporary=True)
    plain, excluded, in_temporary, unconsented, sensitive, sensitive_allowed = _said(
        (chat, "I live in Porto."),
        (chat, "I work at Initech."),
        (temporary, "I'm vegetarian."),
        (_conversation(stranger), "I have a dog called Rex."),
        (chat, "I have asthma and my therapist is great."),
        (_conversation(bob), "I have asthma and my therapist is great."),
    )
    Message.objects.filter(pk=excluded.pk).update(excluded_from_memory=True)

    assert message_process(message_id=plain.pk) is True

    everything = [plain, excluded, in_temporary, unconsented, sensitive, sensitive_allowed]
    assert all(_processed_at(everything))  # none is asked again
    turns = {int(key.split(":")[1]) for key in Episode.objects.values_list("key", flat=True)}
    assert turns == {plain.pk, sensitive_allowed.pk}
    assert memories_saying("User lives in Porto", user=alice)
    assert not memories_saying("User works at Initech", user=alice)
    assert not Memory.objects.filter(user=stranger).exists()
    assert not Memory.objects.filter(source_messages__in=[in_temporary, sensitive]).exists()
    for message in (excluded, in_temporary, unconsented, sensitive):
        assert message_process(message_id=message.pk) is False


def test_a_forget_turn_ends_its_conversations_part_of_the_batch(alice):
    conversation = _conversation(alice)
    _said((conversation, "I live in Porto."))
    message_process(message_id=conversation.messages.get().pk)
    forget, after = _said(
        (conversation, "Forget that I live in Porto."), (conversation, "What a lovely morning.")
    )

    assert message_process(message_id=forget.pk) is True

    forget.refresh_from_db()
    after.refresh_from_db()
    assert forget.excluded_from_memory and after.processed_at is not None
    # the next turn is embedded as if the forgotten one had never been said, as when alone
    episode = Episode.objects.get(key=f"turn:{after.pk}")
    [alone] = embed_texts([turn_embedding_text(after)])
    assert np.allclose(episode.embedding, alone, atol=1e-4)


def test_with_a_model_extracting_each_message_goes_alone(settings):
    settings.MEMORY_BATCH_SIZE = 32
    assert pipeline.batch_size() == 32
    settings.OPENAI_API_KEY = "a-key"
    assert pipeline.batch_size() == 1


def _statements_of_one_batch(count: int, tag: str) -> int:
    """The SQL statements of processing `count` waiting messages of as many users in one batch."""
    from tests.conftest import _user

    said = _said(
        *[
            (_conversation(_user(f"{tag}{n}")), f"What a lovely morning, the {n}th.")
            for n in range(count)
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        assert message_process(message_id=said[0].pk) is True
    assert all(_processed_at(said)) and Episode.objects.filter(key__startswith="turn:").count()
    return len(queries)


def test_a_batch_takes_a_few_statements_whatever_its_size(db, settings):
    """Its reads and writes go for the whole batch at once: what grows with the batch is each
    message's claim (taken and let go), and what its items teach, not a round of queries each."""
    settings.MEMORY_BATCH_SIZE = 32
    few = _statements_of_one_batch(2, "few")
    Message.objects.all().delete()
    many = _statements_of_one_batch(12, "many")

    assert (many - few) / 10 <= 2  # the claim, taken and let go
    assert few <= 30


def test_a_turn_written_before_is_written_again_in_place(alice, bob):
    """A message processed again after its turn was kept (the sweep after a crash between two
    writes, or data restored): the batch's one-statement insert meets the key and goes the longer
    way, for every turn of the batch, and loses none."""
    home, work = _conversation(alice), _conversation(bob)
    again, fresh = _said((home, "I live in Porto."), (work, "What a lovely morning."))
    stale = Episode.objects.create(
        user=alice,
        conversation=home,
        kind=Episode.Kind.TURN,
        key=f"turn:{again.pk}",
        text="User: an older text",
        started_at=again.created_at,
        ended_at=again.created_at,
    )

    assert message_process(message_id=again.pk) is True

    assert all(_processed_at([again, fresh]))
    stale.refresh_from_db()
    [alone] = embed_texts([turn_embedding_text(again)])
    assert stale.text == "User: I live in Porto." and np.allclose(stale.embedding, alone, atol=1e-4)
    assert list(stale.messages.all()) == [again]
    assert Episode.objects.get(key=f"turn:{fresh.pk}").messages.get() == fresh
    assert Episode.objects.filter(key__startswith="turn:").count() == 2
