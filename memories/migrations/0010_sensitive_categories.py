# Every special category a memory touches, not only one: a memory about health and religion is used only
# when the user opted in to both. Existing rows are classified again from their (decrypted) text.

import django.contrib.postgres.fields
from django.db import migrations, models


def classify_again(apps, schema_editor):
    from memories.sensitive import sensitive_categories
    from vault import keys
    from vault.migration_ops import read_token

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, user_id, text, sensitive_category FROM memories_memory")
        for pk, user_id, token, old in cursor.fetchall():
            try:
                text = read_token("memories_memory", "text", pk, user_id, token) if token else ""
                found = sensitive_categories(text)
            except keys.VaultError:  # unreadable: keep what was known
                found = set()
            categories = sorted(found | ({old} if old else set()))
            cursor.execute("UPDATE memories_memory SET sensitive_categories = %s WHERE id = %s", [categories, pk])


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0009_encrypted_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="memory",
            name="sensitive_categories",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=20),
                blank=True,
                default=list,
                help_text="The special categories (GDPR art. 9) the text touches, if any: it is used only when "
                "the user opted in to every one of them.",
                size=None,
            ),
        ),
        migrations.RunPython(classify_again, migrations.RunPython.noop),
        migrations.RunSQL(
            migrations.RunSQL.noop,
            "UPDATE memories_memory SET sensitive_category = COALESCE(sensitive_categories[1], '')",
        ),
        migrations.RemoveField(model_name="memory", name="sensitive_category"),
    ]
