"""The encryption migrations on a database that already holds plain text: rows are encrypted, search
vectors and special categories computed, and migrating back gives the plain text again."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from chat.models import Conversation, Message
from memories.extraction import fingerprint
from memories.models import Memory

PLAIN = hashlib.sha256(
    b"user prays daily and has diabetes"
).hexdigest()  # the fingerprint before 0011
BEFORE = [("memories", "0008_held_memory"), ("chat", "0004_message_excluded_from_memory")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.django_db(transaction=True)
def test_plain_rows_are_encrypted_and_decrypted_back(django_user_model):
    user = django_user_model.objects.create_user("olga", password="olga-pass-123")
    _migrate(BEFORE)
    now = timezone.now()
    [(conversation,)] = _sql(
        "INSERT INTO chat_conversation (user_id, title, temporary, created_at, last_activity_at)"
        " VALUES (%s, 'About my health', false, %s, %s) RETURNING id",
        [user.pk, now, now],
    )
    _sql(
        "INSERT INTO chat_message (conversation_id, role, content, created_at, speaker, external_id,"
        " excluded_from_memory) VALUES (%s, 'user', 'I pray daily and have diabetes.', %s, '', '', false)",
        [conversation, now],
    )
    _sql(
        "INSERT INTO memories_memory (user_id, kind, subject, text, attributes, fingerprint, confidence,"
        " importance, source, pinned, sensitive_category, review_status, flag_reasons, use_in_context,"
        " valid_from, recall_count, created_at, updated_at) VALUES (%s, 'fact', %s, %s, '{}', %s, 0.8,"
        " 0.5, 'stated', false, 'health', 'approved', '[]', true, %s, 0, %s, %s)",
        [user.pk, f"note:{PLAIN[:16]}", "User prays daily and has diabetes", PLAIN, now, now, now],
    )

    _migrate(_latest())

    [(title, content)] = _sql(
        "SELECT c.title, m.content FROM chat_conversation c JOIN chat_message m ON m.conversation_id = c.id"
    )
    [(text, search)] = _sql("SELECT text, search::text FROM memories_memory")
    assert all(value.startswith("enc2:") for value in (title, content, text))
    assert "diabet" in search and ":" not in search
    assert Conversation.objects.get().title == "About my health"
    assert Message.objects.get().content == "I pray daily and have diabetes."
    memory = Memory.objects.get()
    assert (memory.text, memory.sensitive_categories) == (
        "User prays daily and has diabetes",
        ["health", "religion"],
    )
    keyed = fingerprint(memory.text)
    assert (memory.fingerprint, memory.subject) == (keyed, f"note:{keyed[:16]}") and keyed != PLAIN
    assert Memory.objects.with_words("diabetes").exists()

    _migrate(BEFORE)
    assert _sql("SELECT text, sensitive_category, fingerprint, subject FROM memories_memory") == [
        ("User prays daily and has diabetes", "health", PLAIN, f"note:{PLAIN[:16]}")
    ]
    assert _sql("SELECT content FROM chat_message") == [("I pray daily and have diabetes.",)]
    _migrate(_latest())
