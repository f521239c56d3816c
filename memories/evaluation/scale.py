"""Many users with LoCoMo-sized histories, and what the context costs among them (issue 12).

The LoCoMo conversations are ingested once through the product's pipeline (`ingest.py`) as template
users; each seeded user is then a copy of one of them, made in bulk: every row of the cloned models
copied field by field (the models' concrete fields, read off `_meta`, so new columns come along),
under new ids drawn from the tables' sequences, foreign keys and many-to-many links pointed at the
copies, the encrypted text encrypted again by the field's `pre_save` under the new user's key and
row. Vectors and search vectors are copied as they are: same text, same vectors.

Then: `build_context` against the query embedding alone, in process; `POST /api/v1/context` through
gunicorn as `manage.py serve` starts it, with 1 and 8 clients (`bench/context_load.py`); the plans
of the context's vector and lexical queries; and whether a vector search came back short.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.db.models import Value
from django.db.models.functions import Cast
from pgvector.django import BitField, HalfVectorField, SparseVectorField, VectorField

from accounts.models import ApiKey, ConsentRecord, MemorySettings
from accounts.scopes import Scope
from accounts.services import api_key_create
from chat.models import Conversation, Message
from memories.episodes import summary_key, turn_key
from memories.evaluation.ingest import IngestedSample, ingest_sample, kept_sample
from memories.evaluation.locomo import Sample
from memories.evaluation.run import scored_questions
from memories.evaluation.scoring import percentile
from memories.models import Episode, Memory, MemoryRevision
from memories.retrieval import build_context
from memoryweb.ai import embeddings
from memoryweb.management.commands import serve
from vault import keys

Log = Callable[[str], None]

SEEDED_PREFIX = "scale-"
SEEDED_NAME = re.compile(
    rf"^{SEEDED_PREFIX}[0-9a-f]+-(?P<sample>.+)-\d{{5}}$"
)  # run, sample, index
# What a seeded user holds, copied from its template. Not the access log, API keys or data keys
# (each user gets its own), nor anything the database derives by itself (trigger-kept tables).
CLONED_MODELS: tuple[type[models.Model], ...] = (
    MemorySettings,
    ConsentRecord,
    Conversation,
    Message,
    Memory,
    MemoryRevision,
    Episode,
)
USERS_PER_BATCH = 25  # users created (and committed) together
SEED_THREADS = 2
ROWS_PER_INSERT = 500
VECTOR_FIELDS = (VectorField, HalfVectorField, SparseVectorField, BitField)
LOAD_SCRIPT = Path(settings.BASE_DIR) / "bench" / "context_load.py"
READY_TIMEOUT = 120


@dataclass
class Options:
    users: int
    questions: int = 200  # in-process context builds (and as many embeddings)
    limit_checks: int = 30  # context builds whose vector searches are counted again exactly
    budget_tokens: int | None = None  # None: the product's own (CONTEXT_TOKEN_BUDGET)
    clients: Sequence[int] = (1, 8)
    seconds: float = 15.0  # per count of clients and round
    rounds: int = 3
    warmup: float = 5.0
    http_users: int = 100  # users with an API key in the HTTP load
    url: str | None = None  # a server already running; None: start gunicorn as `serve` does
    keep: bool = False
    reuse: bool = False  # measure the users a --keep run left (seeding only those missing); kept
    seed: int = 12


# --- templates and clones -------------------------------------------------------------------------


@dataclass
class Template:
    """A template user's rows, read (and decrypted) once, in CLONED_MODELS order."""

    ingested: IngestedSample
    rows: dict[type[models.Model], list[models.Model]]
    links: dict[type[models.Model], list[tuple[int, int]]]  # through model → (from id, to id)
    # model → vector column → each row's value as the database reads it (`_vectors_prepared`)
    vectors: dict[type[models.Model], dict[str, list]] = field(default_factory=dict)

    @property
    def user(self):
        return self.ingested.user

    @property
    def row_count(self) -> int:
        return sum(map(len, self.rows.values())) + sum(map(len, self.links.values()))


@dataclass
class SeededUser:
    user: object
    template: Template
    dia_by_message: dict[int, str] = field(default_factory=dict)  # its message id → the turn

    @property
    def questions(self) -> list[str]:
        return [q.text for q in scored_questions(self.template.ingested.sample) if q.text]


