"""BM25 in PostgreSQL: each turn's term weights (a sparsevec) and, per user, in how many turns each
term occurs, kept by statement-level triggers so that no way of writing or deleting episodes (save,
bulk_create, cascades, raw SQL) can leave the counts wrong. Existing turns are weighted here, and
every episode's checks (poisoning, special categories) stored, for retrieval to filter in SQL."""

import django.contrib.postgres.fields
import django.db.models.deletion
import pgvector.django.sparsevec
from django.conf import settings
from django.db import migrations, models

# The terms of a sparsevec, as it prints: "{12:0.5,907:1.1}/1000000000".
TERMS_FUNCTION = r"""
CREATE FUNCTION memories_lexical_terms(weights sparsevec) RETURNS SETOF integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT m[1]::integer FROM regexp_matches(weights::text, '([0-9]+):', 'g') AS m
$$;
"""

# Counts per (user, term) of the turns in a transition table; term 0 counts the turns.
COUNTS = """
    SELECT user_id, term, count(*) AS turns FROM (
        SELECT r.user_id, memories_lexical_terms(r.lexical) AS term FROM {rows} r
        WHERE r.kind = 'turn' AND r.lexical IS NOT NULL
        UNION ALL
        SELECT r.user_id, 0 FROM {rows} r WHERE r.kind = 'turn'
    ) t GROUP BY user_id, term
"""

TRIGGER_FUNCTION = f"""
CREATE FUNCTION memories_turnterm_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE memories_turnterm t SET turns = t.turns - gone.turns
        FROM ({COUNTS.format(rows="old_rows")}) gone
        WHERE t.user_id = gone.user_id AND t.term = gone.term;
        DELETE FROM memories_turnterm t
        WHERE t.turns <= 0 AND t.user_id IN (SELECT DISTINCT user_id FROM old_rows);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO memories_turnterm (user_id, term, turns)
        SELECT * FROM ({COUNTS.format(rows="new_rows")}) added ORDER BY user_id, term
        ON CONFLICT (user_id, term) DO UPDATE SET turns = memories_turnterm.turns + EXCLUDED.turns;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER memories_turnterm_insert AFTER INSERT ON memories_episode
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION memories_turnterm_keep();
CREATE TRIGGER memories_turnterm_update AFTER UPDATE ON memories_episode
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memories_turnterm_keep();
CREATE TRIGGER memories_turnterm_delete AFTER DELETE ON memories_episode
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION memories_turnterm_keep();
"""

# Rows written before the triggers existed were never counted: count every turn again, once their
# weights are in.
RECOUNT = f"""
DELETE FROM memories_turnterm;
INSERT INTO memories_turnterm (user_id, term, turns) {COUNTS.format(rows="memories_episode")};
"""

SPEAKERS = """
UPDATE memories_episode e SET speaker = m.speaker
FROM memories_episode_messages em JOIN chat_message m ON m.id = em.message_id
WHERE em.episode_id = e.id AND e.kind = 'turn' AND m.speaker <> '';
"""

DROP = """
DROP TRIGGER IF EXISTS memories_turnterm_insert ON memories_episode;
DROP TRIGGER IF EXISTS memories_turnterm_update ON memories_episode;
DROP TRIGGER IF EXISTS memories_turnterm_delete ON memories_episode;
DROP FUNCTION IF EXISTS memories_turnterm_keep();
DROP FUNCTION IF EXISTS memories_lexical_terms(sparsevec);
"""


def weigh_existing_turns(apps, schema_editor):
    """Weights for the turns written before: with the words of the turn just before in the same
    conversation (a message that was itself remembered), as the old in-process index read them."""
    from memories.lexical import turn_weights

    Episode = apps.get_model("memories", "Episode")
    turns = Episode.objects.filter(kind="turn", lexical__isnull=True)
    for conversation_id in turns.values_list("conversation_id", flat=True).distinct().iterator():
        previous_text = None
        changed = []
        rows = Episode.objects.filter(kind="turn", conversation_id=conversation_id)
        for episode in rows.order_by("started_at", "id").only("id", "user_id", "text", "lexical"):
            if episode.lexical is None:
                episode.lexical = turn_weights(episode.text, previous_text)
                changed.append(episode)
            previous_text = episode.text.split(": ", 1)[-1]
        Episode.objects.bulk_update(changed, ["lexical"], batch_size=500)


def check_existing_episodes(apps, schema_editor):
    """What every episode written before holds (an order to the assistant, special categories): found
    once here, as every save finds it now, instead of at every context built."""
    from memories.models import episode_checks

    Episode = apps.get_model("memories", "Episode")
    checked = []
    for episode in Episode.objects.only("id", "user_id", "text").iterator(chunk_size=500):
        episode.flag_reasons, episode.sensitive_categories = episode_checks(episode.text)
        if episode.flag_reasons or episode.sensitive_categories:
            checked.append(episode)
    Episode.objects.bulk_update(checked, ["flag_reasons", "sensitive_categories"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0015_memory_ends_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="episode",
            name="lexical",
            field=pgvector.django.sparsevec.SparseVectorField(
                blank=True, dimensions=1000000000, null=True
            ),
        ),
        migrations.AddField(
            model_name="episode",
            name="speaker",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="episode",
            name="flag_reasons",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="episode",
            name="sensitive_categories",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=20),
                blank=True,
                default=list,
                editable=False,
                size=None,
            ),
        ),
        migrations.CreateModel(
            name="TurnTerm",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "user",
                        "term",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("term", models.IntegerField()),
                ("turns", models.IntegerField()),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.RunSQL(TERMS_FUNCTION + TRIGGER_FUNCTION, DROP),
        migrations.RunSQL(SPEAKERS, migrations.RunSQL.noop),
        migrations.RunPython(weigh_existing_turns, migrations.RunPython.noop),
        migrations.RunPython(check_existing_episodes, migrations.RunPython.noop),
        migrations.RunSQL(RECOUNT, migrations.RunSQL.noop),
    ]
