"""Erasure reaches every copy: a marker planted in a user's messages and memories is, after "forget
everything", in no text, JSON, search or vector column of any table, nor in the logs; retrieval
finds nothing; other users keep all of theirs. Conversation deletion takes what was derived only
from it."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
from django.apps import apps
from django.contrib.postgres.search import SearchVectorField
from django.db import connection, models
from django.db.models.functions import Cast
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pgvector.django import CosineDistance, VectorField

from accounts.privacy import forget_everything
from chat.models import Conversation, Message
from chat.services import chat_turn, conversation_delete, conversation_end, conversation_start
from memories.episodes import turns_reembed_after
from memories.extraction import ExtractedItem, fingerprint
from memories.models import Episode, Memory, MemoryRevision
from memories.pipeline import message_process
from memories.retrieval import build_context
from memories.summaries import user_digest
from memoryweb.ai.embeddings import embed_texts
from tests.factories import make_turn, memories_saying, memory_saying, message_starting
from vault.fields import EncryptedTextField

MARKER = "Zorblax"
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, SearchVectorField)


def _say(user, run_on_commit, *texts, end=True) -> Conversation:
    conversation = None
    for text in texts:
        conversation = run_on_commit(
            chat_turn, user=user, conversation=conversation, text=text
        ).conversation
    if end:
        run_on_commit(conversation_end, conversation=conversation)
    return conversation


def _marker_hits() -> list[str]:
    """Every (table.column) where any row's text, JSON or tsvector contains the marker (any case),
    as stored or, for an encrypted column, once decrypted (which also proves every remaining value
    still decrypts: no row was left behind under a destroyed key)."""
    hits = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            output = getattr(field, "output_field", field)  # GeneratedField: look at what it stores
            if isinstance(field, TEXT_FIELDS) or isinstance(output, TEXT_FIELDS):
                as_text = Cast(field.attname, models.TextField())
                stored = model.objects.annotate(t=as_text).filter(t__icontains=MARKER).exists()
                plain = isinstance(field, EncryptedTextField) and any(
                    MARKER.lower() in value.lower()
                    for value in model.objects.values_list(field.attname, flat=True)
                )
                if stored or plain:
                    hits.append(f"{model._meta.db_table}.{field.column}")
    return hits


def _vector_hits(vectors) -> list[str]:
    """Every (table.column) holding a vector equal to one of `vectors`."""
    hits = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, VectorField):
                for vector in vectors:
                    rows = model.objects.filter(**{f"{field.attname}__isnull": False})
                    if (
                        rows.annotate(d=CosineDistance(field.attname, vector))
                        .filter(d__lt=1e-6)
                        .exists()
                    ):
                        hits.append(f"{model._meta.db_table}.{field.column}")
    return hits


def _rows(user) -> tuple[int, int, int, int]:
    return (
        Memory.objects.filter(user=user).count(),
        Episode.objects.filter(user=user).count(),
        Conversation.objects.filter(user=user).count(),
        Message.objects.filter(conversation__user=user).count(),
    )


def _plant(user, run_on_commit) -> list[list[float]]:
    first = _say(
        user,
        run_on_commit,
        f"Remember that my cat is called {MARKER}.",
        f"I live in {MARKER}ville with the cat.",
    )
    _say(user, run_on_commit, f"{MARKER} knocked a glass off the table again this morning.")
    user_digest(user=user, period_end=timezone.now() + timedelta(seconds=1))
    texts = list(Memory.objects.for_user(user).values_list("text", flat=True))
    texts += list(Episode.objects.for_user(user).values_list("text", flat=True))
    assert (
        any(MARKER in t for t in texts)
        and Episode.objects.filter(user=user, kind="digest").exists()
    )
    assert Episode.objects.filter(user=user, kind="summary", conversation=first).exists()
    return embed_texts([t for t in texts if MARKER in t])


def test_forget_everything_leaves_no_copy_anywhere(alice, bob, run_on_commit, caplog):
    caplog.set_level(logging.DEBUG)
    vectors = _plant(alice, run_on_commit)
    _say(bob, run_on_commit, "Remember that I'm vegetarian.", "My cat is called Felix.")
    bob_rows = _rows(bob)

    forget_everything(user=alice, delete_account=False)

    assert _marker_hits() == []
    assert _vector_hits(vectors) == []
    assert MARKER not in caplog.text
    assert build_context(alice, f"my cat {MARKER}").items == []
    assert not MemoryRevision.objects.filter(memory__user=alice).exists()
    assert _rows(bob) == bob_rows and bob_rows[0] >= 2
    assert _rows(alice) == (0, 0, 0, 0)
    assert alice.__class__.objects.filter(pk=alice.pk).exists()


def test_a_task_queued_before_the_erasure_writes_nothing_after_it(alice, run_on_commit):
    conversation = _say(alice, run_on_commit, f"My cat is called {MARKER}.", end=False)
    # queued, not run
    queued = chat_turn(user=alice, conversation=conversation, text=f"{MARKER} likes tuna.")

    forget_everything(user=alice, delete_account=False)
    assert message_process(message_id=queued.user_message.pk) is False

    assert _marker_hits() == []


def test_forgetting_the_account_deletes_it(alice, run_on_commit):
    _plant(alice, run_on_commit)
    forget_everything(user=alice, delete_account=True)
    assert not alice.__class__.objects.filter(pk=alice.pk).exists()
    assert _marker_hits() == []


def test_deleting_a_conversation_takes_what_was_learned_only_from_it(alice, run_on_commit):
    kept = _say(alice, run_on_commit, "I'm vegetarian.", "I live in Lisbon.")
    deleted = _say(alice, run_on_commit, "I'm vegetarian.", f"My cat is called {MARKER}.")
    digest = user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))
    assert MARKER in digest.text

    result = run_on_commit(conversation_delete, user=alice, conversation=deleted)

    assert result["memories"] == 1 and result["digests"] == 1
    assert _marker_hits() == []
    vegetarian = Memory.objects.get(user=alice, subject="diet")
    assert set(vegetarian.source_messages.values_list("conversation_id", flat=True)) == {kept.pk}
    assert memories_saying("User lives in Lisbon", user=alice)
    # rewritten (eagerly) from what remains
    rewritten = Episode.objects.get(user=alice, kind="digest")
    assert MARKER not in rewritten.text and "User lives in Lisbon" in rewritten.text


def test_forgetting_reaches_summaries_and_digests(alice, run_on_commit):
    from memories.consolidation import memory_forget_matching

    conversation = _say(
        alice,
        run_on_commit,
        f"I live in {MARKER}ville.",
        "I'm training for a marathon in April with my club.",
    )
    user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))
    assert MARKER in Episode.objects.get(user=alice, kind="summary").text

    run_on_commit(
        memory_forget_matching, user=alice, text=f"User lives in {MARKER}ville", subject="location"
    )

    # The chat itself (its messages and title) stays; memory no longer holds it.
    assert _marker_hits() == ["chat_conversation.title", "chat_message.content"]
    # rewritten without it
    summary = Episode.objects.get(user=alice, kind="summary", conversation=conversation)
    assert "marathon" in summary.text
    assert message_starting("I live in").excluded_from_memory


def test_deleting_a_memory_rewrites_the_digest_that_quoted_it(alice, run_on_commit):
    from memories.erasure import memory_delete
    from memories.services import memory_remember

    memory, _ = memory_remember(user=alice, kind="fact", text=f"User's cat is called {MARKER}")
    memory_remember(user=alice, kind="fact", text="User owns a red bicycle")
    user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))

    run_on_commit(memory_delete, user=alice, memory=memory)

    assert _marker_hits() == []
    assert "red bicycle" in Episode.objects.get(user=alice, kind="digest").text


def test_the_next_turn_keeps_nothing_of_the_forgotten_message(alice, run_on_commit):
    """A turn's words are weighted with the message it answers; forgetting that message weighs them
    alone again. A turn embedded before turns were embedded alone carries the message it answered in
    its vector: that vector is replaced by the turn's own."""
    from chat.services import conversation_start
    from memories.consolidation import memory_forget_matching
    from memories.episodes import turn_embedding_text
    from memories.lexical import term_id
    from memories.text import terms

    conversation = conversation_start(user=alice)
    said = [
        Message.objects.create(
            conversation=conversation, role="user", content=text, created_at=timezone.now()
        )
        for text in (f"I live in {MARKER}ville.", "What a lovely morning it is.")
    ]
    for message in said:
        message_process(message_id=message.pk)
    follower = Episode.objects.get(key=f"turn:{said[1].pk}")
    [alone] = embed_texts([turn_embedding_text(said[1])])
    assert np.allclose(follower.embedding, alone, atol=1e-4)  # the turn alone, never the marker
    marker_dimensions = {term_id(term) - 1 for term in terms(f"{MARKER}ville")}
    assert marker_dimensions <= set(follower.lexical.indices())
    # as a turn written before turns were embedded alone: the message it answered in its vector
    [legacy] = embed_texts(
        [f"{turn_embedding_text(said[1])}\n(In reply to User: {said[0].content})"]
    )
    Episode.objects.filter(pk=follower.pk).update(embedding=legacy)

    run_on_commit(
        memory_forget_matching, user=alice, text=f"User lives in {MARKER}ville", subject="location"
    )

    follower.refresh_from_db()
    assert not marker_dimensions & set(follower.lexical.indices())
    assert _vector_hits([legacy]) == []
    assert _vector_hits([alone]) == ["memories_episode.embedding"]


