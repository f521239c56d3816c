# Memory and episode text encrypted (vault): the database can no longer compute their search vectors, so
# `search` becomes a column the app writes. Written by hand: a generated column cannot be altered.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations

import vault.fields
from vault.migration_ops import encrypt_column


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0008_held_memory"),
        ("vault", "0001_initial"),
        ("chat", "0005_alter_conversation_title_alter_message_content"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="memory", name="memory_search_gin"),
        migrations.RemoveIndex(model_name="episode", name="episode_search_gin"),
        migrations.RemoveField(model_name="memory", name="search"),
        migrations.RemoveField(model_name="episode", name="search"),
        migrations.AddField(
            model_name="memory",
            name="search",
            field=django.contrib.postgres.search.SearchVectorField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="episode",
            name="search",
            field=django.contrib.postgres.search.SearchVectorField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(
            [
                "UPDATE memories_memory SET search = strip(to_tsvector('english'::regconfig, COALESCE(text, '')))",
                "UPDATE memories_episode SET search = strip(to_tsvector('english'::regconfig, COALESCE(text, '')))",
            ],
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="memory",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search"], name="memory_search_gin"),
        ),
        migrations.AddIndex(
            model_name="episode",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search"], name="episode_search_gin"),
        ),
        migrations.AlterField(
            model_name="memory",
            name="text",
            field=vault.fields.EncryptedTextField(help_text="The memory as a sentence about the user.", owner="user_id"),
        ),
        migrations.AlterField(
            model_name="episode",
            name="text",
            field=vault.fields.EncryptedTextField(owner="user_id"),
        ),
        migrations.AlterField(
            model_name="memoryrevision",
            name="old_text",
            field=vault.fields.EncryptedTextField(blank=True, owner="memory.user_id"),
        ),
        migrations.AlterField(
            model_name="memoryrevision",
            name="new_text",
            field=vault.fields.EncryptedTextField(blank=True, owner="memory.user_id"),
        ),
        encrypt_column("memories_memory", "text", "SELECT id, user_id, text FROM memories_memory WHERE text <> ''"),
        encrypt_column("memories_episode", "text", "SELECT id, user_id, text FROM memories_episode WHERE text <> ''"),
        *(
            encrypt_column(
                "memories_memoryrevision",
                column,
                f"SELECT r.id, m.user_id, r.{column} FROM memories_memoryrevision r"
                f" JOIN memories_memory m ON m.id = r.memory_id WHERE r.{column} <> ''",
            )
            for column in ("old_text", "new_text")
        ),
    ]