def owner_path(model: type[models.Model]) -> str:
    """The lookup from `model` to the user who owns its rows, through the cloned models."""
    user_model = get_user_model()
    for f in model._meta.concrete_fields:
        if f.is_relation and f.related_model is user_model:
            return f.name
    for f in model._meta.concrete_fields:
        if f.is_relation and f.related_model in CLONED_MODELS and f.related_model is not model:
            return f"{f.name}__{owner_path(f.related_model)}"
    raise ValueError(f"{model._meta.label} is not owned by a user")


def links_of(model: type[models.Model]) -> list[models.ManyToManyField]:
    """The model's many-to-many fields between cloned models, through tables of their own."""
    return [
        m2m
        for m2m in model._meta.local_many_to_many
        if m2m.remote_field.through._meta.auto_created and m2m.related_model in CLONED_MODELS
    ]


def load_template(ingested: IngestedSample) -> Template:
    """Every cloned row of the template user, decrypted, and the links between them."""
    rows, links = {}, {}
    for model in CLONED_MODELS:
        owned = model._base_manager.filter(**{owner_path(model): ingested.user})
        rows[model] = list(owned.order_by("pk"))
        for m2m in links_of(model):
            through = m2m.remote_field.through
            source, target = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
            ids = [row.pk for row in rows[model]]
            links[through] = list(
                through.objects.filter(**{f"{source}__in": ids})
                .order_by("pk")
                .values_list(f"{source}_id", f"{target}_id")
            )
    vectors = {model: _vectors_prepared(model, rows[model]) for model in CLONED_MODELS}
    return Template(ingested=ingested, rows=rows, links=links, vectors=vectors)


def _vectors_prepared(model, rows: list) -> dict[str, list]:
    """Each pgvector column's values in the text the database reads, made once for every copy:
    pgvector builds it in Python, 0.4 ms a 384-d vector, a fifth of the seeding time otherwise."""
    prepared = {}
    for f in model._meta.concrete_fields:
        if isinstance(f, VECTOR_FIELDS):
            column_type = f.clone()
            prepared[f.attname] = [
                None
                if (value := getattr(row, f.attname)) is None
                else Cast(Value(f.get_db_prep_save(value, connection)), column_type)
                for row in rows
            ]
    return prepared


def template_ingest(sample: Sample, log: Log) -> tuple[Template, float]:
    """The sample ingested through the pipeline as a new user, read back as a template; and the
    seconds the ingestion took."""
    started = time.perf_counter()
    ingested = ingest_sample(sample)
    elapsed = time.perf_counter() - started
    log(f"template {sample.sample_id}: {ingested.turns} turns ingested in {elapsed:.1f} s")
    return load_template(ingested), elapsed


def kept_users(samples: Sequence[Sample], count: int) -> tuple[list[Template], list[SeededUser]]:
    """What an earlier --keep run left: each sample's newest template user (as
    `evaluate_memory --reuse-users` finds it), and up to `count` users seeded from those samples,
    oldest first."""
    templates = []
    for sample in samples:
        ingested = kept_sample(sample)
        if ingested is None:
            raise ValueError(f"no kept template user of {sample.sample_id}: run with --keep first")
        templates.append(load_template(ingested))
    by_sample = {t.ingested.sample.sample_id: t for t in templates}
    seeded = []
    for user in get_user_model().objects.filter(username__startswith=SEEDED_PREFIX).order_by("pk"):
        name = SEEDED_NAME.match(user.username)
        if name and name["sample"] in by_sample and len(seeded) < count:
            seeded.append(SeededUser(user=user, template=by_sample[name["sample"]]))
    messages = Message.objects.filter(conversation__user__in=[s.user for s in seeded])
    dia_by_user: dict[int, dict[int, str]] = {s.user.pk: s.dia_by_message for s in seeded}
    for user_id, pk, dia in messages.values_list("conversation__user_id", "pk", "external_id"):
        dia_by_user[user_id][pk] = dia
    return templates, seeded


def seed_users(
    templates: Sequence[Template],
    count: int,
    log: Log = print,
    run: str | None = None,
    threads: int = SEED_THREADS,
) -> list[SeededUser]:
    """`count` new users, the i-th a copy of template i mod len(templates), committed in batches
    of USERS_PER_BATCH; `threads` batches at a time, each on a connection of its own (one thread
    builds its rows while the database writes another's)."""
    run = run or secrets.token_hex(3)
    batches = [range(s, min(count, s + USERS_PER_BATCH)) for s in range(0, count, USERS_PER_BATCH)]
    seeded: list[SeededUser] = []
    started = time.perf_counter()
    with keys.current_keys_remembered():
        if threads <= 1:
            made = (_batch_seed(templates, batch, run) for batch in batches)
            for batch_seeded in made:
                seeded += batch_seeded
                _progress(log, len(seeded), count, started)
        else:
            with ThreadPoolExecutor(threads) as pool:
                work = partial(_batch_seed, templates, run=run, own_connection=True)
                for batch_seeded in pool.map(work, batches):
                    seeded += batch_seeded
                    _progress(log, len(seeded), count, started)
    return seeded


