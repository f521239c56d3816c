"""Conversation summaries at the end of a conversation, and the periodic digest per user."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chat.services import chat_turn, conversation_end
from memories.models import Episode, Memory
from memories.retrieval import build_context
from memories.summaries import user_digest
from memories.tasks import digest_all


def _conversation(user, run_on_commit, *texts):
    conversation = None
    for text in texts:
        conversation = run_on_commit(
            chat_turn, user=user, conversation=conversation, text=text
        ).conversation
    run_on_commit(conversation_end, conversation=conversation)
    return conversation


def test_an_ended_conversation_gets_an_embedded_summary_with_its_sources(alice, run_on_commit):
    conversation = _conversation(
        alice,
        run_on_commit,
        "ok",
        "I'm building a FastAPI service for invoices.",
        "The asyncpg connection pool runs dry under load and requests time out.",
        "thanks!",
    )

    summary = Episode.objects.get(user=alice, kind="summary", key=f"summary:{conversation.pk}")

    assert (
        "FastAPI service for invoices" in summary.text
        and "connection pool runs dry" in summary.text
    )
    assert "thanks" not in summary.text
    assert summary.embedding is not None
    sources = set(summary.messages.values_list("content", flat=True))
    assert sources == {
        "I'm building a FastAPI service for invoices.",
        "The asyncpg connection pool runs dry under load and requests time out.",
    }


def test_the_summary_is_recalled_in_a_later_conversation(alice, run_on_commit):
    _conversation(
        alice,
        run_on_commit,
        "We chose Postgres logical replication to move the billing data.",
        "The cutover is planned for a weekend with a short read-only window.",
    )

    context = build_context(alice, "how did we decide to move the billing data?")

    summary = next(item for item in context.items if item.kind == "summary")
    assert "logical replication" in summary.text and "cutover" in summary.text
    assert len(summary.sources) == 2


def test_summarizing_twice_keeps_one_summary(alice, run_on_commit):
    from memories.summaries import summary_write

    conversation = _conversation(
        alice, run_on_commit, "I'm learning to play the cello this winter."
    )
    summary_write(conversation=conversation)

    assert Episode.objects.filter(user=alice, kind="summary").count() == 1


def test_the_digest_tells_what_was_learned_and_what_changed(alice, bob, run_on_commit):
    _conversation(alice, run_on_commit, "I live in Paris.")
    _conversation(alice, run_on_commit, "I live in Berlin.", "I'm vegetarian.")
    assert (
        Memory.objects.for_user(alice).current().filter(subject="location").get().text
        == "User lives in Berlin"
    )

    digest = user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))

    assert digest.kind == "digest" and digest.conversation is None
    assert "Learned:" in digest.text and "User is vegetarian" in digest.text
    assert "User lives in Paris → User lives in Berlin" in digest.text
    assert digest.messages.exists()
    assert user_digest(user=bob, period_end=timezone.now()) is None


def test_the_weekly_task_digests_only_active_users(alice, bob, run_on_commit):
    _conversation(alice, run_on_commit, "I'm vegetarian.")

    assert digest_all() == 1
    assert Episode.objects.filter(user=alice, kind="digest").count() == 1
    assert not Episode.objects.filter(user=bob).exists()


def test_the_digest_never_quotes_a_memory_held_for_review(alice, run_on_commit):
    _conversation(alice, run_on_commit, "I live in Paris.")
    _conversation(alice, run_on_commit, "I live in Berlin.")
    berlin = Memory.objects.for_user(alice).current().get(subject="location")
    Memory.objects.filter(pk=berlin.pk).update(review_status=Memory.Review.PENDING)

    digest = user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))

    assert "User lives in Berlin" not in digest.text


def test_a_summary_drafted_before_an_erasure_is_not_written_after_it(
    alice, run_on_commit, monkeypatch
):
    """The summary is drafted and embedded outside the user's lock; if an erasure excludes one of
    its messages meanwhile, it is not written (the erasure queued a summary of what is left)."""
    from chat.models import Message
    from memories import summaries

    conversation = _conversation(
        alice, run_on_commit, "I'm building a FastAPI service for invoices.", "My salary is 90k."
    )
    Episode.objects.filter(kind="summary").delete()
    real = summaries.embed_texts

    [salary] = [m for m in Message.objects.filter(conversation=conversation) if "90k" in m.content]

    def embed_while_an_erasure_runs(texts):
        Message.objects.filter(pk=salary.pk).update(excluded_from_memory=True)
        return real(texts)

    monkeypatch.setattr(summaries, "embed_texts", embed_while_an_erasure_runs)

    assert summaries.summary_write(conversation=conversation) is None
    assert not Episode.objects.filter(user=alice, kind="summary").exists()
