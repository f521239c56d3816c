"""Migration operations that encrypt (and, backwards, decrypt) an existing text column in place.

They read and write the column with SQL, so they do not depend on the model classes of the time.
`rows_sql` selects `(id, user id, value)` for every row of the column that is not empty."""

from __future__ import annotations

from django.db import migrations

from vault import keys


def encrypt_column(table: str, column: str, rows_sql: str) -> migrations.RunPython:
    def forward(apps, schema_editor):
        _rewrite(schema_editor.connection, table, column, rows_sql, keys.encrypt, encrypted=False)

    def backward(apps, schema_editor):
        _rewrite(schema_editor.connection, table, column, rows_sql, _decrypt, encrypted=True)

    return migrations.RunPython(forward, backward, elidable=False)


def _decrypt(user_id: int, value: str) -> str:
    return keys.decrypt(value)


def _rewrite(connection, table, column, rows_sql, convert, encrypted: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(rows_sql)
        rows = [
            (pk, user_id, value)
            for pk, user_id, value in cursor.fetchall()
            if keys.is_token(value) == encrypted
        ]
        for pk, user_id, value in rows:
            cursor.execute(
                f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s', [convert(user_id, value), pk]
            )
