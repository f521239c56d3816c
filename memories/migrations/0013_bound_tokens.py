# Tokens bound to their row (vault enc2): the primary keys are drawn before the INSERT, so that the
# text can bind its row id; the tokens written before (enc1, bound to their key only) are bound.

from django.db import migrations

import vault.fields
from vault.migration_ops import bind_column

REVISION_ROWS = (
    "SELECT r.id, m.user_id, r.{column} FROM memories_memoryrevision r"
    " JOIN memories_memory m ON m.id = r.memory_id"
)


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0012_revision_action_choices"),
        ("vault", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="episode",
            name="id",
            field=vault.fields.PreallocatedAutoField(primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="memory",
            name="id",
            field=vault.fields.PreallocatedAutoField(primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="memoryrevision",
            name="id",
            field=vault.fields.PreallocatedAutoField(primary_key=True, serialize=False),
        ),
        bind_column("memories_memory", "text", "SELECT id, user_id, text FROM memories_memory"),
        bind_column("memories_episode", "text", "SELECT id, user_id, text FROM memories_episode"),
        bind_column("memories_memoryrevision", "old_text", REVISION_ROWS.format(column="old_text")),
        bind_column("memories_memoryrevision", "new_text", REVISION_ROWS.format(column="new_text")),
    ]
