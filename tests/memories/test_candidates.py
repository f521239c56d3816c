"""The context's candidate lists in one statement (memories.candidates), and rows kept whole in
the table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import memory_settings_update
from chat.services import conversation_start
from memories import candidates, selectors
from memories.models import Memory
from memories.retrieval import build_context
from memoryweb.ai import embeddings
from tests.factories import make_memory, make_turn


def _selects(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "vault_userkey" not in q["sql"]]


def test_a_context_takes_four_statements_whatever_its_lists(alice):
    """The policy, the speakers the query may name (before it is embedded), every list of memories
    and episodes together, the turns: not one per list."""
    make_memory(alice, "User is vegetarian", subject="diet", embed=True)
    make_memory(alice, "Dentist appointment", attributes={"date": timezone.localdate().isoformat()})
    conversation = conversation_start(user=alice)
    make_turn(alice, conversation, "We went hiking in May", when=timezone.now(), embed=True)

    with CaptureQueriesContext(connection) as queries:
        context = build_context(alice, "what did we do last week when hiking?")

    assert {"User is vegetarian", "Dentist appointment"} <= {i.text for i in context.items}
    assert len(_selects(queries)) == 4


def test_without_past_chats_a_context_reads_neither_speakers_nor_turns(alice):
    make_memory(alice, "User is vegetarian", subject="diet", embed=True)
    make_turn(alice, conversation_start(user=alice), "Ann: hiking", when=timezone.now())
    memory_settings_update(user=alice, use_past_chats=False)

    with CaptureQueriesContext(connection) as queries:
        context = build_context(alice, "what did Ann say about hiking?")

    assert [i.text for i in context.items] == ["User is vegetarian"]
    assert len(_selects(queries)) == 2  # the policy, the lists of memories


def test_a_connection_plans_the_context_once_not_for_every_question(alice):
    """Prepared after a few questions (`memoryweb.database.PREPARE_THRESHOLD`): PostgreSQL then
    reuses one plan of each search instead of planning it again (most of the lists' time)."""
    make_memory(alice, "User is vegetarian", subject="diet", embed=True)
    conversation = conversation_start(user=alice)
    make_turn(alice, conversation, "We went hiking in May", when=timezone.now(), embed=True)

    questions = ("where did we hike?", "what do I eat?", "plans?", "hiking?", "food?", "tea?")
    for question in questions:  # the same lists each time: no time named
        build_context(alice, question)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()

    searches = [runs for sql, runs in prepared if "memories_turnterm" in sql]
    lists = [runs for sql, runs in prepared if "to_tsquery('english'::regconfig" in sql]
    assert searches == [1] and lists == [1]  # run five times, prepared at the sixth


@pytest.mark.django_db(transaction=True)
def test_prepared_searches_survive_a_migration_from_another_connection(alice):
    """A deploy migrates while web processes keep their connections: PostgreSQL plans their
    prepared statements again, and none selects `*` from a table, so no result changes its shape
    ("cached plan must not change result type")."""
    make_memory(alice, "User is vegetarian", subject="diet", embed=True)
    conversation = conversation_start(user=alice)
    make_turn(alice, conversation, "We went hiking in May", when=timezone.now(), embed=True)
    questions = ("where did we hike?", "what do I eat?", "plans?", "hiking?", "food?", "tea?")
    before = [[i.text for i in build_context(alice, q).items] for q in questions]
    tables = ("memories_episode", "memories_memory", "memories_turnterm", "accounts_consentrecord")
    migrating = connections.create_connection("default")
    try:
        with migrating.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN added_by_a_migration integer")

        assert [[i.text for i in build_context(alice, q).items] for q in questions] == before
    finally:
        with migrating.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS added_by_a_migration")
        migrating.close()


def test_no_query_is_embedded_when_memory_may_not_be_used(alice, monkeypatch):
    from accounts.selectors import NOTHING

    embedded = []
    monkeypatch.setattr(embeddings, "embed_query", embedded.append)

    assert build_context(alice, "what do I eat?", policy=NOTHING).items == []
    assert embedded == []


def test_a_failed_embedding_leaves_words_and_profile(alice, monkeypatch):
    make_memory(alice, "User plays the cello", embed=True)
    make_memory(alice, "User is vegetarian", subject="diet", embed=True)

    def down(text):
        raise embeddings.EmbeddingError("The embedding endpoint failed: APITimeoutError")

    monkeypatch.setattr(embeddings, "embed_query", down)
    texts = [i.text for i in build_context(alice, "the cello").items]

    assert "User plays the cello" in texts and "User is vegetarian" in texts


def test_each_list_keeps_its_order_and_its_length(alice):
    for n in range(candidates.CANDIDATES + 3):
        make_memory(alice, f"User knows fact {n}", subject="name", importance=n / 30)
    memories = Memory.objects.for_user(alice)

    rows = candidates.statement(memories, None, [None, candidates.core()]).read(None)

    assert rows[0] == [] and len(rows[1]) == candidates.CANDIDATES
    importances = [row.importance for row in rows[1]]
    assert importances == sorted(importances, reverse=True)


def test_items_carry_their_source_messages(alice):
    conversation = conversation_start(user=alice)
    turn = make_turn(alice, conversation, "I adopted a cat named Miso", when=timezone.now())
    message_ids = list(turn.messages.values_list("id", flat=True))
    memory = make_memory(alice, "User has a cat named Miso", embed=True)
    memory.source_messages.set(message_ids)

    context = build_context(alice, "what is my cat called?")

    sources = {item.text: item.sources for item in context.items}
    assert sources["User has a cat named Miso"] == sorted(message_ids)


def test_pages_read_the_same_lists_as_the_context(alice):
    today = timezone.localdate()
    soon = make_memory(alice, "Flight to Lisbon", attributes={"date": today.isoformat()})
    make_memory(alice, "Trip next month", attributes={"date": (today + timedelta(30)).isoformat()})
    pinned = make_memory(alice, "Call me Al", pinned=True)

    assert selectors.due_soon(user=alice) == [soon]
    assert selectors.profile(user=alice) == [pinned]


def test_turn_rows_are_kept_whole_in_the_table(alice):
    """A turn's embedding and term weights are in its row, not the TOAST table: one page read per
    turn the context ranks instead of three."""
    conversation = conversation_start(user=alice)
    turn = make_turn(
        alice, conversation, "We talked about the garden " * 8, when=timezone.now(), embed=True
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_toast_chunk_id(embedding), pg_column_toast_chunk_id(lexical), "
            "pg_column_size(embedding) FROM memories_episode WHERE id = %s",
            [turn.pk],
        )
        embedding_chunk, lexical_chunk, size = cursor.fetchone()

    assert size > 1500 and embedding_chunk is None and lexical_chunk is None


def test_a_policy_that_uses_nothing_reads_nothing(alice):
    make_memory(alice, "Call me Al", pinned=True)
    memories = Memory.objects.none()

    with CaptureQueriesContext(connection) as queries:
        rows = candidates.statement(memories, None, [candidates.core(), None]).read(None)

    assert rows == [[], []] and queries.captured_queries == []
