"""The numbers docs/scaling.md sizes a deployment from, measured on this machine.

    MEMORYWEB_DATA_DIR=$PWD/.data/scale .venv/bin/python bench/scale_sizing.py \
        --input ../shared/data/locomo/locomo_dev.json [--conversations 5] [--worker-turns 200] \
        [--broker redis://127.0.0.1:6379/12] [--json /tmp/scale.json] [--only worker …]

It works in a database of its own, made and dropped like a test database (the server the settings
give: by default the embedded PostgreSQL; the role must be allowed to create databases), so that
every byte it counts is its own. It then

1. replays the API, the pages and every periodic job for one user with every SQL statement
   recorded, and lists the statements on user data that name no user (what sharding by user would
   send to every shard), by where in the code they come from;
2. ingests the first `--conversations` LoCoMo conversations, each as a user, through the product's
   pipeline (memories/evaluation/ingest.py), and reads the growth of every user-data table and its
   indexes (`pg_total_relation_size`, `pg_indexes_size`) as written and after `VACUUM FULL`: bytes
   per row, per turn and per user;
3. asks each conversation's questions of `build_context` with the chat's budget: milliseconds and
   CPU per context, the query embedding included (its cache cleared), and the first call of a
   process (it builds the user's BM25 index) with the memory that index holds;
4. times the local embedding of one turn, counts its tokens, and reads the process's memory;
5. starts a real Celery worker (as `serve` does, `--concurrency 1`) on the broker the settings give
   or `--broker`, queues `--worker-turns` unprocessed turns (a new user saying the first
   conversation's turns again) and times them through it: turns per second of one worker, and CPU
   per turn in the worker and in the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

USER_APPS = ("vault", "accounts", "chat", "memories")
GLOBAL_TABLES = {"accounts_registeredapp"}  # the operator's apps: not a user's data
WORKER_READY_SECONDS = 120
SECTIONS = ["queries", "storage", "context", "embedding", "worker"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, required=True, help="LoCoMo-format JSON")
    parser.add_argument("--conversations", type=int, default=5)
    parser.add_argument("--worker-turns", type=int, default=200)
    parser.add_argument("--broker", help="the worker's broker (default: the settings')")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="some of the sections"
    )
    args = parser.parse_args()
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker

    from memoryweb import bootstrap

    bootstrap.prepare()
    import django

    django.setup()
    from django.db import connection

    from memories.evaluation.locomo import load

    samples = load(args.input)
    measured = samples[: args.conversations]
    report = {"load_average_at_start": os.getloadavg()}
    original_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        # first: its periodic jobs would act on the users ingested below (retention ends old chats)
        if "queries" in args.only:
            report["queries_without_user"] = audit()
        if {"storage", "context"} & set(args.only):
            report["storage"], users = storage(measured)
        if "context" in args.only:
            report["context"] = context_times(users)
        if "embedding" in args.only:
            report["embedding"] = embedding_costs(measured[0])
        if "worker" in args.only:  # a new user saying the first conversation's turns again
            report["worker"] = worker_rate(samples[0], args.worker_turns)
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)
        bootstrap.finish()
    report["load_average_at_end"] = os.getloadavg()
    print(
        "\nload average (1, 5, 15 min) at the start "
        + " ".join(f"{x:.1f}" for x in report["load_average_at_start"])
        + ", at the end "
        + " ".join(f"{x:.1f}" for x in report["load_average_at_end"])
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


# --- 1. queries that name no user -----------------------------------------------------------------

AUDIT_CHAT = ("I live in Porto.", "My sister is called Ana.", "I have a dog called Rex.")


def audit() -> dict:
    """Every statement of the product's paths for one user; those on user data that name no user,
    grouped by tables, statement and what they select by, with the code that ran them."""
    from django.db import connection

    from memoryweb.celery import app

    app.conf.task_always_eager = True
    tables = set(user_tables())
    found: dict[tuple[str, str, str], Counter] = {}
    on_user_data = Counter()

    def record(execute, sql, params, many, context):
        touched = sorted({t for t in re.findall(r'"(\w+)"', sql) if t in tables})
        if touched:
            on_user_data[_names_a_user(sql)] += 1
        if touched and not _names_a_user(sql):
            group = (", ".join(touched), sql.split()[0], _selected_by(sql))
            found.setdefault(group, Counter())[_call_site()] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        _replay_product()
    rows = [
        {"tables": touched, "statement": kind, "by": by, "where": dict(sites)}
        for (touched, kind, by), sites in sorted(found.items())
    ]
    total = sum(on_user_data.values())
    print(
        f"\n1. statements on user data: {total}, of which {on_user_data[False]} name no user; "
        "those, by tables, statement and what they select by, and where they come from:"
    )
    for row in rows:
        print(f"{row['statement']:6} {row['tables']}  [{row['by']}]")
        for site, count in sorted(row["where"].items()):
            print(f"{count:8d}  {site}")
    return {"statements_on_user_data": total, "naming_no_user": on_user_data[False], "groups": rows}


def _names_a_user(sql: str) -> bool:
    """The statement is limited to one user: a `user_id` (or the user's own row) in its WHERE, or
    in the columns it inserts."""
    if sql.startswith("INSERT"):
        columns = sql.split(" VALUES ", 1)[0]
        return '"user_id"' in columns or columns.startswith('INSERT INTO "accounts_user"')
    return bool(re.search(r'"user_id"|"accounts_user"\."id" =', _where(sql)))


def _where(sql: str) -> str:
    return sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""


def _selected_by(sql: str) -> str:
    if sql.startswith("INSERT"):
        return "a row without user_id"
    where = _where(sql)
    if not where:
        return "no WHERE"
    if re.search(r'"(\w*_)?id" (=|IN)', where):
        return "row ids"
    return "other columns"


def _call_site() -> str:
    """The two innermost frames of the project's own code (outside the vault field's plumbing)."""
    here = Path(__file__).resolve()
    sites = []
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        plumbing = path.name == "fields.py" and path.parent.name == "vault"
        if ROOT in path.parents and ".venv" not in path.parts and not plumbing and path != here:
            sites.append(f"{path.relative_to(ROOT)}:{frame.lineno} {frame.name}")
            if len(sites) == 2:
                break
    return " \u2190 ".join(sites) or "?"


def _replay_product() -> None:
    """The API with a personal key, the pages with a session, and each periodic job, for a new user
    (erased at the end through forget everything)."""
    from django.test import Client

    from accounts.models import ConsentRecord, User
    from accounts.scopes import ALL_SCOPES
    from accounts.services import api_key_create, consent_set, memory_settings_update

    user = User.objects.create_user("scale-audit", password="scale-audit-pass-123")
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="bench")
    memory_settings_update(user=user, use_past_chats=True)
    _, key = api_key_create(user=user, scopes=ALL_SCOPES)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    post = lambda path, body: api.post(  # noqa: E731
        f"/api/v1/{path}", json.dumps(body), content_type="application/json"
    )
    conversation = None
    for text in AUDIT_CHAT:
        conversation = post("chat", {"message": text, "conversation": conversation}).json()[
            "conversation"
        ]
    memory = post("memories", {"kind": "fact", "text": "User keeps bees"}).json()["memory"]["id"]
    for path in (
        "conversations",
        f"conversations/{conversation}",
        f"conversations/{conversation}/messages",
        "memories",
        f"memories/{memory}",
        f"memories/{memory}/history",
        "memories/search?q=sister",
        "context/profile",
        "me/settings",
        "me/consents",
        "me/access-log",
        "me/keys",
    ):
        api.get(f"/api/v1/{path}")
    post("context", {"query": "Where does my sister live?"})
    api.patch(f"/api/v1/memories/{memory}", '{"use_in_context": false}', "application/json")
    post(f"conversations/{conversation}/end", {})
    export = post("me/exports", {}).json()["id"]
    api.get(f"/api/v1/me/exports/{export}/download")
    api.delete(f"/api/v1/memories/{memory}")
    second = post("chat", {"message": "I work as a nurse."}).json()["conversation"]
    api.delete(f"/api/v1/conversations/{second}")
    _pages(user)
    _periodic_jobs()
    post("me/forget", {"confirmation": "forget everything", "delete_account": True})


def _pages(user) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    for path in (
        "/chat/",
        "/memories/",
        "/accounts/privacy/settings/",
        "/accounts/privacy/access-log/",
    ):
        browser.get(path)


def _periodic_jobs() -> None:
    from accounts import tasks as account_tasks
    from chat import tasks as chat_tasks
    from memories import tasks as memory_tasks

    for job in (
        memory_tasks.sweep,
        memory_tasks.apply_retention,
        memory_tasks.digest_all,
        chat_tasks.end_idle_conversations,
        chat_tasks.delete_expired_temporary_chats,
        chat_tasks.delete_old_conversations,
        account_tasks.cleanup_exports,
    ):
        job()


# --- 2. storage -----------------------------------------------------------------------------------

PAGE_RESOLVED_ROWS = 100  # fewer new rows than this fill a few 8 kB pages: counted by tuple size
TUPLE_OVERHEAD = 28  # bytes of a heap tuple's header and line pointer, beyond pg_column_size


def user_tables() -> list[str]:
    """The tables of user data (the m2m link tables included)."""
    from django.apps import apps

    tables = set()
    for label in USER_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if not model._meta.proxy and model._meta.managed:
                tables.add(model._meta.db_table)
    return sorted(tables - GLOBAL_TABLES)


def table_sizes(tables: list[str]) -> dict[str, dict[str, int]]:
    """Rows, bytes of heap and TOAST, bytes of indexes, and the rows' own bytes of each table."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT count(*), pg_total_relation_size(%s), pg_indexes_size(%s), "
                f'coalesce(sum(pg_column_size(t.*)), 0) FROM "{table}" t',
                [table, table],
            )
            rows, total, indexes, tuples = cursor.fetchone()
            sizes[table] = {
                "rows": rows,
                "table": total - indexes,
                "indexes": indexes,
                "tuples": tuples,
            }
    return sizes


