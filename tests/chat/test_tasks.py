"""Chat's periodic jobs: idle conversations end (and are finalized)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chat.models import Conversation
from chat.services import chat_turn
from chat.tasks import end_idle_conversations
from memories.models import Memory


def test_it_ends_idle_conversations_and_finalizes_them(
    alice, settings, django_capture_on_commit_callbacks
):
    conversation = chat_turn(user=alice, conversation=None, text="I'm vegetarian.").conversation
    idle = timezone.now() - timedelta(minutes=settings.CONVERSATION_IDLE_MINUTES + 1)
    Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=idle)

    with django_capture_on_commit_callbacks(execute=True):
        assert end_idle_conversations() == 1

    conversation.refresh_from_db()
    assert conversation.ended_at is not None and conversation.finalized_at is not None
    assert not conversation.messages.unprocessed().exists()
    assert Memory.objects.filter(user=alice, subject="diet").exists()


def test_it_leaves_active_conversations_open(alice):
    conversation = chat_turn(user=alice, conversation=None, text="Hello").conversation
    assert end_idle_conversations() == 0
    conversation.refresh_from_db()
    assert conversation.ended_at is None


def test_a_chat_used_again_before_its_deletion_stays(alice):
    from chat.services import conversation_delete

    conversation = chat_turn(user=alice, conversation=None, text="Hello").conversation
    cutoff = conversation.last_activity_at - timedelta(seconds=1)  # it was used after the cutoff
    conversation_delete(
        user=alice, conversation=conversation, keep_memories=True, inactive_before=cutoff
    )
    assert Conversation.objects.filter(pk=conversation.pk).exists()
