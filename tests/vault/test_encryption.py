"""Field encryption at rest: message, title, memory, revision and episode text are stored as
ciphertext under a key per user, wrapped by the master keys; forgetting a user destroys the key;
master keys rotate."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.privacy import forget_everything
from accounts.services import lock_user
from chat.models import Conversation, Message
from chat.services import chat_turn
from memories.models import Episode, Memory, MemoryRevision
from memories.services import memory_edit
from tests.factories import make_memory
from vault import keys
from vault.fields import UNREADABLE
from vault.master import load_master_keys, parse_master_keys
from vault.migration_ops import encrypt_column
from vault.models import UserKey

MARKER = "Quillfeather"
# (table, column, SQL selecting the column of one user's rows): every encrypted column
ENCRYPTED = [
    ("chat_conversation", "title", "SELECT title FROM chat_conversation WHERE user_id = %s"),
    (
        "chat_message",
        "content",
        "SELECT m.content FROM chat_message m JOIN chat_conversation c ON c.id = m.conversation_id"
        " WHERE c.user_id = %s",
    ),
    ("memories_memory", "text", "SELECT text FROM memories_memory WHERE user_id = %s"),
    ("memories_episode", "text", "SELECT text FROM memories_episode WHERE user_id = %s"),
    (
        "memories_memoryrevision",
        "new_text",
        "SELECT r.new_text FROM memories_memoryrevision r JOIN memories_memory m ON m.id = r.memory_id"
        " WHERE m.user_id = %s",
    ),
]


def _stored(sql: str, user) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk])
        return [value for (value,) in cursor.fetchall() if value]


def _new_master() -> tuple[str, bytes]:
    return ("next", os.urandom(32))


@pytest.fixture
def planted(alice, run_on_commit):
    """Alice said something with the marker; the worker learned a memory and an episode from it."""
    turn = run_on_commit(
        chat_turn, user=alice, conversation=None, text=f"Remember that my cat is called {MARKER}."
    )
    [memory] = Memory.objects.for_user(alice)
    memory_edit(memory=memory, text=f"User's cat is called {MARKER} the Great")
    return turn


def test_text_columns_hold_ciphertext_and_the_models_plain_text(alice, planted):
    for table, column, sql in ENCRYPTED:
        stored = _stored(sql, alice)
        assert stored, f"{table}.{column}: no row to check"
        assert all(value.startswith(keys.PREFIX) for value in stored), (
            f"{table}.{column} holds plain text"
        )
        assert not any(MARKER.lower() in value.lower() for value in stored), f"{table}.{column}"
    assert MARKER in Conversation.objects.get(user=alice).title
    assert MARKER in Message.objects.filter(conversation__user=alice).order_by("id").first().content
    assert any(MARKER in m.text for m in Memory.objects.for_user(alice))
    assert any(MARKER in e.text for e in Episode.objects.for_user(alice))
    assert any(MARKER in r.new_text for r in MemoryRevision.objects.filter(memory__user=alice))


def test_each_user_has_their_own_key(alice, bob):
    make_memory(alice, text="User likes tea")
    make_memory(bob, text="User likes tea")
    tokens = [
        _stored("SELECT text FROM memories_memory WHERE user_id = %s", u)[0] for u in (alice, bob)
    ]
    key_ids = {token.split(":")[1] for token in tokens}
    assert len(key_ids) == 2
    assert key_ids == {str(UserKey.objects.get(user=u).pk) for u in (alice, bob)}


def test_same_text_twice_gives_different_ciphertext(alice):
    place = keys.Binding(alice.pk, "memories_memory", "text", 1)
    assert keys.encrypt(place, "same") != keys.encrypt(place, "same")


def test_damaged_ciphertext_is_refused(alice):
    place = keys.Binding(alice.pk, "memories_memory", "text", 1)
    token = keys.encrypt(place, "User likes tea")
    head, body = token.rsplit(":", 1)
    damaged = f"{head}:{body[:-4]}{'AAAA' if body[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(keys.CiphertextMismatch, match="damaged"):
        keys.decrypt(place, damaged)
    with pytest.raises(keys.VaultError, match="plain text"):
        keys.decrypt(place, "User likes tea")


def test_plain_text_cannot_reach_an_encrypted_column_nor_be_queried(alice):
    memory = make_memory(alice, text="User likes tea")
    with pytest.raises(keys.VaultError, match="QuerySet.update"), transaction.atomic():
        Memory.objects.filter(pk=memory.pk).update(text="User likes coffee")
    with pytest.raises(FieldError, match="encrypted"):
        Memory.objects.filter(text="User likes tea").exists()
    with pytest.raises(FieldError, match="encrypted"):
        Message.objects.filter(content__icontains="tea").exists()
    memory.refresh_from_db()
    assert memory.text == "User likes tea"


def test_search_still_finds_words_of_encrypted_text(alice, bob):
    make_memory(alice, text="User owns a red bicycle")
    make_memory(bob, text="User owns a red bicycle")
    memory = make_memory(alice, text="User likes jazz")
    assert Memory.objects.for_user(alice).with_words("bicyc").count() == 1
    memory.text = "User likes jazz and bicycles"
    memory.save()
    assert Memory.objects.for_user(alice).with_words("red bicycle").count() == 1
    assert Memory.objects.for_user(alice).with_words("bicycles").count() == 2


def test_forgetting_destroys_the_key_so_old_copies_cannot_be_read(
    alice, bob, planted, run_on_commit
):
    backup = {column: _stored(sql, alice) for _, column, sql in ENCRYPTED}  # a copy taken before
    run_on_commit(chat_turn, user=bob, conversation=None, text="I live in Porto.")
    old_key = UserKey.objects.get(user=alice).pk

    forget_everything(user=alice, delete_account=False)

    assert not UserKey.objects.filter(pk=old_key).exists()
    for tokens in backup.values():
        for token in tokens:
            with pytest.raises(keys.KeyDestroyed):  # the key is looked up before the binding
                keys.decrypt(keys.Binding(alice.pk, "any", "any", 0), token)
    assert Message.objects.filter(conversation__user=bob).first().content == "I live in Porto."
    run_on_commit(chat_turn, user=alice, conversation=None, text="Hello again.")
    new_key = UserKey.objects.get(user=alice)
    assert new_key.pk != old_key
    assert Message.objects.filter(conversation__user=alice).first().content == "Hello again."


def test_rows_left_under_a_destroyed_key_read_as_unreadable_and_can_still_be_erased(alice, planted):
    keys.destroy_user_key(alice.pk)  # e.g. rows restored from a backup after the user was forgotten
    keys.forget_cached_keys()

    assert Message.objects.filter(conversation__user=alice).first().content == UNREADABLE
    forget_everything(user=alice, delete_account=False)
    assert not Message.objects.filter(conversation__user=alice).exists()


def test_deleting_the_account_deletes_the_key(alice, planted):
    forget_everything(user=alice, delete_account=True)
    assert not UserKey.objects.filter(user_id=alice.pk).exists()


def test_master_key_rotation_rewraps_every_data_key(alice, bob, settings):
    make_memory(alice, text="User likes tea")
    make_memory(bob, text="User likes coffee")
    old = settings.MASTER_KEYS[0]
    new = _new_master()
    settings.MASTER_KEYS = (new, old)

    assert keys.rotate_master_key() == 2
    assert set(UserKey.objects.values_list("master_key_id", flat=True)) == {"next"}
    assert keys.rotate_master_key() == 0

    settings.MASTER_KEYS = (new,)  # the old master key is gone: the data still reads
    keys.forget_cached_keys()
    assert [m.text for m in Memory.objects.for_user(alice)] == ["User likes tea"]


def test_a_missing_master_key_is_a_clear_error(alice, settings):
    make_memory(alice, text="User likes tea")
    settings.MASTER_KEYS = (_new_master(),)
    keys.forget_cached_keys()
    with pytest.raises(keys.VaultError, match="is not configured"):
        Memory.objects.for_user(alice).get()


def test_master_keys_from_the_environment_are_validated(tmp_path):
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert [k for k, _ in parse_master_keys(f"2026b:{key}, 2026a:{key}")] == ["2026b", "2026a"]
    for bad in (f"no-colon{key}", "short:AAAA", f"bad id:{key}", "x:!!!", f"a:{key},a:{key}"):
        with pytest.raises(ImproperlyConfigured, match="MEMORYWEB_MASTER_KEYS"):
            parse_master_keys(bad)
    with pytest.raises(ImproperlyConfigured):
        load_master_keys(" , ", tmp_path / "unused")


def test_the_local_default_master_key_is_made_once_and_private(tmp_path):
    path = tmp_path / "master_keys"
    first = load_master_keys("", path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_master_keys("", path) == first and len(first[0][1]) == 32


def test_the_migration_encrypts_existing_plain_rows(alice):
    memory = make_memory(alice, text="User likes tea")
    with connection.cursor() as cursor:  # as a row written before encryption
        cursor.execute(
            "UPDATE memories_memory SET text = %s WHERE id = %s",
            ["User likes green tea", memory.pk],
        )
    operation = encrypt_column(
        "memories_memory", "text", "SELECT id, user_id, text FROM memories_memory"
    )
    with connection.schema_editor() as editor:
        operation.code(None, editor)
        operation.code(None, editor)  # idempotent: encrypted rows are left alone
    memory.refresh_from_db()
    assert memory.text == "User likes green tea"
    with connection.schema_editor() as editor:
        operation.reverse_code(None, editor)
    assert _stored("SELECT text FROM memories_memory WHERE user_id = %s", alice) == [
        "User likes green tea"
    ]


def test_processes_starting_together_share_one_local_master_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "master_keys"
    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda _: load_master_keys("", path), range(16)))
    assert len(set(loaded)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["master_keys"]  # no temporary file left


def test_a_data_key_under_a_master_key_no_longer_configured_fails_the_database_check(
    alice, settings
):
    from vault.checks import every_data_key_can_be_unwrapped, master_keys_from_the_environment

    make_memory(alice, text="User likes tea")
    assert every_data_key_can_be_unwrapped(None, databases=["default"]) == []
    settings.MASTER_KEYS = (_new_master(),)
    [error] = every_data_key_can_be_unwrapped(None, databases=["default"])
    assert error.id == "vault.E001" and "1 data key(s)" in error.msg
    assert [w.id for w in master_keys_from_the_environment(None)] in (["vault.W001"], [])


def test_the_search_column_keeps_words_without_their_order(alice):
    memory = make_memory(alice, text="User secretly visits the oncology clinic on Fridays")
    with connection.cursor() as cursor:
        cursor.execute("SELECT search::text FROM memories_memory WHERE id = %s", [memory.pk])
        [(stored,)] = cursor.fetchall()
    # lexemes only: no positions to rebuild the sentence from
    assert "clinic" in stored and ":" not in stored
    assert Memory.objects.for_user(alice).with_words("oncology fridays").get() == memory


def test_under_the_users_locks_each_key_is_read_once_and_a_key_rolled_back_is_not_kept(
    alice, bob, django_user_model
):
    newcomer = django_user_model.objects.create_user(username="newcomer", password=None)
    assert not UserKey.objects.filter(user=newcomer).exists()
    now = timezone.now()
    at = {"created_at": now, "last_activity_at": now}
    conversation = Conversation.objects.create(user=alice, title="kept", **at)
    with transaction.atomic():
        for user in (alice, bob, newcomer):
            lock_user(user)
        with keys.locked_users_keys([alice.pk, bob.pk, newcomer.pk]):
            with CaptureQueriesContext(connection) as queries:
                for n in range(3):
                    Message.objects.create(
                        conversation=conversation, role="user", content=f"{n}", created_at=now
                    )
            assert not [q for q in queries if "vault_userkey" in q["sql"]]  # read once, before
            with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
                Conversation.objects.create(user=newcomer, title="rolled back", **at)  # a key
                Conversation.objects.create(user=newcomer, title="rolled back too", **at)
                raise RuntimeError
            Conversation.objects.create(user=newcomer, title="after", **at)  # a key made again
    assert [c.title for c in Conversation.objects.filter(user=newcomer)] == ["after"]
    assert UserKey.objects.filter(user=newcomer).count() == 1
