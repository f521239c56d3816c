"""The seed's three failures, end to end across separate sessions, through the real chat turn,
the real extraction and embedding (local model) and the real PostgreSQL + pgvector retrieval."""

from __future__ import annotations

import pytest

from chat import services
from memories.models import Episode, Memory
from tests.factories import message_starting


def _session(user, run_on_commit, *texts):
    """One conversation: say each text, then end it (extraction runs as the worker would)."""
    conversation = None
    result = None
    for text in texts:
        result = run_on_commit(services.chat_turn, user=user, conversation=conversation, text=text)
        conversation = result.conversation
    run_on_commit(services.conversation_end, conversation=conversation)
    return result


def _recalled_texts(result) -> list[str]:
    return [item.text for item in result.context.items]


@pytest.mark.django_db(transaction=False)
def test_it_recalls_a_stated_preference_in_a_later_session(alice, run_on_commit):
    _session(
        alice, run_on_commit, "Hi, I'm Alex, a backend developer. Remember that I'm vegetarian."
    )

    later = _session(alice, run_on_commit, "Can you suggest something for dinner?")

    assert any("vegetarian" in t for t in _recalled_texts(later))
    assert "vegetarian" in later.context.text
    vegetarian = Memory.objects.get(user=alice, subject="diet")
    assert vegetarian.pinned
    assert vegetarian.pk in later.context.memory_ids
    # The reply records what it used, and the offline reply says so plainly.
    assert later.reply.recalls.filter(memory=vegetarian).exists()
    assert "No language model is configured" in later.reply.content
    assert "User is vegetarian" in later.reply.content


def test_it_recalls_a_project_explained_earlier(alice, run_on_commit):
    _session(
        alice,
        run_on_commit,
        "I'm building a FastAPI service for invoices.",
        "Under load the asyncpg connection pool gets exhausted and requests time out after 30 seconds.",
    )
    _session(alice, run_on_commit, "I also enjoy climbing on weekends.")

    later = _session(alice, run_on_commit, "Remember that pooling issue? Any new ideas?")

    texts = " ".join(_recalled_texts(later))
    assert "connection pool gets exhausted" in texts
    source_ids = {s for item in later.context.items for s in item.sources}
    explained = message_starting("Under load the asyncpg")
    assert explained.pk in source_ids


def test_it_recalls_a_term_the_user_defined(alice, run_on_commit):
    _session(alice, run_on_commit, 'When I say "the monolith" I mean our old Django billing app.')

    later = _session(alice, run_on_commit, "How should we start splitting the monolith?")

    assert any("old Django billing app" in t for t in _recalled_texts(later))


def test_it_does_not_store_the_same_memory_twice(alice, run_on_commit):
    _session(alice, run_on_commit, "I'm vegetarian.")
    _session(alice, run_on_commit, "Just so you know, I'm vegetarian.")

    memories = Memory.objects.filter(user=alice, subject="diet")
    assert memories.count() == 1
    assert memories.get().source_messages.count() == 2
    assert memories.get().revisions.filter(action="reinforce").count() == 1


def test_processing_a_message_twice_changes_nothing(alice, run_on_commit):
    from memories.pipeline import message_process

    result = _session(alice, run_on_commit, "I live in Lisbon.")
    before = (Memory.objects.count(), Episode.objects.count())

    assert message_process(message_id=result.user_message.pk) is False
    assert (Memory.objects.count(), Episode.objects.count()) == before
    assert Episode.objects.filter(key=f"turn:{result.user_message.pk}").count() == 1


def test_it_recalls_nothing_of_another_user(alice, bob, run_on_commit):
    _session(alice, run_on_commit, "Remember that I'm vegetarian.")

    later = _session(bob, run_on_commit, "Can you suggest something for dinner?")

    assert later.context.items == []
    assert "don't remember anything" in later.reply.content
