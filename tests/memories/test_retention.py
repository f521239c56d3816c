"""Retention limits, applied by the periodic tasks (chat's for conversations, memories' for
memories)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chat.models import Conversation
from chat.services import chat_turn
from chat.tasks import delete_old_conversations
from memories.models import Episode, Memory
from memories.tasks import apply_retention
from tests.factories import memory_saying


def _age(queryset, days: int, *fields: str) -> None:
    queryset.update(**{field: timezone.now() - timedelta(days=days) for field in fields})


def test_old_conversations_go_and_their_memories_stay_without_them(alice, run_on_commit, settings):
    settings.RETENTION_CONVERSATION_DAYS = 30
    old = run_on_commit(
        chat_turn, user=alice, conversation=None, text="I live in Lisbon."
    ).conversation
    recent = run_on_commit(
        chat_turn, user=alice, conversation=None, text="I'm vegetarian."
    ).conversation
    _age(Conversation.objects.filter(pk=old.pk), 31, "last_activity_at")

    assert delete_old_conversations() >= 1

    assert list(Conversation.objects.filter(user=alice)) == [recent]
    assert not Episode.objects.filter(conversation_id=old.pk).exists()
    lisbon = memory_saying("User lives in Lisbon", user=alice)
    assert not lisbon.source_messages.exists()


def test_unused_memories_go_unless_pinned_or_recalled(alice, settings):
    from memories.services import memory_remember

    settings.RETENTION_MEMORY_DAYS = 90
    stale, _ = memory_remember(user=alice, kind="fact", text="User owns a red bicycle")
    pinned, _ = memory_remember(user=alice, kind="fact", text="User owns a blue kayak")
    recalled, _ = memory_remember(user=alice, kind="fact", text="User owns a green tent")
    Memory.objects.filter(pk=stale.pk).update(pinned=False)
    Memory.objects.filter(pk=recalled.pk).update(pinned=False, last_recalled_at=timezone.now())
    _age(Memory.objects.filter(user=alice), 91, "updated_at")

    assert apply_retention()["memories"] >= 1

    assert set(Memory.objects.filter(user=alice).values_list("pk", flat=True)) == {
        pinned.pk,
        recalled.pk,
    }


def test_a_zero_limit_keeps_everything(alice, run_on_commit, settings):
    settings.RETENTION_CONVERSATION_DAYS = 0
    settings.RETENTION_MEMORY_DAYS = 0
    conversation = run_on_commit(
        chat_turn, user=alice, conversation=None, text="I live in Lisbon."
    ).conversation
    _age(Conversation.objects.all(), 5000, "last_activity_at")
    _age(Memory.objects.all(), 5000, "updated_at")

    assert (delete_old_conversations(), apply_retention()["memories"]) == (0, 0)
    assert Conversation.objects.filter(pk=conversation.pk).exists() and Memory.objects.exists()
