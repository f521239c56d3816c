import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserKey",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("wrapped_key", models.BinaryField(help_text="nonce + AES-GCM(master key, data key)")),
                ("master_key_id", models.CharField(help_text="Which master key wrapped it.", max_length=40)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("rewrapped_at", models.DateTimeField(blank=True, help_text="Last master key rotation.", null=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="data_key",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
