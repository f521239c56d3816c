"""Each token is bound to its user, table, column and row: a token a database writer moves anywhere
else (another user's row, another row, another column or table), or a row moved to another user,
fails to decrypt loudly (CiphertextMismatch and a log line), for every encrypted column. Every write
path (save, bulk_create) binds; QuerySet.update cannot write past the field."""

from __future__ import annotations

import logging
from operator import attrgetter

import pytest
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from chat.models import Conversation, Message
from imports.models import ImportItem, ImportJob
from memories.models import Episode, Memory, MemoryRevision
from tests.factories import make_memory
from vault import keys
from vault.fields import EncryptedTextField

# Every encrypted column, by model and field name. A test below fails if one is added elsewhere.
COLUMNS = [
    (Conversation, "title"),
    (Message, "content"),
    (Memory, "text"),
    (Episode, "text"),
    (MemoryRevision, "old_text"),
    (MemoryRevision, "new_text"),
    (ImportItem, "title"),
]
IDS = [f"{model._meta.db_table}.{name}" for model, name in COLUMNS]
# How to hand a whole row to another user: the column that says whose it is.
OWNER_COLUMN = {
    Conversation: ("user_id", lambda user: user.pk),
    Message: (
        "conversation_id",
        lambda user: Conversation.objects.filter(user=user).values_list("pk", flat=True)[0],
    ),
    Memory: ("user_id", lambda user: user.pk),
    Episode: ("user_id", lambda user: user.pk),
    MemoryRevision: (
        "memory_id",
        lambda user: Memory.objects.filter(user=user).values_list("pk", flat=True)[0],
    ),
    ImportItem: (
        "job_id",
        lambda user: ImportJob.objects.filter(user=user).values_list("pk", flat=True)[0],
    ),
}


def _field(model, name) -> EncryptedTextField:
    return model._meta.get_field(name)


def _owned(model, name, user) -> list:
    """The user's rows with a non-empty value in the column, oldest first."""
    lookup = _field(model, name).owner.replace(".", "__")
    return [
        row
        for row in model.objects.filter(**{lookup: user.pk}).order_by("pk")
        if getattr(row, name)
    ]


def _stored(model, name, pk) -> str:
    field = _field(model, name)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{field.column}" FROM "{model._meta.db_table}" WHERE id = %s', [pk])
        return cursor.fetchone()[0]