def index_sizes(table: str) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 2 DESC",
            [table],
        )
        return dict(cursor.fetchall())


def growth(before: dict, after: dict) -> dict[str, dict[str, int]]:
    return {
        table: {key: after[table][key] - before[table][key] for key in after[table]}
        for table in after
        if after[table]["rows"] - before[table]["rows"]
    }


def per_row(grown: dict[str, int]) -> tuple[float, float, bool]:
    """Bytes per row (all), of which indexes, and whether it is from the files' growth (else from
    the tuples' size, indexes not counted: too few rows to fill pages)."""
    rows = grown["rows"]
    if rows >= PAGE_RESOLVED_ROWS:
        return (grown["table"] + grown["indexes"]) / rows, grown["indexes"] / rows, True
    return grown["tuples"] / rows + TUPLE_OVERHEAD, 0.0, False


def storage(samples) -> tuple[dict, list]:
    """Ingest `samples` (a user each) and read what their rows take, as written and compacted."""
    from django.db import connection

    from memories.evaluation.ingest import ingest_sample
    from memoryweb.ai.embeddings import warm_up

    warm_up()
    tables = user_tables()
    before = table_sizes(tables)
    users, started = [], time.perf_counter()
    for sample in samples:
        users.append(ingest_sample(sample))
        print(f"ingested {sample.sample_id}: {users[-1].turns} turns", file=sys.stderr)
    ingest_seconds = time.perf_counter() - started
    written = growth(before, table_sizes(tables))
    with connection.cursor() as cursor:
        for table in written:
            cursor.execute(f'VACUUM FULL ANALYZE "{table}"')
    compact = growth(before, table_sizes(tables))
    turns = sum(u.turns for u in users)
    result = {"users": len(users), "turns": turns, "ingest_seconds": round(ingest_seconds, 1)}
    result["tables"] = {}
    for table in sorted(compact, key=lambda t: -per_row(compact[t])[0] * compact[t]["rows"]):
        row, index, measured = per_row(compact[table])
        result["tables"][table] = {
            "rows_per_user": round(compact[table]["rows"] / len(users), 1),
            "bytes_per_row": round(row),
            "index_bytes_per_row": round(index),
            "bytes_per_row_as_written": round(per_row(written[table])[0]),
            "from_file_growth": measured,
        }
    per_user = sum(t["bytes_per_row"] * t["rows_per_user"] for t in result["tables"].values())
    result["bytes_per_user"] = round(per_user)
    result["bytes_per_turn"] = round(per_user * len(users) / turns)
    result["indexes"] = {t: index_sizes(t) for t in ("memories_episode", "memories_memory")}
    print_storage(result)
    return result, users