def _batch_seed(
    templates: Sequence[Template], batch: range, run: str, own_connection: bool = False
) -> list[SeededUser]:
    try:
        with transaction.atomic():
            users = _users_create(templates, batch, run)
            return [
                clone_into(templates[index % len(templates)], user)
                for index, user in zip(batch, users, strict=True)
            ]
    finally:
        if own_connection:  # a pool thread's: not left open when the pool ends
            connection.close()


def _progress(log: Log, done: int, count: int, started: float) -> None:
    if done % (USERS_PER_BATCH * 20) == 0 or done == count:
        rate = done / (time.perf_counter() - started)
        log(f"seeded {done}/{count} users ({rate:.1f} users/s)")


def _users_create(templates: Sequence[Template], batch: range, run: str) -> list:
    user_model = get_user_model()
    users = []
    for index in batch:
        template = templates[index % len(templates)]
        user = user_model(
            username=f"{SEEDED_PREFIX}{run}-{template.ingested.sample.sample_id}-{index:05d}"[:150],
            time_zone=template.user.time_zone,
        )
        user.set_unusable_password()
        users.append(user)
    return user_model.objects.bulk_create(users)


def clone_into(
    template: Template, user, cloned: Sequence[type[models.Model]] = CLONED_MODELS
) -> SeededUser:
    """Copy the template's rows of the `cloned` models to `user`, beside any they have (chats can
    be given twice; settings, one per user, cannot): new ids, foreign keys and links to the copies,
    encrypted text under `user`'s key."""
    copies: dict[type[models.Model], dict[int, models.Model]] = {}
    for model in cloned:
        copies[model] = _copies(model, template, user, copies)
    for model in cloned:
        model._base_manager.bulk_create(copies[model].values(), batch_size=ROWS_PER_INSERT)
        for m2m in links_of(model):
            _links_copy(m2m, template.links[m2m.remote_field.through], copies)
    messages = copies[Message]
    dia_by_message = {
        messages[old].pk: dia for old, dia in template.ingested.dia_by_message.items()
    }
    return SeededUser(user=user, template=template, dia_by_message=dia_by_message)


def _copies(model, template: Template, user, copies: dict) -> dict[int, models.Model]:
    """New instances of the template's rows of `model`, by old id: every concrete field copied,
    the primary key new (unless it is the user), relations to cloned rows remapped. Foreign keys
    between rows of one model (a memory superseded by another) are set once all its copies exist."""
    meta, rows, vectors = model._meta, template.rows[model], template.vectors[model]
    new_ids = _ids_draw(model, len(rows)) if not meta.pk.is_relation else None
    made: dict[int, models.Model] = {}
    for position, row in enumerate(rows):
        copy = model()
        for f in meta.concrete_fields:
            if f.primary_key and not f.is_relation:
                setattr(copy, f.attname, new_ids[position])
            elif f.attname in vectors:
                setattr(copy, f.attname, vectors[f.attname][position])
            elif _copied_as_is(f, model):
                setattr(copy, f.attname, getattr(row, f.attname))
            else:
                setattr(copy, f.name, _related_copy(f, getattr(row, f.attname), user, copies))
        made[row.pk] = copy
    for f in meta.concrete_fields:
        if f.is_relation and f.related_model is model:
            for copy in made.values():
                target = getattr(copy, f.attname)
                setattr(copy, f.name, made[target] if target is not None else None)
    if model is Episode:
        for copy in made.values():
            copy.key = _episode_key(copy.key, copies)
    return made


def _copied_as_is(f, model) -> bool:
    """Plain values, links within the model (remapped afterwards) and rows no user owns (a
    registered app): the same value."""
    if not f.is_relation or f.related_model is model:
        return True
    return f.related_model is not get_user_model() and not _user_owned(f.related_model)


