"""Imports end to end through the services, with the worker's tasks run eagerly as in every test:
what a ChatGPT or Claude export brings (the kept branch only, original dates, provenance, memories
learned), the same file twice, cancelling, deleting, bad files, the memory policy, cleanup."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import ConsentRecord
from accounts.privacy import forget_everything
from accounts.services import consent_set, memory_settings_update
from chat.models import Conversation, Message
from chat.services import chat_turn
from imports import services
from imports.models import ImportItem, ImportJob
from imports.services import (
    import_cancel,
    import_delete,
    import_run,
    import_start,
    import_upload,
    imports_cleanup,
    uploads_dir,
)
from memories.models import Episode, Memory
from tests.imports.exports import (
    START,
    as_json,
    as_zip,
    chatgpt_conversation,
    sample_chatgpt,
    sample_claude,
)


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def _file(body: bytes, name: str = "export.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body)


@pytest.fixture
def upload(run_on_commit):
    def _upload(user, body: bytes, **kwargs) -> tuple[ImportJob, bool]:
        job, created = run_on_commit(import_upload, user=user, upload=_file(body), **kwargs)
        job.refresh_from_db()
        return job, created

    return _upload


def _memory_texts(user, *, current: bool = False) -> list[str]:
    memories = Memory.objects.for_user(user)
    return [m.text for m in (memories.current() if current else memories)]


def _texts(user) -> list[str]:
    return list(
        Message.objects.for_user(user)
        .order_by("created_at", "id")
        .values_list("content", flat=True)
    )


# --- What an export brings ------------------------------------------------------------------------


def test_a_chatgpt_zip_brings_the_kept_branch_with_its_dates_and_what_it_taught(alice, upload):
    job, created = upload(alice, as_zip(as_json(sample_chatgpt())))

    assert created and job.status == "done" and job.progress == 100 and job.source == "chatgpt"
    assert (job.conversations_found, job.conversations_imported, job.messages_imported) == (3, 2, 4)
    assert _texts(alice) == [
        "I live in Lisbon now.",
        "Lisbon is lovely.",
        "I am vegetarian.",
        "Noted: vegetarian recipes.",
    ]  # no dead branch, tool call, system or hidden context; the image part left out
    lisbon = Conversation.objects.for_user(alice).get(origin_id="gpt-1")
    assert (lisbon.origin, lisbon.title, lisbon.ended_at is not None) == (
        "chatgpt",
        "Moving to Lisbon",
        True,
    )
    assert lisbon.created_at == START + timedelta(minutes=1) and lisbon.finalized_at is not None
    untitled = Conversation.objects.for_user(alice).get(origin_id="gpt-2")
    assert untitled.title == "I am vegetarian."  # untitled: its first message, as a chat's title
    assert [m.created_at for m in untitled.messages.all()] == [
        START + timedelta(days=30, minutes=1),
        START + timedelta(days=30, minutes=2),
    ]
    # learned through the chat's pipeline: memories dated when said, turns, a summary
    lives = Memory.objects.for_user(alice).current().get(subject="location")
    assert "Lisbon" in lives.text and lives.valid_from == START + timedelta(minutes=1)
    assert Episode.objects.for_user(alice).filter(kind="turn").count() == 2
    assert all(c.finalized_at for c in Conversation.objects.for_user(alice))
    assert not Message.objects.for_user(alice).unprocessed().exists()
    states = dict(job.items.values_list("external_id", "state"))
    assert states == {"gpt-1": "imported", "gpt-2": "imported", "gpt-3": "empty"}
    assert job.file_name == "" and list(uploads_dir().iterdir()) == []  # the upload is gone


def test_a_bare_claude_json_is_recognised_by_its_content(alice, upload):
    job, _ = upload(alice, as_json(sample_claude()))  # named export.zip: the name says nothing

    assert job.status == "done" and job.source == "claude"
    assert _texts(alice) == ["My sister is called Marta.", "Nice to know about Marta."]
    conversation = Conversation.objects.for_user(alice).get()
    assert (conversation.origin, conversation.title, conversation.created_at) == (
        "claude",
        "Garden plans",
        START,
    )


def test_odd_and_broken_entries_are_listed_and_the_rest_imported(alice, upload):
    good = chatgpt_conversation("ok", "Fine", [("user", "I play the cello.")])
    no_current = chatgpt_conversation("nocur", "No current node", [("user", "I run marathons.")])
    no_current["current_node"] = "missing"  # the latest leaf is taken
    looped = chatgpt_conversation("loop", "A loop", [("user", "I collect stamps.")])
    root = next(k for k, n in looped["mapping"].items() if n["parent"] is None)
    looped["mapping"][root]["parent"] = looped["current_node"]  # parents in a circle
    junk = chatgpt_conversation("junk", "Junk \x00\ud83d", [("user", "Odd \ud800 text\x00 here.")])
    no_times = chatgpt_conversation("notime", "", [("user", "I speak Dutch.")])
    for node in no_times["mapping"].values():
        if node["message"]:
            node["message"]["create_time"] = None
    no_times["create_time"], no_times["update_time"] = "yesterday", None
    broken = {"title": "Broken", "mapping": {"a": {"message": {"author": "user"}}}, "id": "broken"}
    body = json.dumps(
        [good, no_current, looped, junk, no_times, broken, "not a conversation", good]
    ).encode()

    job, _ = upload(alice, body)

    assert job.status == "done"
    states = list(job.items.order_by("position").values_list("state", flat=True))
    assert states == [
        "imported",
        "imported",
        "imported",
        "imported",
        "imported",
        "empty",
        "unreadable",
        "duplicate",
    ]
    texts = _texts(alice)
    assert "I run marathons." in texts and "I collect stamps." in texts
    [odd] = [t for t in texts if t.startswith("Odd")]  # a lone surrogate replaced, NUL dropped
    assert odd.endswith(" text here.") and "\x00" not in odd and odd.encode("utf-8")
    [timeless] = [m for m in Message.objects.for_user(alice) if m.content == "I speak Dutch."]
    assert timeless.created_at == job.created_at  # no date anywhere: the upload's


def test_a_message_longer_than_the_limit_is_cut_and_the_item_says_so(alice, upload, settings):
    settings.MESSAGE_MAX_CHARS = 200
    body = as_json([chatgpt_conversation("long", "Long", [("user", "I like tea. " * 50)])])

    job, _ = upload(alice, body)

    [text] = _texts(alice)
    assert len(text) <= 200 and text.endswith("[…]")
    assert job.items.get().note == "1 long messages cut"


def test_relative_dates_are_read_on_the_messages_own_date(alice, upload):
    said = chatgpt_conversation(
        "trip", "Trip", [("user", "I have a dentist appointment tomorrow.")]
    )

    upload(alice, as_json([said]))

    memory = Memory.objects.for_user(alice).get(attributes__has_key="date")
    assert memory.attributes["date"] == (START + timedelta(days=1)).date().isoformat()


def test_an_older_statement_goes_into_history_behind_what_was_said_since(
    alice, upload, run_on_commit
):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Berlin.")

    upload(alice, as_json(sample_chatgpt()))  # "I live in Lisbon now.", in 2024

    current = Memory.objects.for_user(alice).current().get(subject="location")
    assert "Berlin" in current.text
    [lisbon] = [m for m in Memory.objects.for_user(alice) if "Lisbon" in m.text]
    assert lisbon.superseded_by == current and lisbon.valid_until == current.valid_from


# --- The same file twice, a newer export ----------------------------------------------------------


def test_the_same_file_twice_adds_nothing(alice, upload):
    body = as_zip(as_json(sample_chatgpt()))
    first, _ = upload(alice, body)
    before = (Conversation.objects.count(), Message.objects.count(), Memory.objects.count())

    again, created = upload(alice, body)

    assert not created and again == first
    assert (Conversation.objects.count(), Message.objects.count(), Memory.objects.count()) == before
    assert list(uploads_dir().iterdir()) == []


def test_a_newer_export_brings_only_the_conversations_not_imported_yet(alice, upload):
    upload(alice, as_json(sample_chatgpt()))
    newer = [*sample_chatgpt(), chatgpt_conversation("gpt-4", "New", [("user", "I have a dog.")])]

    job, created = upload(alice, as_zip(as_json(newer)))

    assert created and job.conversations_imported == 1
    states = dict(job.items.values_list("external_id", "state"))
    assert states == {
        "gpt-1": "existing",
        "gpt-2": "existing",
        "gpt-3": "empty",
        "gpt-4": "imported",
    }
    assert Conversation.objects.for_user(alice).count() == 3


def test_another_users_import_of_the_same_file_is_their_own(alice, bob, upload):
    body = as_json(sample_claude())
    upload(alice, body)

    job, created = upload(bob, body)

    assert created and job.conversations_imported == 1
    assert (
        Conversation.objects.for_user(bob).count() == Conversation.objects.for_user(alice).count()
    )


# --- Choosing --------------------------------------------------------------------------------------


def test_choosing_lists_first_then_imports_only_what_was_chosen(alice, upload, run_on_commit):
    job, _ = upload(alice, as_json(sample_chatgpt()), choose=True)
    assert job.status == "choosing" and job.progress == 10 and not Conversation.objects.exists()
    titles = list(job.items.values_list("title", "state"))
    assert titles == [
        ("Moving to Lisbon", "pending"),
        ("I am vegetarian.", "pending"),
        ("Empty", "empty"),
    ]

    run_on_commit(import_start, job=job, positions=[1])
    job.refresh_from_db()

    assert job.status == "done" and job.conversations_chosen == 1
    assert list(Conversation.objects.for_user(alice).values_list("origin_id", flat=True)) == [
        "gpt-2"
    ]
    assert job.items.get(position=0).state == "not_chosen"


def test_choosing_nothing_or_twice_is_refused(alice, upload, run_on_commit):
    job, _ = upload(alice, as_json(sample_chatgpt()), choose=True)
    with pytest.raises(ValidationError, match="at least one"):
        import_start(job=job, positions=[2])  # the empty one cannot be chosen
    run_on_commit(import_start, job=job)
    with pytest.raises(ValidationError, match="not waiting"):
        import_start(job=job)


# --- Cancelling, deleting -------------------------------------------------------------------------


def test_cancelling_stops_between_two_conversations_and_keeps_what_went_in(
    alice, upload, monkeypatch
):
    conversations = [
        chatgpt_conversation(f"c{i}", f"Chat {i}", [("user", f"My number {i} is lucky.")])
        for i in range(5)
    ]
    learn = services._learn

    def learn_then_cancel(conversation):  # the user presses Cancel while the second is learned
        learn(conversation)
        if Conversation.objects.count() == 2:
            import_cancel(job=ImportJob.objects.get())

    monkeypatch.setattr(services, "_learn", learn_then_cancel)
    job, _ = upload(alice, as_json(conversations))

    assert job.status == "cancelled" and job.conversations_imported == 2
    assert Conversation.objects.for_user(alice).count() == 2
    states = list(job.items.values_list("state", flat=True))
    assert states == ["imported", "imported", "not_chosen", "not_chosen", "not_chosen"]
    assert job.file_name == "" and list(uploads_dir().iterdir()) == []
    assert not import_cancel(job=job)  # finished: nothing to cancel


def test_cancelling_a_job_waiting_for_the_choice_deletes_the_upload(alice, upload):
    job, _ = upload(alice, as_json(sample_chatgpt()), choose=True)
    assert len(list(uploads_dir().iterdir())) == 1

    assert import_cancel(job=job)

    job.refresh_from_db()
    assert job.status == "cancelled" and list(uploads_dir().iterdir()) == []
    assert not import_run(job_id=job.pk)  # a late task changes nothing


def test_deleting_an_import_deletes_what_it_brought_and_only_that(alice, upload, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I am vegetarian.")
    job, _ = upload(alice, as_json(sample_chatgpt()))
    assert any("Lisbon" in text for text in _memory_texts(alice))

    gone = import_delete(job=job)

    assert gone["conversations"] == 2 and gone["messages"] == 4 and gone["memories"] >= 1
    assert not ImportJob.objects.exists() and not ImportItem.objects.exists()
    assert list(Conversation.objects.for_user(alice).values_list("origin", flat=True)) == [""]
    assert not any("Lisbon" in text for text in _memory_texts(alice))
    # what the user also said in a chat here stays
    assert any("vegetarian" in text for text in _memory_texts(alice, current=True))
    # and the same file can then be imported again
    again, created = upload(alice, as_json(sample_chatgpt()))
    assert created and again.conversations_imported == 2


def test_a_conversation_deleted_in_the_chat_leaves_the_import_listed(alice, upload):
    job, _ = upload(alice, as_json(sample_chatgpt()))
    from chat.services import conversation_delete

    conversation_delete(user=alice, conversation=Conversation.objects.for_user(alice).first())

    assert job.items.filter(state="imported", conversation__isnull=True).count() == 1
    assert import_delete(job=job)["conversations"] == 1


def test_forget_everything_erases_imports_and_their_uploads(alice, upload):
    upload(alice, as_json(sample_chatgpt()), choose=True)
    assert len(list(uploads_dir().iterdir())) == 1

    forget_everything(user=alice, delete_account=False)

    assert not ImportJob.objects.exists() and list(uploads_dir().iterdir()) == []


def test_forget_everything_during_an_import_stops_it_and_leaves_nothing(
    alice, run_on_commit, monkeypatch
):
    learn = services._learn

    def learn_then_forget(conversation):
        learn(conversation)
        forget_everything(user=alice, delete_account=False)

    monkeypatch.setattr(services, "_learn", learn_then_forget)
    run_on_commit(import_upload, user=alice, upload=_file(as_json(sample_chatgpt())))

    assert not ImportJob.objects.exists() and not Conversation.objects.exists()
    assert not Memory.objects.exists() and list(uploads_dir().iterdir()) == []


# --- Bad files: a clear error, nothing half-imported ----------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\x89PNG\r\n\x1a\n" + os.urandom(64), "neither a zip nor JSON we can read"),
        (b'{"conversations": []}', "not a ChatGPT or Claude export"),
        (b"[]", "holds no conversations"),
        (b'[{"uuid": "x", "messages": []}]', 'neither a "mapping"'),
        (as_zip(b"[]", member="notes.json"), "holds no conversations.json"),
        (b"PK\x03\x04 not really a zip", "zip file is damaged"),
        (b'[{"mapping": {}, "title": "\xff\xfe"}]', "not UTF-8 text"),
    ],
    ids=["not json", "other shape", "empty", "foreign", "zip without", "bad zip", "not utf-8"],
)
def test_a_file_that_is_no_export_is_refused_saying_why(alice, body, message):
    with pytest.raises(ValidationError, match=message):
        import_upload(user=alice, upload=_file(body))
    assert not ImportJob.objects.exists() and list(uploads_dir().iterdir()) == []


def test_an_empty_or_too_large_file_is_refused(alice, settings):
    with pytest.raises(ValidationError, match="empty"):
        import_upload(user=alice, upload=_file(b""))
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000
    with pytest.raises(ValidationError, match="IMPORT_MAX_UPLOAD_BYTES"):
        import_upload(user=alice, upload=_file(b"[" + b" " * 2_000 + b"]"))


def test_a_zip_bomb_stops_at_the_json_limit(alice, settings):
    settings.IMPORT_MAX_JSON_BYTES = 10_000
    with pytest.raises(ValidationError, match="IMPORT_MAX_JSON_BYTES"):
        import_upload(user=alice, upload=_file(as_zip(b"[" + b" " * 1_000_000 + b"]")))


def test_a_zip_whose_declared_size_lies_is_refused_as_damaged(alice):
    body = as_json([chatgpt_conversation("c", "x", [("user", "I hum. " * 300)])])
    real = len(body).to_bytes(4, "little")
    archive = as_zip(body).replace(real, (1000).to_bytes(4, "little"))  # its headers say 1000 bytes

    with pytest.raises(ValidationError, match="zip file is damaged"):
        import_upload(user=alice, upload=_file(archive))
    assert not ImportJob.objects.exists() and list(uploads_dir().iterdir()) == []


def test_json_broken_half_way_fails_the_job_and_imports_nothing(alice, upload):
    body = as_json(sample_chatgpt())
    job, _ = upload(alice, body[: len(body) * 2 // 3])

    assert job.status == "failed" and "it ends too early" in job.error
    assert (
        "Nothing was imported" in job.error
        and "Lisbon" not in job.error
        and not Conversation.objects.exists()
    )
    assert job.file_name == "" and list(uploads_dir().iterdir()) == []


def test_a_failure_mid_way_says_how_much_went_in(alice, upload, monkeypatch):
    store = services._store_one

    def fail_on_the_second(job, item_id, read):
        if read.position == 1:
            raise RuntimeError("disk full")
        return store(job, item_id, read)

    monkeypatch.setattr(services, "_store_one", fail_on_the_second)
    job, _ = upload(alice, as_json(sample_chatgpt()))

    assert job.status == "failed"
    assert "1 of the 2 chosen conversations were imported before it stopped" in job.error
    assert Conversation.objects.for_user(alice).count() == 1


# --- The memory policy ----------------------------------------------------------------------------


def test_with_memory_off_the_import_is_refused(alice):
    memory_settings_update(user=alice, memory_enabled=False)
    with pytest.raises(ValidationError, match="Memory is switched off"):
        import_upload(user=alice, upload=_file(as_json(sample_claude())))


def test_without_consent_the_import_is_refused(alice):
    consent_set(user=alice, purpose=ConsentRecord.Purpose.MEMORY, granted=False, method="test")
    with pytest.raises(ValidationError, match="consented"):
        import_upload(user=alice, upload=_file(as_json(sample_claude())))


def test_memory_switched_off_mid_way_stops_the_import(alice, upload, monkeypatch):
    learn = services._learn

    def learn_then_switch_off(conversation):
        learn(conversation)
        memory_settings_update(user=alice, memory_enabled=False)

    monkeypatch.setattr(services, "_learn", learn_then_switch_off)
    job, _ = upload(alice, as_json(sample_chatgpt()))

    assert job.status == "failed" and "Memory was switched off" in job.error
    assert job.conversations_imported == 1


# --- Cleanup --------------------------------------------------------------------------------------


def test_cleanup_fails_interrupted_jobs_requeues_lost_ones_and_deletes_orphans(
    alice, upload, settings
):
    waiting, _ = upload(alice, as_json(sample_chatgpt()), choose=True)
    running = ImportJob.objects.create(
        user=alice, status="running", file_sha256="1" * 64, file_size=1
    )
    lost = ImportJob.objects.create(user=alice, status="queued", file_sha256="2" * 64, file_size=1)
    orphan = uploads_dir() / f"{alice.pk}-orphan.upload"
    orphan.write_bytes(b"left by a crash")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    later = timezone.now() + timedelta(hours=settings.IMPORT_CHOICE_HOURS, minutes=1)
    ImportJob.objects.filter(pk__in=[running.pk, lost.pk]).update(
        heartbeat_at=later - timedelta(hours=3)
    )

    result = imports_cleanup(now=later)

    assert result == {"interrupted": 1, "unchosen": 1, "requeued": 1, "orphans": 1}
    assert ImportJob.objects.get(pk=running.pk).status == "failed"
    assert "interrupted" in ImportJob.objects.get(pk=running.pk).error
    assert ImportJob.objects.get(pk=waiting.pk).status == "cancelled"
    # the lost one was queued again and run (eager): it has no file, so it fails saying so
    assert ImportJob.objects.get(pk=lost.pk).status == "failed"
    assert list(uploads_dir().iterdir()) == []
