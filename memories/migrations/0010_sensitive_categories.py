# Every special category a memory touches, not only one: a memory about health and religion is used only
# when the user opted in to both. Existing rows keep their one category.

import django.contrib.postgres.fields
from django.db import migrations, models


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
        migrations.RunSQL(
            "UPDATE memories_memory SET sensitive_categories = ARRAY[sensitive_category] WHERE sensitive_category <> ''",
            "UPDATE memories_memory SET sensitive_category = COALESCE(sensitive_categories[1], '')",
        ),
        migrations.RemoveField(model_name="memory", name="sensitive_category"),
    ]
