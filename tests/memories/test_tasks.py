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
