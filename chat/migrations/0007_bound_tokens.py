# Tokens bound to their row (vault enc2): the primary keys are drawn before the INSERT, so that the
# text can bind its row id; the tokens written before (enc1, bound to their key only) are bound.

from django.db import migrations

import vault.fields
from vault.migration_ops import bind_column


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_queued_at"),
        ("vault", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="id",
            field=vault.fields.PreallocatedAutoField(primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="message",
            name="id",
            field=vault.fields.PreallocatedAutoField(primary_key=True, serialize=False),
        ),
        bind_column(
            "chat_conversation", "title", "SELECT id, user_id, title FROM chat_conversation"
        ),
        bind_column(
            "chat_message",
            "content",
            "SELECT m.id, c.user_id, m.content FROM chat_message m"
            " JOIN chat_conversation c ON c.id = m.conversation_id",
        ),
    ]
