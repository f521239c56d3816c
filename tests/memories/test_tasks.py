"""The sweep: job state lives in Postgres, so work a lost broker message left undone is found
again."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chat.models import Conversation, Message
from chat.services import chat_turn
from memories import tasks
from memories.models import Episode
from memories.tasks import SWEEP_GRACE, sweep
from tests.factories import memories_saying


def test_it_processes_a_message_whose_task_was_lost(alice):
    # not queued
    conversation = chat_turn(user=alice, conversation=None, text="I live in Porto.").conversation
    message = conversation.messages.get(role=Message.Role.USER)
    assert message.processed_at is None
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - SWEEP_GRACE - timedelta(seconds=1)
    )

    result = sweep()

    assert result["messages"] == 1
    message.refresh_from_db()
    assert message.processed_at is not None
    assert memories_saying("User lives in Porto", user=alice)
    assert Episode.objects.filter(key=f"turn:{message.pk}").exists()


def test_it_queues_a_lost_task_again_only_after_a_while(alice, monkeypatch):
    sent = []  # what reached the broker; nothing runs, as when the worker has a backlog
    monkeypatch.setattr(tasks.process_message, "delay", lambda pk: sent.append(("message", pk)))
    monkeypatch.setattr(
        tasks.finalize_conversation, "delay", lambda pk: sent.append(("conversation", pk))
    )
    conversation = chat_turn(user=alice, conversation=None, text="I live in Porto.").conversation
    message = conversation.messages.get(role=Message.Role.USER)
    old = timezone.now() - SWEEP_GRACE - timedelta(seconds=1)
    Message.objects.filter(pk=message.pk).update(created_at=old)
    Conversation.objects.filter(pk=conversation.pk).update(ended_at=old)
    lost = [("message", message.pk), ("conversation", conversation.pk)]

    sweep()
    assert sent == lost
    sweep()
    assert sent == lost  # queued a moment ago: not again
    lapsed = timezone.now() - tasks.REQUEUE_AFTER - timedelta(seconds=1)
    Message.objects.filter(pk=message.pk).update(queued_at=lapsed)
    Conversation.objects.filter(pk=conversation.pk).update(finalize_queued_at=lapsed)
    sweep()
    assert sent == lost + lost  # still not done long after: queued again


def test_it_leaves_fresh_messages_to_their_own_task(alice):
    chat_turn(user=alice, conversation=None, text="I live in Porto.")
    assert sweep()["messages"] == 0


def test_a_message_whose_task_was_lost_is_queued_again_within_two_minutes(
    alice, monkeypatch, settings
):
    sent = []
    monkeypatch.setattr(tasks.process_message, "delay", sent.append)
    message = chat_turn(user=alice, conversation=None, text="I live in Porto.").user_message
    lease = timedelta(seconds=settings.MEMORY_REQUEUE_SECONDS)
    # queued by its turn just under the lease ago: still its own task's
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - lease - timedelta(seconds=2),
        queued_at=timezone.now() - lease + timedelta(seconds=5),
    )
    sweep()
    assert sent == []

    Message.objects.filter(pk=message.pk).update(queued_at=timezone.now() - lease)
    sweep()
    assert sent == [message.pk]
    # a sweep runs every MEMORY_SWEEP_SECONDS: the longest a lost task waits to be queued again
    assert settings.MEMORY_REQUEUE_SECONDS + settings.MEMORY_SWEEP_SECONDS <= 100


def test_a_second_delivery_leaves_a_message_another_task_is_processing(alice):
    """The claim is an advisory lock in Postgres: held here by another real connection, as by a
    worker still extracting."""
    from django.db import connections

    from memories.pipeline import MESSAGE_CLAIM_LOCKS, message_process

    message = chat_turn(user=alice, conversation=None, text="I live in Porto.").user_message
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [MESSAGE_CLAIM_LOCKS, message.pk])
        assert message_process(message_id=message.pk) is False
        message.refresh_from_db()
        assert message.processed_at is None
        assert not memories_saying("User lives in Porto", user=alice)

        with other.cursor() as cursor:  # that worker died: its connection, and the lock, are gone
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [MESSAGE_CLAIM_LOCKS, message.pk])
        assert message_process(message_id=message.pk) is True
    finally:
        other.close()
    assert len(memories_saying("User lives in Porto", user=alice)) == 1
    assert message_process(message_id=message.pk) is False  # and never twice