def print_storage(result: dict) -> None:
    print(
        f"\n2. storage: {result['users']} LoCoMo user(s), {result['turns']} turns "
        f"(ingested in process in {result['ingest_seconds']} s), after VACUUM FULL"
    )
    print(f"{'table':34} {'rows/user':>9} {'B/row':>7} {'idx B/row':>9} {'as written':>10}")
    for table, t in result["tables"].items():
        mark = "" if t["from_file_growth"] else "  (tuple bytes: too few rows for pages)"
        print(
            f"{table:34} {t['rows_per_user']:9.1f} {t['bytes_per_row']:7d} "
            f"{t['index_bytes_per_row']:9d} {t['bytes_per_row_as_written']:10d}{mark}"
        )
    print(
        f"per user {result['bytes_per_user'] / 1e6:.2f} MB, per turn of history "
        f"{result['bytes_per_turn']} bytes"
    )
    for table, indexes in result["indexes"].items():
        sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in indexes.items())
        print(f"indexes of {table} (all users): {sizes}")


# --- 3. context -----------------------------------------------------------------------------------


def context_times(users) -> dict:
    """Each scored question asked of `build_context` with the chat's budget, as the chat turn and the
    context API do (asked today); and what a user's BM25 index costs a process that has none."""
    from django.db import connection

    from memories import lexical
    from memories.evaluation.run import scored_questions
    from memories.retrieval import build_context
    from memoryweb.ai import embeddings

    times, first, statements, index_bytes = [], [], [], []
    cpu, server = time.process_time(), _server_cpu_seconds()
    for ingested in users:
        index_bytes.append(_index_bytes(ingested.user))
        lexical.clear()
        for n, question in enumerate(scored_questions(ingested.sample)):
            embeddings._embed_query_cached.cache_clear()
            with _counting(connection) as counted:
                started = time.perf_counter()
                build_context(ingested.user, question.text)
                elapsed = (time.perf_counter() - started) * 1000
            (first if n == 0 else times).append(elapsed)
            statements.append(counted[0])
    asked = len(times) + len(first)
    cpu_ms = (time.process_time() - cpu) * 1000 / asked
    server_ms = _per(_server_cpu_seconds(), server, asked, 1000)
    embed_ms = _median_ms(lambda: embeddings.embed_texts(["What did Caroline research?"]), 30)
    result = {
        "questions": asked,
        "app_cpu_ms_mean": round(cpu_ms, 1),
        "database_cpu_ms_mean": server_ms,
        "p50_ms": round(_percentile(times, 50), 1),
        "p95_ms": round(_percentile(times, 95), 1),
        "first_call_of_a_process_ms": round(statistics.median(first), 1),
        "query_embedding_ms": round(embed_ms, 1),
        "sql_statements": statistics.median(statements),
        "bm25_index_bytes_per_user": round(statistics.median(index_bytes)),
    }
    print(
        f"\n3. context build (chat budget {_budget()} tokens): p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms over {result['questions']} questions, "
        f"{result['sql_statements']:.0f} SQL statements each; CPU per context: "
        f"{result['app_cpu_ms_mean']} ms in this process, {result['database_cpu_ms_mean']} ms in "
        f"PostgreSQL; the query embedding {result['query_embedding_ms']} ms. A process's first "
        f"call for a user (it builds the BM25 index): {result['first_call_of_a_process_ms']} ms; the index holds "
        f"{result['bm25_index_bytes_per_user'] / 1e6:.1f} MB of the process's memory"
    )
    return result