def _write(model, column, pk, value) -> None:
    """A database writer going past the app."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" SET "{column}" = %s WHERE id = %s', [value, pk]
        )


def _reads_fail_loudly(model, name, pk, caplog) -> None:
    """Every way the app reads the value refuses it, and says so in the log; no text comes back."""
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="vault.keys"):
        with pytest.raises(keys.CiphertextMismatch, match=f"{model._meta.db_table}.* row {pk} "):
            model.objects.get(pk=pk)
        with pytest.raises(
            keys.CiphertextMismatch, match=f"{model._meta.db_table}.{name} row {pk} "
        ):
            list(model.objects.filter(pk=pk).values_list(name, flat=True))
        with pytest.raises(keys.CiphertextMismatch):
            list(model.objects.filter(pk=pk).values(name))
    assert any(
        "does not belong there" in r.getMessage() and f"row {pk} " in r.getMessage()
        for r in caplog.records
    )


def _saved_rows(user) -> None:
    """Two rows in every encrypted column, each written by save()."""
    now = timezone.now()
    for i in range(2):
        conversation = Conversation.objects.create(
            user=user, title=f"{user.username}'s chat {i}", created_at=now, last_activity_at=now
        )
        message = Message.objects.create(
            conversation=conversation, role="user", content=f"My cat is Tib{i}.", created_at=now
        )
        Episode.objects.create(
            user=user,
            conversation=conversation,
            kind="turn",
            key=f"turn:{message.pk}",
            text=f"User: {message.content}",
            started_at=now,
            ended_at=now,
        )
        memory = make_memory(user, f"{user.username} has a cat called Tib{i}")
        MemoryRevision.objects.create(
            memory=memory,
            action="edit",
            actor="user",
            old_text=memory.text,
            new_text=f"{memory.text}, truly",
        )
        job = _import_job(user)
        ImportItem.objects.create(job=job, position=i, title=f"{user.username}'s import {i}")


def _import_job(user) -> ImportJob:
    return ImportJob.objects.create(user=user, file_sha256="0" * 64, file_size=1)


@pytest.fixture
def spoken(alice, bob):
    """alice and bob have two rows each in every encrypted column."""
    for user in (alice, bob):
        _saved_rows(user)
    for model, name in COLUMNS:
        assert len(_owned(model, name, alice)) >= 2, f"{model.__name__}.{name}"
        assert _owned(model, name, bob), f"{model.__name__}.{name}"


def test_the_list_holds_every_encrypted_column():
    from django.apps import apps

    found = {
        (model, field.name)
        for model in apps.get_models()
        if not model._meta.proxy
        for field in model._meta.local_fields
        if isinstance(field, EncryptedTextField)
    }
    assert found == set(COLUMNS)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_a_token_copied_into_another_users_row_fails_loudly(
    model, name, alice, bob, spoken, caplog
):
    theirs = _owned(model, name, alice)[0]
    mine = _owned(model, name, bob)[0]
    _write(model, _field(model, name).column, mine.pk, _stored(model, name, theirs.pk))

    _reads_fail_loudly(model, name, mine.pk, caplog)
    assert "under the data key of user" in caplog.text
    assert getattr(model.objects.get(pk=theirs.pk), name) == getattr(theirs, name)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_a_token_copied_into_another_row_of_the_same_user_fails_loudly(
    model, name, alice, spoken, caplog
):
    first, second = _owned(model, name, alice)[:2]
    _write(model, _field(model, name).column, second.pk, _stored(model, name, first.pk))

    _reads_fail_loudly(model, name, second.pk, caplog)
    assert getattr(model.objects.get(pk=first.pk), name) == getattr(first, name)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_a_token_copied_into_another_column_or_table_fails_loudly(
    model, name, alice, spoken, caplog
):
    target = _owned(model, name, alice)[0]
    if model is MemoryRevision:  # the other column of the same row
        other = "new_text" if name == "old_text" else "old_text"
        source = _stored(model, other, target.pk)
    else:  # the same row id in another table, when there is one, else any row of another table
        source_model, source_name = COLUMNS[(COLUMNS.index((model, name)) + 1) % 4]
        source = _stored(source_model, source_name, _owned(source_model, source_name, alice)[0].pk)
    _write(model, _field(model, name).column, target.pk, source)

    _reads_fail_loudly(model, name, target.pk, caplog)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_a_row_handed_to_another_user_fails_loudly(model, name, alice, bob, spoken, caplog):
    row = _owned(model, name, alice)[0]
    owner_column, bobs = OWNER_COLUMN[model]
    _write(model, owner_column, row.pk, bobs(bob))

    _reads_fail_loudly(model, name, row.pk, caplog)
    assert "under the data key of user" in caplog.text


def test_a_subquery_of_the_column_reads_through_the_binding(alice, spoken):
    first = Subquery(
        Message.objects.filter(conversation=OuterRef("pk")).order_by("pk").values("content")[:1]
    )
    read = Conversation.objects.for_user(alice).annotate(first=first).order_by("pk")
    assert [c.first for c in read] == [c.messages.order_by("pk").first().content for c in read]


def test_raw_sql_reads_are_refused_not_trusted(alice, spoken):
    rows = Memory.objects.raw("SELECT * FROM memories_memory WHERE user_id = %s", [alice.pk])
    with pytest.raises(keys.VaultError, match="read without its row"):
        list(rows)


def _bulk_rows(user):
    now = timezone.now()
    [conversation, _] = Conversation.objects.bulk_create(
        [
            Conversation(user=user, title=f"Bulk title {i}", created_at=now, last_activity_at=now)
            for i in range(2)
        ]
    )
    messages = Message.objects.bulk_create(
        [
            Message(
                conversation=conversation, role="user", content=f"Bulk said {i}", created_at=now
            )
            for i in range(2)
        ]
    )
    [memory] = Memory.objects.bulk_create(
        [
            Memory(
                user=user,
                kind="fact",
                subject="bulk",
                text="User bulk-creates",
                fingerprint="bulk",
                valid_from=now,
            )
        ]
    )
    Episode.objects.bulk_create(
        [
            Episode(
                user=user,
                conversation=conversation,
                kind="turn",
                key=f"turn:{m.pk}",
                text=f"User: {m.content}",
                started_at=now,
                ended_at=now,
            )
            for m in messages
        ]
    )
    MemoryRevision.objects.bulk_create(
        [
            MemoryRevision(
                memory=memory, action="edit", actor="user", old_text="Old bulk", new_text="New bulk"
            )
        ]
    )
    job = _import_job(user)
    ImportItem.objects.bulk_create(
        [ImportItem(job=job, position=i, title=f"Bulk import {i}") for i in range(2)]
    )


def test_bulk_create_binds_every_token_to_its_row(alice):
    _bulk_rows(alice)
    for model, name in COLUMNS:
        rows = list(_owned(model, name, alice))
        assert rows, f"{model.__name__}.{name}"
        field = _field(model, name)
        for row in rows:
            token = _stored(model, name, row.pk)
            owner = attrgetter(field.owner)(row)
            place = field.binding(owner, row.pk)
            assert keys.decrypt(place, token) == getattr(row, name) != ""
            elsewhere = field.binding(owner, row.pk + 1)
            with pytest.raises(keys.CiphertextMismatch):
                keys.decrypt(elsewhere, token)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_update_cannot_write_past_the_field(model, name, alice, spoken):
    row = _owned(model, name, alice)[0]
    unbound = keys.encrypt_unbound(alice.pk, "User likes coffee")
    for value in ("User likes coffee", unbound):
        with pytest.raises(keys.VaultError, match="QuerySet.update"), transaction.atomic():
            model.objects.filter(pk=row.pk).update(**{name: value})
    assert getattr(model.objects.get(pk=row.pk), name) == getattr(row, name)


@pytest.mark.parametrize(("model", "name"), COLUMNS, ids=IDS)
def test_the_app_refuses_unbound_tokens(model, name, alice, spoken, caplog):
    row = _owned(model, name, alice)[0]
    _write(model, _field(model, name).column, row.pk, keys.encrypt_unbound(alice.pk, "Old text"))
    with caplog.at_level(logging.ERROR, logger="vault.keys"):
        with pytest.raises(keys.UnboundToken, match="migrate"):
            getattr(model.objects.get(pk=row.pk), name)
    assert "unbound (enc1) token" in caplog.text


def test_an_encrypted_field_needs_a_primary_key_drawn_before_the_insert():
    from django.db import models
    from django.test.utils import isolate_apps

    with isolate_apps("vault"):

        class Note(models.Model):  # a serial id is known only after the INSERT
            text = EncryptedTextField()

            class Meta:
                app_label = "vault"

            def __str__(self) -> str:
                return f"note {self.pk}"

        assert [error.id for error in Note._meta.get_field("text").check()] == ["vault.E002"]
    for model, name in COLUMNS:
        assert _field(model, name).check() == [], f"{model.__name__}.{name}"