def _locations(user) -> tuple[list[str], list[str]]:
    """(current, older) location memories' texts, each oldest first."""
    memories = Memory.objects.for_user(user).filter(subject="location").order_by("valid_from", "pk")
    return [m.text for m in memories if m.valid_until is None], [
        m.text for m in memories if m.valid_until
    ]


def test_deleting_the_conversation_of_a_change_brings_back_what_was_true_before(
    alice, run_on_commit
):
    _say(alice, run_on_commit, "I live in Paris.")
    moved = _say(alice, run_on_commit, "I moved to Berlin.")
    assert _locations(alice) == (["User lives in Berlin"], ["User lives in Paris"])

    run_on_commit(conversation_delete, user=alice, conversation=moved)

    assert _locations(alice) == (["User lives in Paris"], [])
    paris = memory_saying("User lives in Paris", user=alice)
    assert (
        paris.superseded_by is None
        and paris.revisions.filter(action="restore", actor="user").exists()
    )
    assert [i.text for i in build_context(alice, "Where do I live?").items if i.type == "memory"][
        :1
    ] == ["User lives in Paris"]


def test_deleting_a_conversation_in_the_middle_of_a_history_keeps_the_history_linked(
    alice, run_on_commit
):
    _say(alice, run_on_commit, "I live in Paris.")
    middle = _say(alice, run_on_commit, "I moved to Berlin.")
    _say(alice, run_on_commit, "I moved to Lisbon.")

    run_on_commit(conversation_delete, user=alice, conversation=middle)

    assert _locations(alice) == (["User lives in Lisbon"], ["User lives in Paris"])
    lisbon = memory_saying("User lives in Lisbon", user=alice)
    assert memory_saying("User lives in Paris", user=alice).superseded_by == lisbon
    revisions = MemoryRevision.objects.filter(memory__user=alice)
    # the deleted chat's changes went
    assert not any("Berlin" in r.old_text + r.new_text for r in revisions)