def _server_cpu_seconds() -> float | None:
    """CPU seconds of the embedded PostgreSQL's processes so far (None on another server)."""
    import psutil
    from django.conf import settings

    from memoryweb import database

    info = database._postmaster(settings.DATA_DIR) if settings.EMBEDDED_DATABASE else None
    if info is None:
        return None
    server = psutil.Process(info.pid)
    total = 0.0
    for process in (server, *server.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _per(after: float | None, before: float | None, count: int, scale: float = 1.0):
    return None if after is None or before is None else round((after - before) * scale / count, 2)


def _budget() -> int:
    from django.conf import settings

    return settings.CONTEXT_TOKEN_BUDGET


def _index_bytes(user) -> int:
    """Python memory held by the user's BM25 index once built."""
    import tracemalloc

    from memories import lexical

    lexical.clear()
    tracemalloc.start()
    lexical.search_turns(user, "warm up", 1)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held


class _counting:
    """Counts the SQL statements run inside the block."""

    def __init__(self, connection):
        self.connection, self.counted = connection, [0]

    def __enter__(self):
        def count(execute, sql, params, many, context):
            self.counted[0] += 1
            return execute(sql, params, many, context)

        self.wrapper = self.connection.execute_wrapper(count)
        self.wrapper.__enter__()
        return self.counted

    def __exit__(self, *exc):
        self.wrapper.__exit__(*exc)


def _median_ms(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- 4. embedding ---------------------------------------------------------------------------------


def embedding_costs(sample) -> dict:
    """CPU time of one turn's embedding as the worker does it (one call per message,
    `turn_embedding_text`), the tokens that is (the local model's tokenizer; an API model's count
    is close), and the memory of a process with the model loaded (a gunicorn or Celery worker)."""
    import psutil

    from chat.models import Message
    from memories.episodes import turn_embedding_text
    from memoryweb.ai.embeddings import embed_texts, local_model

    said = [Message(role="user", speaker=t.speaker, content=t.content) for t in sample.turns[:200]]
    texts = [turn_embedding_text(m) for m in said]
    turn_ms = statistics.median(
        [_median_ms(lambda text=text: embed_texts([text]), 1) for text in texts]
    )
    tokens = local_model().token_counts(texts)
    result = {
        "turn_ms": round(turn_ms, 1),
        "tokens_per_turn_mean": round(statistics.mean(tokens), 1),
        "process_rss_mb": round(psutil.Process().memory_info().rss / 1e6),
    }
    print(
        f"\n4. embedding: {result['turn_ms']} ms of one CPU thread per turn (local MiniLM, the "
        f"turn with the message it answers), {result['tokens_per_turn_mean']} tokens; a process "
        f"with the model loaded holds {result['process_rss_mb']} MB"
    )
    return result


# --- 5. a worker ----------------------------------------------------------------------------------


def worker_rate(sample, count: int) -> dict:
    """Turns per second of one real worker process, as `serve` runs it, from its queue."""
    from django.conf import settings

    from memoryweb.celery import app, worker_command

    app.conf.task_always_eager = False
    message_ids = _unprocessed_turns(sample, count + 1)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    worker = subprocess.Popen(
        worker_command("--concurrency", "1"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_processed(app, worker, message_ids[:1], WORKER_READY_SECONDS)  # its model loaded
        cpu, server = _cpu_seconds(worker.pid), _server_cpu_seconds()
        started = time.perf_counter()
        _wait_processed(app, worker, message_ids[1:], 30 + count)
        seconds = time.perf_counter() - started
        worker_cpu = _per(_cpu_seconds(worker.pid), cpu, count, 1000)
        server_cpu = _per(_server_cpu_seconds(), server, count, 1000)
    finally:
        worker.terminate()
        worker.wait(30)
    result = {
        "turns": count,
        "seconds": round(seconds, 1),
        "turns_per_s": round(count / seconds, 1),
        "worker_cpu_ms_per_turn": worker_cpu,
        "database_cpu_ms_per_turn": server_cpu,
    }
    print(
        f"\n5. one worker (--concurrency 1, broker {settings.CELERY_BROKER_URL.split('://')[0]}): "
        f"{count} turns in {result['seconds']} s = {result['turns_per_s']} turns/s; CPU per turn "
        f"{worker_cpu} ms in the worker, {server_cpu} ms in PostgreSQL"
    )
    return result


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _unprocessed_turns(sample, count: int):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ConsentRecord, User
    from accounts.services import consent_set, memory_settings_update
    from chat.models import Conversation, Message

    user = User.objects.create_user(f"scale-worker-{os.getpid()}", password=None)
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="bench")
    memory_settings_update(user=user, use_past_chats=True)
    start = timezone.now() - timedelta(hours=1)
    conversation = Conversation.objects.create(user=user, created_at=start, last_activity_at=start)
    ids = [
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            speaker=turn.speaker,
            content=turn.content,
            created_at=start + timedelta(seconds=n),
        ).pk
        for n, turn in enumerate(sample.turns[:count])
    ]
    return ids


def _wait_processed(app, worker, message_ids: list[int], timeout: float) -> None:
    from chat.models import Message
    from memories.tasks import process_message

    for message_id in message_ids:
        process_message.delay(message_id)
    deadline = time.monotonic() + timeout
    pending = Message.objects.filter(pk__in=message_ids, processed_at__isnull=True)
    while pending.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not process {len(message_ids)} turns in {timeout} s")
        time.sleep(0.05)


def _database_url() -> str:
    """A libpq URL of the database this process uses (the one made for this run)."""
    from django.db import connection

    db = connection.settings_dict
    auth = f"{quote(db['USER'] or '', safe='')}:{quote(db['PASSWORD'] or '', safe='')}@"
    port = f":{db['PORT']}" if db["PORT"] else ""
    query = {"host": db["HOST"]} if db["HOST"].startswith("/") else {}
    host = "" if query else db["HOST"]
    suffix = f"?{urlencode(query)}" if query else ""
    return f"postgresql://{auth}{host}{port}/{quote(db['NAME'], safe='')}{suffix}"


if __name__ == "__main__":
    main()
