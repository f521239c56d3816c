"""No wait without end: every connection has a lock and a statement timeout, and a user's row lock
is not held across a call that may go over the network (an embedding)."""

from __future__ import annotations

from django.db import connection

from memories import services


def _show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_connections_have_a_lock_and_a_statement_timeout(db):
    assert _show("lock_timeout") == "10s"
    assert _show("statement_timeout") == "1min"


def test_remember_embeds_before_taking_the_users_lock(alice, monkeypatch):
    """The test runs inside a transaction of its own: what counts is that remember has not opened
    one (a savepoint here) when it embeds, so the lock it takes afterwards is not held meanwhile."""
    real, depth, inside = services.embed_texts, len(connection.savepoint_ids), []

    def embed(texts):
        inside.append(len(connection.savepoint_ids) > depth)
        return real(texts)

    monkeypatch.setattr(services, "embed_texts", embed)
    services.memory_remember(user=alice, kind="fact", text="User plays the cello")
    assert inside == [False]


def _embeds_outside_transactions(monkeypatch, module) -> list[bool]:
    """Wrap `module.embed_texts`: each call records whether a transaction (a savepoint, as the test
    has one of its own) was open: the user's lock is only ever taken inside one."""
    real, depth, inside = module.embed_texts, len(connection.savepoint_ids), []

    def embed(texts):
        inside.append(len(connection.savepoint_ids) > depth)
        return real(texts)

    monkeypatch.setattr(module, "embed_texts", embed)
    return inside


def test_a_digest_embeds_before_taking_the_users_lock(alice, monkeypatch, run_on_commit):
    from django.utils import timezone

    from chat.services import chat_turn
    from memories import summaries

    run_on_commit(chat_turn, user=alice, conversation=None, text="I'm vegetarian.")
    inside = _embeds_outside_transactions(monkeypatch, summaries)

    digest = summaries.user_digest(user=alice, period_end=timezone.now())

    assert digest is not None and digest.embedding is not None
    assert inside == [False]


def test_an_erasure_drops_tainted_vectors_and_they_are_embedded_again_outside_the_lock(
    alice, monkeypatch, run_on_commit
):
    """Forgetting a memory takes the vector of the turn that answered its message (it carried the
    forgotten text) at once; the worker embeds it again afterwards, outside the user's lock."""
    from chat.services import chat_turn
    from memories import episodes
    from memories.erasure import memory_delete
    from memories.models import Episode, Memory
    from tests.factories import memory_saying

    first = run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Paris.")
    run_on_commit(
        chat_turn, user=alice, conversation=first.conversation, text="It rains a lot there."
    )
    follower = Episode.objects.get(
        key=f"turn:{first.conversation.messages.filter(role='user').last().pk}"
    )
    assert follower.embedding is not None
    calls = []
    monkeypatch.setattr(
        episodes, "vectors_fill", lambda **kw: calls.append(kw)
    )  # see what is queued; run it below

    run_on_commit(memory_delete, user=alice, memory=memory_saying("User lives in Paris"))

    follower.refresh_from_db()
    assert follower.embedding is None and calls == [{"user_id": alice.pk}]
    monkeypatch.undo()
    inside = _embeds_outside_transactions(monkeypatch, episodes)
    assert episodes.vectors_fill(user_id=alice.pk) == 1
    follower.refresh_from_db()
    assert follower.embedding is not None and inside == [False]
    assert not Memory.objects.filter(user=alice, embedding__isnull=True).exists()
