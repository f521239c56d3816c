"""Migration operations that encrypt an existing text column in place, or bind the tokens of the
first format (enc1, bound to their key only) to their row; and `read_token`, for data migrations
that read encrypted text in whichever format it is at their point in the history.

They read and write the column with SQL, so they do not depend on the model classes of the time.
`rows_sql` selects `(id, user id, value)` for every row of the column; rows are rewritten in
batches of BATCH, in id order, so a large table is never held in memory."""

from __future__ import annotations

from collections.abc import Callable

from django.db import migrations

from vault import keys

BATCH = 1000


def encrypt_column(table: str, column: str, rows_sql: str) -> migrations.RunPython:
    """Plain text → bound tokens; backwards, any token → plain text."""

    def forward(apps, schema_editor):
        def seal(pk, user_id, value):
            if keys.is_token(value) or keys.is_unbound_token(value):
                return None
            return keys.encrypt(keys.Binding(user_id, table, column, pk), value)

        _rewrite(schema_editor.connection, table, column, rows_sql, seal)

    def backward(apps, schema_editor):
        def open_(pk, user_id, value):
            if not (keys.is_token(value) or keys.is_unbound_token(value)):
                return None
            return read_token(table, column, pk, user_id, value)

        _rewrite(schema_editor.connection, table, column, rows_sql, open_)

    return migrations.RunPython(forward, backward, elidable=False)


def bind_column(table: str, column: str, rows_sql: str) -> migrations.RunPython:
    """Tokens bound to their key only (enc1) → tokens bound to their row (enc2); backwards, the
    other way, for the release before. A row under a destroyed key cannot be rewritten: it is left
    as it is (it reads as unreadable either way)."""

    def forward(apps, schema_editor):
        def bind(pk, user_id, value):
            if not keys.is_unbound_token(value):
                return None
            try:
                text = keys.decrypt_unbound(value)
            except keys.KeyDestroyed:
                return None
            return keys.encrypt(keys.Binding(user_id, table, column, pk), text)

        _rewrite(schema_editor.connection, table, column, rows_sql, bind)

    def backward(apps, schema_editor):
        def unbind(pk, user_id, value):
            if not keys.is_token(value):
                return None
            try:
                text = keys.decrypt(keys.Binding(user_id, table, column, pk), value)
            except keys.KeyDestroyed:
                return None
            return keys.encrypt_unbound(user_id, text)

        _rewrite(schema_editor.connection, table, column, rows_sql, unbind)

    return migrations.RunPython(forward, backward, elidable=False)


def read_token(table: str, column: str, pk, user_id, value: str) -> str:
    """The text of a token of either format (a bound one checked against its row)."""
    if keys.is_unbound_token(value):
        return keys.decrypt_unbound(value)
    return keys.decrypt(keys.Binding(user_id, table, column, pk), value)


def _rewrite(
    connection, table: str, column: str, rows_sql: str, convert: Callable[..., str | None]
) -> None:
    """Set each non-empty value to `convert(pk, user_id, value)`, unless that is None."""
    after = None
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT * FROM ({rows_sql}) AS row_ (id, user_id, value)"
                " WHERE row_.value <> '' AND (%s::bigint IS NULL OR row_.id > %s::bigint)"
                " ORDER BY row_.id LIMIT %s",
                [after, after, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            changes = [
                (new, pk)
                for pk, user_id, value in rows
                if (new := convert(pk, user_id, value)) is not None
            ]
            if changes:
                cursor.executemany(f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s', changes)
            after = rows[-1][0]