def _learn(user, text: str, item: ExtractedItem) -> Conversation:
    """A conversation whose one message taught `item` (applied as the extractor does)."""
    from chat.services import conversation_start
    from memories.consolidation import memory_apply

    conversation = conversation_start(user=user)
    message = Message.objects.create(
        conversation=conversation, role="user", content=text, created_at=timezone.now()
    )
    [vector] = embed_texts([item.text])
    memory_apply(
        user=user, item=item, embedding=vector, message=message, source="stated", actor="extractor"
    )
    return conversation


def test_deleting_a_conversation_undoes_what_it_added_to_a_memory_from_elsewhere(
    alice, run_on_commit
):
    _learn(alice, "I work at Acme.", ExtractedItem("fact", "employer", "User works at Acme", 0.8))
    richer = _learn(
        alice,
        "I'm the CTO there.",
        ExtractedItem("fact", "employer", "User works at Acme as CTO", 0.8),
    )
    [memory] = Memory.objects.for_user(alice)
    assert memory.text == "User works at Acme as CTO"

    run_on_commit(conversation_delete, user=alice, conversation=richer)

    memory.refresh_from_db()
    assert memory.text == "User works at Acme" and memory.fingerprint == fingerprint(
        "User works at Acme"
    )
    revisions = MemoryRevision.objects.filter(memory__user=alice)
    assert not any("CTO" in r.old_text + r.new_text for r in revisions)
    assert memory.revisions.filter(action="undo", actor="user").exists()
    assert Memory.objects.for_user(alice).with_words("cto").count() == 0


def test_the_turns_after_many_forgotten_messages_are_found_in_one_statement(alice):
    """Forgetting a memory with many sources finds every turn that answers one of them at once,
    not a query per message: each loses its vector and keeps only its own words."""
    conversation = conversation_start(user=alice)
    start = timezone.now() - timedelta(hours=1)
    turns = [
        make_turn(alice, conversation, f"Line {i} about sailing", when=start + timedelta(minutes=i))
        for i in range(8)
    ]
    Episode.objects.filter(pk__in=[t.pk for t in turns]).update(embedding=embed_texts(["x"])[0])
    forgotten = [turn.messages.get().pk for turn in turns[0:6:2]]  # lines 0, 2 and 4

    with CaptureQueriesContext(connection) as queries:
        assert turns_reembed_after(message_ids=forgotten) == 3

    assert len(queries.captured_queries) <= 3  # the followers, their turns, one update
    emptied = Episode.objects.filter(pk__in=[t.pk for t in turns], embedding__isnull=True)
    assert sorted(emptied.values_list("pk", flat=True)) == [turns[i].pk for i in (1, 3, 5)]
