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