def _related_copy(f, value, user, copies: dict):
    """What a copied foreign key points to: the new user, or the copy of a cloned row (as an
    instance, which the encrypted fields read their owner through)."""
    if value is None:
        return None
    if f.related_model is get_user_model():
        return user
    if f.related_model not in copies:
        raise ValueError(
            f"{f.model._meta.label}.{f.name} points to user data that is not cloned "
            f"({f.related_model._meta.label}): add it to CLONED_MODELS"
        )
    return copies[f.related_model][value]


def _user_owned(model) -> bool:
    try:
        owner_path(model)
    except ValueError:
        return False
    return True


def _episode_key(key: str, copies: dict) -> str:
    """An episode's key names the message or conversation it is of: the copy's names the copy."""
    _, _, ref = key.partition(":")
    if ref.isdigit() and key == turn_key(int(ref)):
        return turn_key(copies[Message][int(ref)].pk)
    if ref.isdigit() and key == summary_key(int(ref)):
        return summary_key(copies[Conversation][int(ref)].pk)
    return key


def _ids_draw(model, count: int) -> list[int]:
    """`count` ids from the table's own sequence, in one query (the field would draw them one
    query each)."""
    if not count:
        return []
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _links_copy(m2m, pairs: list[tuple[int, int]], copies: dict) -> None:
    through = m2m.remote_field.through
    source, target = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
    sources, targets = copies[m2m.model], copies[m2m.related_model]
    through.objects.bulk_create(
        [
            through(**{f"{source}_id": sources[a].pk, f"{target}_id": targets[b].pk})
            for a, b in pairs
        ],
        batch_size=ROWS_PER_INSERT * 4,
    )


# --- cleanup and size -----------------------------------------------------------------------------


def users_delete(user_ids: Iterable[int]) -> None:
    """Delete these users and every row that is theirs, one DELETE per table: Django's cascade
    reads every row first (millions for a thousand LoCoMo-sized users). The rows further from the
    user go first, while the rows their lookup joins through are still there; foreign keys are
    checked at commit."""
    ids = list(user_ids)
    if not ids:
        return
    with transaction.atomic():
        for model, path in owned_tables():
            model._base_manager.filter(**{f"{path}__in": ids})._raw_delete(connection.alias)
        get_user_model()._base_manager.filter(pk__in=ids)._raw_delete(connection.alias)


def owned_tables() -> list[tuple[type[models.Model], str]]:
    """Every table whose rows go with their user (a chain of CASCADE foreign keys to it), with the
    lookup to the user, the longest lookups first."""
    user_model = get_user_model()
    owned = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if model is user_model or meta.proxy or not meta.managed:
            continue
        if (path := _cascade_path(model, user_model, frozenset())) is not None:
            owned[model] = path
    return sorted(owned.items(), key=lambda item: -item[1].count("__"))


def _cascade_path(model, user_model, seen: frozenset) -> str | None:
    links = [
        f
        for f in model._meta.concrete_fields
        if (f.many_to_one or f.one_to_one) and f.remote_field.on_delete is models.CASCADE
    ]
    for f in links:
        if f.related_model is user_model:
            return f.name
    for f in links:
        if f.related_model is not model and f.related_model not in seen:
            inner = _cascade_path(f.related_model, user_model, seen | {model})
            if inner is not None:
                return f"{f.name}__{inner}"
    return None


def disk_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return cursor.fetchone()[0]


def cloned_tables() -> list[str]:
    tables = [m._meta.db_table for m in CLONED_MODELS]
    return tables + [
        m2m.remote_field.through._meta.db_table for m in CLONED_MODELS for m2m in links_of(m)
    ]


def table_sizes() -> dict[str, tuple[int, int]]:
    """Each cloned table's (bytes with its indexes and TOAST, rows)."""
    sizes = {}
    with connection.cursor() as cursor:
        for table in cloned_tables():
            cursor.execute(
                f'SELECT pg_total_relation_size(%s::regclass), count(*) FROM "{table}"', [table]
            )
            sizes[table] = cursor.fetchone()
    return sizes


def tables_analyze() -> None:
    """Planner statistics for the grown tables, as autovacuum would gather them in time."""
    with connection.cursor() as cursor:
        for table in cloned_tables():
            cursor.execute(f'ANALYZE "{table}"')


# --- (a) the context in process, against the query embedding alone --------------------------------


@dataclass(frozen=True)
class Asked:
    seeded: SeededUser
    question: str


def questions_mix(seeded: Sequence[SeededUser], count: int, rng: random.Random) -> list[Asked]:
    """`count` questions, each of a seeded user drawn at random, about that user's conversation."""
    users = [s for s in seeded if s.questions]
    if not users:
        return []
    mix = []
    for _ in range(count):
        user = rng.choice(users)
        mix.append(Asked(user, rng.choice(user.questions)))
    return mix


