"""Episode and memory rows kept whole in the table: a row over ~2 kB (a 384-float embedding is
1.5 kB of it) had its embedding and term weights moved to the TOAST table, and each turn a context
ranks cost three page reads instead of one (docs/benchmarks.md, "Retrieval at scale"). Rows written
from now on stay inline up to 8160 bytes; a larger one (a pasted document) is still compressed and
moved out; existing rows move in when rewritten (`VACUUM FULL memories_episode`)."""

from django.db import migrations

TABLES = ("memories_episode", "memories_memory")


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0017_exact_vector_search"),
    ]

    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {table} SET (toast_tuple_target = 8160)" for table in TABLES],
            [f"ALTER TABLE {table} RESET (toast_tuple_target)" for table in TABLES],
        ),
    ]
