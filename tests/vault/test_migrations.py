"""The encryption migrations on a database that already holds plain text: rows are encrypted, search
vectors and special categories computed, and migrating back gives the plain text again."""

from __future__ import annotations

import hashlib
from operator import attrgetter

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


BEFORE_BINDING = [("memories", "0012_revision_action_choices"), ("chat", "0006_queued_at")]


def _column(model, name) -> str:
    field = model._meta.get_field(name)
    return f'SELECT "{field.column}" FROM "{model._meta.db_table}" WHERE id = %s'


@pytest.mark.django_db(transaction=True)
def test_tokens_of_the_first_format_are_bound_to_their_rows_and_back(django_user_model):
    """Rows of the release before (enc1 tokens, bound to their key id only) are re-encrypted bound
    to their row; a forgotten user's rows (restored from a backup) stay as they are, unreadable;
    migrating back gives the release before its enc1 tokens again."""
    from tests.vault.test_binding import COLUMNS, _saved_rows
    from vault import keys
    from vault.fields import UNREADABLE

    olga, gone = (
        django_user_model.objects.create_user(name, password=f"{name}-pass-123")
        for name in ("olga", "gone")
    )
    _saved_rows(olga)
    _saved_rows(gone)
    plain = {  # (model, field name, row id) → (owner id, text)
        (model, name, row.pk): (
            attrgetter(model._meta.get_field(name).owner)(row),
            getattr(row, name),
        )
        for model, name in COLUMNS
        if model._meta.app_label in dict(BEFORE_BINDING)  # imports came later: born bound
        for row in model.objects.all()
    }
    for (model, name, pk), (owner, text) in plain.items():
        _sql(  # as the release before wrote it
            f'UPDATE "{model._meta.db_table}" SET "{model._meta.get_field(name).column}" = %s'
            " WHERE id = %s",
            [keys.encrypt_unbound(owner, text), pk],
        )
    keys.destroy_user_key(gone.pk)
    with pytest.raises(keys.UnboundToken):
        Message.objects.filter(conversation__user=olga).first()

    _migrate(BEFORE_BINDING)  # nothing is bound yet: the way back leaves enc1 alone
    _migrate(_latest())

    for (model, name, pk), (owner, text) in plain.items():
        [(stored,)] = _sql(_column(model, name), [pk])
        read = getattr(model.objects.get(pk=pk), name)
        if owner == gone.pk:
            assert keys.is_unbound_token(stored) and read == UNREADABLE
        else:
            assert keys.is_token(stored) and read == text
            other = model._meta.get_field(name).binding(owner, pk + 1000)
            with pytest.raises(keys.CiphertextMismatch):
                keys.decrypt(other, stored)

    _migrate(BEFORE_BINDING)
    for (model, name, pk), (owner, text) in plain.items():
        [(stored,)] = _sql(_column(model, name), [pk])
        assert keys.is_unbound_token(stored)
        if owner == olga.pk:
            assert keys.decrypt_unbound(stored) == text
    _migrate(_latest())
