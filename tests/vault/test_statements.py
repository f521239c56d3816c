"""Parameters are bound by the server: what a user says travels apart from the SQL text, so it is in
no statement PostgreSQL logs or shows (pg_stat_activity), and the embedded server logs no bind
parameters either. Stored, it is ciphertext; only the documented search words stay plain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import connection, models
from django.db.models.functions import Cast

from chat.services import chat_turn

MARKER = "Plumbrook"
SENTENCE = f"Remember that my dentist is Dr {MARKER} on Elm Street."
SEARCH_COLUMNS = {"memories_memory.search", "memories_episode.search"}  # docs/privacy.md


@contextmanager
def statements_logged() -> Iterator[list[str]]:
    """This connection's lines of the embedded server's log, every statement logged meanwhile."""
    if not settings.EMBEDDED_DATABASE:
        pytest.skip("reads the embedded server's log file")
    log = Path(settings.DATA_DIR) / "pgdata" / "log"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
        start = log.stat().st_size
        cursor.execute("SET log_statement = 'all'")  # the embedded server's user is a superuser
    lines: list[str] = []
    try:
        yield lines
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET log_statement")
    with log.open("rb") as file:
        file.seek(start)
        text = file.read().decode(errors="replace")
    lines += [line for line in text.splitlines() if f"[{pid}]" in line]


def test_what_a_user_says_is_in_no_statement_nor_logged_parameter(alice, run_on_commit):
    with statements_logged() as lines:
        run_on_commit(chat_turn, user=alice, conversation=None, text=SENTENCE)

    inserts = [line for line in lines if 'INSERT INTO "chat_message"' in line]
    assert inserts and all("$1" in line for line in inserts)  # the server binds the values
    assert any('INSERT INTO "memories_memory"' in line for line in lines)  # the worker's too
    assert not [line for line in lines if MARKER in line]
    assert not [line for line in lines if "parameters:" in line.lower()]


def test_what_a_user_says_is_stored_only_as_ciphertext_and_search_words(alice, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text=SENTENCE)
    hits = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField | models.JSONField) or (
                isinstance(field, SearchVectorField)
            ):
                as_text = model.objects.annotate(t=Cast(field.attname, models.TextField()))
                if as_text.filter(t__icontains=MARKER).exists():
                    hits.add(f"{model._meta.db_table}.{field.column}")
    assert hits == SEARCH_COLUMNS