def latency_compare(mix: Sequence[Asked], budget_tokens: int | None, again: int = 0) -> dict:
    """`build_context` and the query embedding alone for each question, in turns (which one goes
    first alternates), the query cache cleared before each: p50/p95 of both and their ratios. The
    first `again` questions are also asked again at once: a build of a user just served (warm
    caches: PostgreSQL's buffers) against a first one, which must cost the same (no index to make)."""
    build_ms: list[float] = []
    embed_ms: list[float] = []
    again_ms: list[float] = []
    for i, asked in enumerate(mix):
        steps = [(build_ms, _build), (embed_ms, _embed)]
        steps = steps if i % 2 == 0 else steps[::-1]
        for times, step in steps + ([(again_ms, _build)] if i < again else []):
            embeddings._embed_query_cached.cache_clear()
            started = time.perf_counter()
            step(asked, budget_tokens)
            times.append((time.perf_counter() - started) * 1000)
    build, embed = _latency(build_ms), _latency(embed_ms)
    return {
        "questions": len(mix),
        "users": len({a.seeded.user.pk for a in mix}),
        "build_context_ms": build,
        "embed_ms": embed,
        "ratio": {q: _ratio(build[q], embed[q]) for q in ("p50", "p95")},
        "build_context_ms_asked_again": {"questions": len(again_ms), **_latency(again_ms)},
    }


def _build(asked: Asked, budget_tokens: int | None):
    return build_context(asked.seeded.user, asked.question, budget_tokens=budget_tokens)


def _embed(asked: Asked, budget_tokens: int | None):
    return embeddings.embed_texts([asked.question])


