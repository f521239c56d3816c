"""The speakers of a user's turns, read before the query is embedded
(`memories.lexical.named_speakers`: a named speaker's name is left out of the query's vector): one
short walk of the index per speaker, not a scan of the user's turns. Built concurrently: writes to
the episodes go on meanwhile."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("memories", "0018_rows_inline"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="episode",
            index=models.Index(
                condition=models.Q(kind="turn"),
                fields=["user", "speaker"],
                name="episode_turn_speaker_idx",
            ),
        ),
    ]
