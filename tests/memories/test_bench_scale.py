"""`manage.py bench_scale`: seeded users are complete copies of their template, readable under their
own key and no one else's, found by the context, and deleted without a trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AccessEvent, ApiKey, User
from accounts.selectors import memory_policy
from chat.models import Conversation, Message
from memories.episodes import summary_key, turn_key
from memories.evaluation import locomo, scale
from memories.evaluation.ingest import ingest_sample
from memories.models import Episode, Memory, MemoryRevision
from memories.retrieval import build_context
from vault.fields import EncryptedTextField
from vault.models import UserKey

SHARED_DEV_SET = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "locomo" / "locomo_dev.json"
)
SESSIONS = 2  # of the dev set's first conversation, when it is there


def _generated_conversation() -> dict:
    said = [
        ("Alice", "I adopted a golden retriever puppy named Biscuit."),
        ("Bob", "Lovely! I started pottery classes on Tuesdays."),
        ("Alice", "Biscuit loves the park by the river."),
        ("Bob", "I finished my first pottery bowl, blue and wobbly."),
        ("Alice", "I'm training for the Berlin marathon in September."),
        ("Bob", "My sister Anna moved to Lisbon last month."),
    ]
    turns = [
        {"speaker": who, "dia_id": f"D{1 + i // 3}:{1 + i % 3}", "text": text}
        for i, (who, text) in enumerate(said)
    ]
    return {
        "sample_id": "mini-1",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": turns[:3],
            "session_2_date_time": "7:55 pm on 9 June, 2023",
            "session_2": turns[3:],
        },
        "qa": [
            {"question": "What is the name of Alice's puppy?", "evidence": ["D1:1"], "category": 4},
            {
                "question": "Which marathon is Alice training for?",
                "evidence": ["D2:2"],
                "category": 4,
            },
            {"question": "Where did Anna move to?", "evidence": ["D2:3"], "category": 4},
        ],
    }


def _dev_set_start() -> dict:
    """The dev set's first conversation, its first sessions only, with the questions about them."""
    raw = json.loads(SHARED_DEV_SET.read_text(encoding="utf-8"))[0]
    kept = {f"session_{n}" for n in range(1, SESSIONS + 1)}
    conversation = {
        key: value
        for key, value in raw["conversation"].items()
        if not key.startswith("session_") or key.removesuffix("_date_time") in kept
    }
    prefixes = tuple(f"D{n}:" for n in range(1, SESSIONS + 1))
    qa = [
        q
        for q in raw["qa"]
        if q.get("evidence") and all(str(e).startswith(prefixes) for e in q["evidence"])
    ]
    return {"sample_id": raw["sample_id"], "conversation": conversation, "qa": qa}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """LoCoMo's start when ../shared holds the dev set, a generated conversation otherwise."""
    sample = _dev_set_start() if SHARED_DEV_SET.is_file() else _generated_conversation()
    path = tmp_path_factory.mktemp("bench_scale") / "small.json"
    path.write_text(json.dumps([sample]), encoding="utf-8")
    return path


@pytest.fixture
def template(db, dataset) -> scale.Template:
    return scale.load_template(ingest_sample(locomo.load(dataset)[0]))


def _owned(model, user):
    return model._base_manager.filter(**{scale.owner_path(model): user})


def _comparable(model, row) -> dict:
    """A row's values a copy keeps: all but its id, its links and the times its save sets."""
    values = {}
    for f in model._meta.concrete_fields:
        if f.primary_key or f.is_relation or getattr(f, "auto_now", False):
            continue
        if getattr(f, "auto_now_add", False) or f.name == "key":
            continue
        value = getattr(row, f.attname)
        values[f.name] = value.tolist() if hasattr(value, "tolist") else value
    return values