def _latency(values: Sequence[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}


def _ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


# --- (c) the plans, (d) short vector searches -----------------------------------------------------

# by embedding: an ORM query's, or the candidate lists' (`memories.candidates`); the turns' hybrid
# search (`lexical.SEARCH_SQL`) counts as lexical
VECTOR_SEARCH = re.compile(r'"embedding"\s*(<=>|<->|<#>|<\+>)|\bembedding <=> q\.vector')
LEXICAL_SEARCH = re.compile(r"@@|ts_rank|<#>|<=>|<->|<\+>")
FROM_TABLE = re.compile(r'\bFROM\s+"(\w+)"')
LIMIT = re.compile(r"\bLIMIT\s+(\d+)")  # the first list's, in a UNION ALL of lists
VECTOR_LITERAL = re.compile(r"'\[[-+0-9.e,]+\]'")


@dataclass
class Statement:
    """One SELECT the context ran, with its parameters as bound and the rows it returned."""

    sql: str
    params: tuple | dict  # a dict for named placeholders (`lexical.SEARCH_SQL`)
    rows: int

    @property
    def kind(self) -> str | None:
        """ "vector" for a search by embedding, "lexical" for one by words (full text, or a sparse
        vector of word weights)."""
        if VECTOR_SEARCH.search(self.sql):
            return "vector"
        if LEXICAL_SEARCH.search(self.sql):
            return "lexical"
        return None

    @property
    def limit(self) -> int | None:
        match = LIMIT.search(self.sql)
        return int(match.group(1)) if match else None

    @property
    def label(self) -> str:
        tables = ", ".join(sorted(set(FROM_TABLE.findall(self.sql)))) or "?"
        limit = f" LIMIT {self.limit}" if self.limit else ""
        return f"{self.kind} search on {tables}{limit}"


@contextmanager
def statements_captured() -> Iterator[list[Statement]]:
    """The SELECTs run on the connection meanwhile, as the database ran them."""
    captured: list[Statement] = []

    def capture(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        # a SELECT, the candidate lists' UNION ALL "(SELECT …) UNION ALL (…)", the turns' "WITH …"
        if not many and sql.lstrip(" \n(").upper().startswith(("SELECT", "WITH")):
            bound = params if isinstance(params, dict) else tuple(params or ())
            captured.append(Statement(sql, bound, context["cursor"].rowcount))
        return result

    with connection.execute_wrapper(capture):
        yield captured


def context_statements(asked: Asked, budget_tokens: int | None) -> list[Statement]:
    with statements_captured() as captured:
        _build(asked, budget_tokens)
    return captured


def explain(statement: Statement) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement with its own parameters, bound by the server;
    a vector's numbers left out."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}", statement.params)
        return [VECTOR_LITERAL.sub("'[vector]'", row[0]) for row in cursor.fetchall()]


def plans(asked: Asked, budget_tokens: int | None) -> dict:
    """The vector and lexical searches of one context (built once before, so that caches are as
    a user's second question finds them) with their plans."""
    _build(asked, budget_tokens)
    statements = context_statements(asked, budget_tokens)
    searches = [s for s in statements if s.kind]
    return {
        "user": asked.seeded.user.username,
        "question": asked.question,
        "statements": len(statements),
        "searches": [{"label": s.label, "rows": s.rows, "plan": explain(s)} for s in searches],
    }


def exact_rows(statement: Statement) -> int:
    """The rows the statement returns without index scans (the user's rows through a bitmap of
    the user index, then sorted): exact, where an HNSW scan is approximate and may stop short.
    Not prepared, so that no plan cached on the connection is used."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        raw = cursor.cursor  # psycopg's own: Django's cursor passes no `prepare`
        raw.execute(statement.sql, statement.params, prepare=False)
        return len(raw.fetchall())


def vector_limits(mix: Sequence[Asked], budget_tokens: int | None) -> dict:
    """For each vector search of these contexts that has a LIMIT: the rows it returned, against
    the rows an exact search returns. Short: fewer than the exact search, which had more."""
    by_label: dict[str, dict] = {}
    for asked in mix:
        for statement in context_statements(asked, budget_tokens):
            if statement.kind != "vector" or statement.limit is None:
                continue
            exact = exact_rows(statement)
            entry = by_label.setdefault(
                statement.label, {"searches": 0, "short": 0, "full": 0, "examples": []}
            )
            entry["searches"] += 1
            entry["full"] += exact >= statement.limit
            if statement.rows < exact:
                entry["short"] += 1
                if len(entry["examples"]) < 5:
                    entry["examples"].append(
                        {"user": asked.seeded.user.username, "rows": statement.rows, "exact": exact}
                    )
    return {"contexts": len(mix), "by_search": by_label}


# --- (b) through the real stack --------------------------------------------------------------------


def keys_file(seeded: Sequence[SeededUser], path: Path) -> int:
    """An API key (scope context:read) for each of these users, with the user's questions, in the
    load script's keys file. Returns the keys' ids."""
    entries, made = [], []
    for s in seeded:
        if s.questions:
            api_key, key = api_key_create(
                user=s.user, scopes=[Scope.CONTEXT_READ], name="bench_scale"
            )
            entries.append({"key": key, "queries": s.questions})
            made.append(api_key.pk)
    path.touch(mode=0o600)
    path.write_text(json.dumps(entries), encoding="utf-8")
    return made


def http_load(seeded: Sequence[SeededUser], options: Options, log: Log) -> dict:
    """The load script against the product's web server, with keys for a mix of users."""
    rng = random.Random(options.seed + 1)
    users = rng.sample(list(seeded), min(options.http_users, len(seeded)))
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as folder:
        keys_path, out = Path(folder) / "keys.json", Path(folder) / "load.json"
        made = keys_file(users, keys_path)
        try:
            with _server(options.url, Path(folder) / "web.log", log) as url:
                argv = [sys.executable, str(LOAD_SCRIPT), "--url", url]
                argv += ["--keys-file", str(keys_path), "--json", str(out)]
                argv += ["--clients", *map(str, options.clients), "--seconds", str(options.seconds)]
                argv += ["--rounds", str(options.rounds), "--warmup", str(options.warmup)]
                if options.budget_tokens:
                    argv += ["--budget-tokens", str(options.budget_tokens)]
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        finally:  # the keys were for this load only (kept users keep none)
            ApiKey.objects.filter(pk__in=made).delete()
        result = json.loads(out.read_text(encoding="utf-8"))
    return {"url": url, "keys": len(made), "web_workers": _web_workers(), **result}


@contextmanager
def _server(url: str | None, log_path: Path, log: Log) -> Iterator[str]:
    """`url`, or the product's gunicorn started as `manage.py serve` starts it (same command,
    workers, threads and configuration) on a free port, stopped afterwards."""
    if url:
        yield url.rstrip("/")
        return
    port = _free_port()
    argv = serve._web_command("127.0.0.1", port, _web_workers())
    # offline like the rest of the run: the query vectors must be of the model the rows were
    # embedded with
    env = os.environ | {"OPENAI_API_KEY": "", "EMBEDDING_BACKEND": "local"}
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/healthz", process, log_path)
        log(f"gunicorn ready at {base} ({_web_workers()} workers, pid {process.pid})")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=serve.STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        serve._kill_group(process)


def _web_workers() -> int:
    """`manage.py serve`'s default number of gunicorn workers."""
    return serve.Command().create_parser("manage.py", "serve").get_default("web_workers")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer at {url} within {READY_TIMEOUT} s")


# --- the run --------------------------------------------------------------------------------------


def run_scale(samples: Sequence[Sample], options: Options, log: Log = print) -> dict:
    """Seed, measure, clean up (unless `options.keep` or `options.reuse`); the report (see
    bench/README.md)."""
    embeddings.warm_up()
    rng = random.Random(options.seed)
    run = secrets.token_hex(3)
    report: dict = {"users": options.users, "templates": [], "template_ingest_seconds": 0.0}
    templates: list[Template] = []
    seeded: list[SeededUser] = []
    try:
        if options.reuse:
            templates, seeded = kept_users(samples, options.users)
            log(f"reusing {len(templates)} templates and {len(seeded)} seeded users")
        else:
            for sample in samples:
                template, seconds = template_ingest(sample, log)
                templates.append(template)
                report["template_ingest_seconds"] += round(seconds, 1)
        report["templates"] = [_template_summary(t) for t in templates]
        before = disk_bytes()
        started = time.perf_counter()
        new = seed_users(templates, options.users - len(seeded), log, run=run)
        report["seeding"] = _seeding_summary(new, time.perf_counter() - started)
        tables_analyze()
        report["disk"] = _disk_summary(before, disk_bytes(), new)
        seeded += new
        report["measured_users"] = len(seeded)
        _measure(seeded, options, rng, report, log)
    finally:
        if not (options.keep or options.reuse):
            started = time.perf_counter()
            users = get_user_model().objects.filter(username__startswith=f"{SEEDED_PREFIX}{run}-")
            users_delete([t.user.pk for t in templates] + list(users.values_list("pk", flat=True)))
            report["cleanup_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _measure(seeded: list[SeededUser], options: Options, rng, report: dict, log: Log) -> None:
    log("measuring build_context in process")
    for asked in questions_mix(seeded, 1, rng):  # the first query of a process prepares things
        _build(asked, options.budget_tokens)
    mix = questions_mix(seeded, options.questions, rng)
    report["in_process"] = latency_compare(mix, options.budget_tokens, again=len(mix) // 4)
    log("explaining the searches; counting short vector searches")
    report["plans"] = plans(questions_mix(seeded, 1, rng)[0], options.budget_tokens)
    checks = questions_mix(seeded, options.limit_checks, rng)
    report["vector_limits"] = vector_limits(checks, options.budget_tokens)
    log("load through the web server")
    report["http"] = http_load(seeded, options, log)


def _template_summary(template: Template) -> dict:
    return {
        "sample_id": template.ingested.sample.sample_id,
        "turns": template.ingested.turns,
        "rows": {m._meta.db_table: len(r) for m, r in template.rows.items()}
        | {t._meta.db_table: len(p) for t, p in template.links.items()},
    }


def _seeding_summary(seeded: Sequence[SeededUser], seconds: float) -> dict:
    """Of the users seeded in this run (with --reuse, those that were missing)."""
    rows = sum(s.template.row_count for s in seeded)
    return {
        "users": len(seeded),
        "rows": rows,
        "seconds": round(seconds, 1),
        "users_per_s": round(len(seeded) / seconds, 2) if seconds else None,
        "rows_per_s": round(rows / seconds) if seconds else None,
    }


def _disk_summary(before: int, after: int, seeded: Sequence[SeededUser]) -> dict:
    """The database's growth (less than the data where deleted rows had left room), and the
    seeded users' share of each cloned table by rows, per user."""
    sizes = table_sizes()
    seeded_rows: dict[str, int] = {}
    for s in seeded:
        for table, rows in _template_summary(s.template)["rows"].items():
            seeded_rows[table] = seeded_rows.get(table, 0) + rows
    share = sum(
        size * seeded_rows.get(table, 0) / rows for table, (size, rows) in sizes.items() if rows
    )
    return {
        "database_bytes": after,
        "database_growth_bytes": after - before,
        "per_user_bytes": round(share / len(seeded)) if seeded else None,
        "tables": {t: {"bytes": size, "rows": rows} for t, (size, rows) in sizes.items()},
    }


# --- the printed report ---------------------------------------------------------------------------


def format_report(report: dict) -> str:
    lines = [f"bench_scale: {report.get('measured_users', 0)} users measured"]
    for t in report["templates"]:
        lines.append(f"  template {t['sample_id']}: {t['turns']} turns, rows {t['rows']}")
    if report["template_ingest_seconds"]:
        lines.append(f"  templates ingested in {report['template_ingest_seconds']:.1f} s")
    if seeding := report.get("seeding"):
        lines.append(
            f"seeding: {seeding['users']} users, {seeding['rows']} rows in {seeding['seconds']} s "
            f"= {seeding['users_per_s']} users/s, {seeding['rows_per_s']} rows/s"
        )
    if disk := report.get("disk"):
        lines.append(
            f"disk: database {_mb(disk['database_bytes'])}, grown by "
            f"{_mb(disk['database_growth_bytes'])}; a seeded user takes "
            f"{_mb(disk['per_user_bytes'])} (its share of the tables, by rows)"
        )
        lines += [
            f"  {t:<32} {_mb(v['bytes']):>10} {v['rows']:>10} rows"
            for t, v in disk["tables"].items()
        ]
    if a := report.get("in_process"):
        lines += _in_process_lines(a)
    if http := report.get("http"):
        lines += _http_lines(http)
    if p := report.get("plans"):
        lines += _plan_lines(p)
    if limits := report.get("vector_limits"):
        lines += _limit_lines(limits)
    if "cleanup_seconds" in report:
        lines.append(f"cleanup: seeded and template users deleted in {report['cleanup_seconds']} s")
    return "\n".join(lines)


def _in_process_lines(a: dict) -> list[str]:
    build, embed, ratio = a["build_context_ms"], a["embed_ms"], a["ratio"]
    again = a["build_context_ms_asked_again"]
    return [
        "",
        f"(a) in process: {a['questions']} questions of {a['users']} users, interleaved",
        f"  {'':<24} {'p50 ms':>8} {'p95 ms':>8}",
        f"  {'build_context':<24} {_num(build['p50']):>8} {_num(build['p95']):>8}",
        f"  {'query embedding alone':<24} {_num(embed['p50']):>8} {_num(embed['p95']):>8}",
        f"  {'ratio build/embed':<24} {_num(ratio['p50']):>8} {_num(ratio['p95']):>8}",
        f"  {'build, asked again':<24} {_num(again['p50']):>8} {_num(again['p95']):>8}"
        f"  (the first {again['questions']} questions again at once: warm)",
    ]


def _http_lines(http: dict) -> list[str]:
    lines = [
        "",
        f"(b) POST {http['path']} at {http['url']}: {http['keys']} users' keys, "
        f"{http['web_workers']} gunicorn workers",
        f"  {'clients':>7} {'answers':>8} {'errors':>6} {'answers/s':>10} {'p50 ms':>8} {'p95 ms':>8}",
    ]
    for row in http["by_clients"].values():
        lines.append(
            f"  {row['clients']:>7} {row['answers']:>8} {sum(row['errors'].values()):>6} "
            f"{_num(row['per_s']):>10} {_num(row['p50_ms']):>8} {_num(row['p95_ms']):>8}"
        )
    ratio = http["ratio"]
    if "per_s" in ratio:
        lines.append(
            f"  ratio {ratio['of']}: answers/s ×{_num(ratio['per_s'])}, "
            f"p50 ×{_num(ratio['p50_ms'])}, p95 ×{_num(ratio['p95_ms'])}"
        )
    return lines


def _plan_lines(p: dict) -> list[str]:
    lines = [
        "",
        f"(c) the searches of one context ({p['statements']} SELECTs) of {p['user']}: "
        f"{p['question']!r}",
    ]
    for search in p["searches"]:
        lines.append(f"  -- {search['label']}: {search['rows']} rows")
        lines += [f"     {line}" for line in search["plan"]]
    return lines


def _limit_lines(limits: dict) -> list[str]:
    lines = ["", f"(d) vector searches of {limits['contexts']} contexts against exact ones:"]
    for label, entry in limits["by_search"].items():
        lines.append(
            f"  {label}: {entry['searches']} searches, {entry['full']} with enough rows for the "
            f"LIMIT, {entry['short']} returned fewer rows than the exact search"
        )
        lines += [f"     e.g. {e}" for e in entry["examples"]]
    if not limits["by_search"]:
        lines.append("  no vector search with a LIMIT ran")
    return lines


def _mb(value) -> str:
    return "–" if value is None else f"{value / 1e6:.1f} MB"


def _num(value) -> str:
    return "–" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