def _raw_tokens(table: str, column: str, ids: list[int]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE id = ANY(%s)', [ids])
        return [row[0] for row in cursor.fetchall() if row[0]]


def test_a_clone_has_every_row_and_value_of_its_template(template):
    seeded = scale.seed_users([template], 2, log=lambda line: None, threads=1)
    for s in seeded:
        for model in scale.CLONED_MODELS:
            originals = list(_owned(model, template.user).order_by("pk"))
            copies = list(_owned(model, s.user).order_by("pk"))
            assert len(copies) == len(originals) > 0, model
            assert [_comparable(model, c) for c in copies] == [
                _comparable(model, o) for o in originals
            ], model  # decrypted text, vectors, search vectors, every other column alike
            for m2m in scale.links_of(model):
                through, source = m2m.remote_field.through, m2m.m2m_field_name()
                links = through.objects.filter(**{f"{source}__in": _owned(model, s.user)})
                assert links.count() == len(template.links[through]) > 0, through


def test_a_clones_links_stay_within_its_own_rows(template):
    s = scale.seed_users([template], 1, log=lambda line: None, threads=1)[0]
    messages = set(_owned(Message, s.user).values_list("pk", flat=True))
    conversations = set(_owned(Conversation, s.user).values_list("pk", flat=True))
    memories = set(_owned(Memory, s.user).values_list("pk", flat=True))
    for episode in _owned(Episode, s.user).prefetch_related("messages"):
        assert {m.pk for m in episode.messages.all()} <= messages
        assert episode.conversation_id is None or episode.conversation_id in conversations
        assert episode.key in {
            *(turn_key(m) for m in messages),
            *(summary_key(c) for c in conversations),
        } or episode.key.startswith("digest:")
    for memory in _owned(Memory, s.user).prefetch_related("source_messages"):
        assert {m.pk for m in memory.source_messages.all()} <= messages
        assert memory.superseded_by_id is None or memory.superseded_by_id in memories
    for revision in _owned(MemoryRevision, s.user):
        assert revision.message_id is None or revision.message_id in messages
    assert set(s.dia_by_message) == messages
    externals = dict(_owned(Message, s.user).values_list("pk", "external_id"))
    assert all(externals[pk] == dia for pk, dia in s.dia_by_message.items())


def test_a_clones_text_is_encrypted_under_its_own_key(template):
    seeded = scale.seed_users([template], 2, log=lambda line: None, threads=1)
    users = [template.user] + [s.user for s in seeded]
    key_ids = [str(UserKey.objects.get(user=u).pk) for u in users]
    assert len(set(key_ids)) == 3
    checked: set[str] = set()
    for model in scale.CLONED_MODELS:
        encrypted = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        for f in encrypted:
            tokens = {}
            for user, key_id in zip(users, key_ids, strict=True):
                ids = list(_owned(model, user).values_list("pk", flat=True))
                tokens[user.pk] = _raw_tokens(model._meta.db_table, f.column, ids)
                assert all(t.startswith(f"enc2:{key_id}:") for t in tokens[user.pk]), (model, f)
            assert len({len(t) for t in tokens.values()}) == 1, (model, f)  # as many everywhere
            assert not set(tokens[seeded[0].user.pk]) & set(tokens[template.user.pk])
            if tokens[template.user.pk]:
                checked.add(f.column)
    assert {"title", "content", "text"} <= checked


def test_the_context_finds_a_clones_own_turns_and_nobody_elses(template):
    seeded = scale.seed_users([template], 2, log=lambda line: None, threads=1)
    questions = [q for q in template.ingested.sample.questions if q.evidence]
    for s in seeded:
        assert memory_policy(user=s.user).use_past_chats
        own = set(s.dia_by_message)
        found_evidence = 0
        for question in questions:
            context = build_context(s.user, question.text, budget_tokens=4000)
            sources = {m for item in context.items for m in item.sources}
            assert context.items and sources <= own
            found_evidence += bool({s.dia_by_message[m] for m in sources} & set(question.evidence))
        assert found_evidence > 0


def test_chats_cloned_again_into_one_user_make_a_longer_history_of_their_own(template):
    """As bench/heavy_user.py makes a user with years of history: the template whole once, then
    only its chats again; every turn readable under the user's key and in its own conversation."""
    user = User.objects.create_user("heavy", password=None)
    scale.clone_into(template, user)
    chats = (Conversation, Message, Episode)
    again = scale.clone_into(template, user, chats)

    turns = Episode.objects.filter(user=user, kind=Episode.Kind.TURN)
    template_turns = Episode.objects.filter(user=template.user, kind=Episode.Kind.TURN)
    assert turns.count() == 2 * template_turns.count() > 0
    assert _owned(Memory, user).count() == _owned(Memory, template.user).count()
    assert sorted(t.text for t in turns) == sorted(2 * [t.text for t in template_turns])
    for turn in turns.prefetch_related("messages"):
        assert {m.conversation_id for m in turn.messages.all()} == {turn.conversation_id}
    assert set(again.dia_by_message.values()) == set(template.ingested.dia_by_message.values())


def test_cleanup_deletes_every_row_of_the_users_and_no_one_elses(template, alice):
    before = {model: model._base_manager.count() for model, _ in scale.owned_tables()}
    seeded = scale.seed_users([template], 2, log=lambda line: None, threads=1)
    ApiKey.objects.create(user=seeded[0].user, name="k", prefix="x", hashed_key="h" * 64)
    AccessEvent.objects.create(user=seeded[0].user, actor="user", purpose="test")
    alices = {model: _owned_count(model, path, alice) for model, path in scale.owned_tables()}
    scale.users_delete([s.user.pk for s in seeded])
    after = {model: model._base_manager.count() for model, _ in scale.owned_tables()}
    assert after == before
    assert not User.objects.filter(pk__in=[s.user.pk for s in seeded]).exists()
    assert alices == {
        model: _owned_count(model, path, alice) for model, path in scale.owned_tables()
    }
    assert _owned(Message, template.user).exists()  # the template is a user like alice


def _owned_count(model, path: str, user) -> int:
    return model._base_manager.filter(**{path: user}).count()


def test_every_table_of_user_data_is_deleted_with_its_user():
    owned = {model for model, _ in scale.owned_tables()}
    assert {
        *scale.CLONED_MODELS,
        UserKey,
        ApiKey,
        AccessEvent,
        Memory.source_messages.through,
        Episode.messages.through,
    } <= owned


@pytest.mark.django_db(transaction=True)
def test_the_command_measures_a_small_run_and_leaves_nothing(dataset, live_server, tmp_path):
    counts = {model: model._base_manager.count() for model, _ in scale.owned_tables()}
    users = User.objects.count()
    out = tmp_path / "report.json"
    call_command(
        "bench_scale",
        "--users=2",
        f"--input={dataset}",
        f"--url={live_server.url}",
        "--questions=4",
        "--limit-checks=2",
        "--seconds=1",
        "--rounds=1",
        "--warmup=0",
        f"--json={out}",
    )
    report = json.loads(out.read_text())
    assert report["seeding"]["users"] == 2 and report["seeding"]["users_per_s"] > 0
    assert report["disk"]["per_user_bytes"] > 0
    in_process = report["in_process"]
    assert in_process["questions"] == 4
    assert in_process["build_context_ms"]["p50"] > 0 and in_process["embed_ms"]["p50"] > 0
    assert in_process["ratio"]["p50"] > 0
    assert in_process["build_context_ms_asked_again"]["questions"] == 1
    for clients in ("1", "8"):
        row = report["http"]["by_clients"][clients]
        assert row["answers"] > 0 and row["errors"] == {}
    assert report["http"]["ratio"]["of"] == "8/1"
    kinds = {search["label"].split()[0] for search in report["plans"]["searches"]}
    assert kinds == {"vector", "lexical"}
    assert all(search["plan"] for search in report["plans"]["searches"])
    limits = report["vector_limits"]["by_search"]
    assert limits and all(entry["searches"] == 2 for entry in limits.values())
    assert User.objects.count() == users
    assert {model: model._base_manager.count() for model, _ in scale.owned_tables()} == counts


def test_a_missing_data_set_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No data set at"):
        call_command("bench_scale", "--users=1", f"--input={tmp_path / 'absent.json'}")


def test_a_reuse_finds_the_kept_template_and_seeded_users(template, dataset):
    seeded = scale.seed_users([template], 2, log=lambda line: None, threads=1)
    templates, kept = scale.kept_users(locomo.load(dataset), 5)
    assert [t.user.pk for t in templates] == [template.user.pk]
    assert [k.user.pk for k in kept] == [s.user.pk for s in seeded]
    assert [k.dia_by_message for k in kept] == [s.dia_by_message for s in seeded]
    assert [k.questions for k in kept] == [s.questions for s in seeded]
