"""Ingestion speed of real Celery workers: turns/s, the per-message path against batches, and one
worker against two, in one run.

    MEMORYWEB_DATA_DIR=$PWD/.data/bench .venv/bin/python bench/ingest_speed.py \\
        --input ../shared/data/locomo/locomo_dev.json [--messages 600] [--runs 3] [--json OUT]

Offline (rules extraction, local embeddings), on the database the settings give and the Redis at
127.0.0.1:6379 (db 11 by default, flushed; a lock file keeps two runs apart). It starts four
workers as `serve` does (the project's celery app, threads pool, one task at a time): two with
MEMORY_BATCH_SIZE=1 (every message alone, as before batches) and two with the default (32). Each
loads the model on a warm-up message first. Then, in rounds, each setup in turn (the order rotates)
gets the same LoCoMo turns as fresh users' messages, queued as the chat queues them, and the time
from the first queued to the last processed gives turns/s. Only the setup's workers consume the
queue meanwhile (Celery's add_consumer / cancel_consumer). Medians over the rounds, and ratios
against the per-message path with one worker measured in the same run. Numbers: bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
QUEUE = "celery"  # the default queue, where the chat's tasks go
USER_PREFIX = "bench-ingest-"
READY_TIMEOUT = 180  # a worker boots Django and loads torch on a busy machine
BATCH = "32"  # the default MEMORY_BATCH_SIZE


@dataclass
class Setup:
    name: str
    batch_size: str
    workers: int
    tree: Path = BASE_DIR  # the code the workers run
    runtime: str = "onnx"  # EMBEDDING_RUNTIME
    speeds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def worker_keys(self) -> list[tuple[Path, str, str, int]]:
        return [(self.tree, self.batch_size, self.runtime, i) for i in range(1, self.workers + 1)]


def setups(before: Path | None, torch: bool = False) -> list[Setup]:
    """The baseline first: every message alone, one worker."""
    found = [
        Setup("per message, 1 worker", "1", 1),
        Setup("batches, 1 worker", BATCH, 1),
        Setup("per message, 2 workers", "1", 2),
        Setup("batches, 2 workers", BATCH, 2),
    ]
    if torch:
        found.append(Setup("batches, 1 worker, torch", BATCH, 1, runtime="torch"))
        found.append(Setup("batches, 2 workers, torch", BATCH, 2, runtime="torch"))
    if before is not None:  # batches of 32 where that code has them
        found.append(Setup("the code in --before, 1 worker", BATCH, 1, before.resolve()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input", default=str(BASE_DIR.parent / "shared/data/locomo/locomo_dev.json")
    )
    parser.add_argument("--messages", type=int, default=600, help="turns per run")
    parser.add_argument(
        "--conversations", type=int, default=0, help="chatted in at once (0: every session)"
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of every setup")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run at most")
    parser.add_argument(
        "--before",
        type=Path,
        help="an earlier version of the code (mkdir DIR; git archive COMMIT | tar -x -C DIR): one "
        "more setup, its worker running that code with batches of 32 if it has them",
    )
    parser.add_argument(
        "--torch",
        action="store_true",
        help="two more setups: batches with 1 and 2 workers embedding on torch "
        "(EMBEDDING_RUNTIME=torch) instead of ONNX Runtime",
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    if not Path(args.input).exists():
        print(f"skipped: no LoCoMo data at {args.input} (give its path with --input)")
        return
    broker = f"redis://{REDIS_HOST}:{REDIS_PORT}/{args.redis_db}"
    redis_client = _redis_or_exit(args.redis_db)
    # This process queues the tasks: the settings must name the same broker, and it is offline.
    os.environ.update(CELERY_BROKER_URL=broker, OPENAI_API_KEY="", EMBEDDING_BACKEND="local")

    from memoryweb import bootstrap

    bootstrap.prepare()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with _exclusive(args.redis_db):
        redis_client.flushdb()
        try:
            run(args, broker, redis_client)
        finally:
            redis_client.flushdb()
            bootstrap.finish()


def run(args, broker: str, redis_client) -> None:
    from memories.evaluation.locomo import load

    _delete_bench_users()
    _warn_of_other_waiting_messages()
    conversations = _traffic(load(Path(args.input)), args.conversations)
    turns = _interleaved(conversations, args.messages)
    print(
        f"{len(turns)} LoCoMo turns per run, from {len({c for c, _ in turns})} conversations "
        f"chatted in at once (each its own user), {args.runs} rounds",
        flush=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="ingest-speed-"))
    env = dict(os.environ, CELERY_BROKER_URL=broker, PYTHONUNBUFFERED="1")
    measured = setups(args.before, args.torch)
    keys = {key for setup in measured for key in setup.worker_keys()}
    workers = {key: Worker(key, env, logs) for key in sorted(keys)}
    embedding: dict[str, list[float]] = {}  # turns/s of the model alone, in this process
    try:
        for worker in workers.values():
            worker.warm_up()
        texts = _turn_texts(turns)
        for round_number in range(args.runs):
            for name, speed in _embedding_alone(texts).items():
                embedding.setdefault(name, []).append(speed)
            turn = round_number % len(measured)
            for setup in measured[turn:] + measured[:turn]:
                chosen = [workers[key] for key in setup.worker_keys()]
                speed, load = _timed_run(turns, chosen, redis_client, args.timeout)
                setup.speeds.append(speed)
                setup.loads.append(load)
                print(
                    f"  round {round_number + 1}: {setup.name:30} {speed:6.1f} turns/s"
                    f"  (load {load:.1f})",
                    flush=True,
                )
    finally:
        for worker in workers.values():
            worker.stop()
    _report(args, len(turns), measured, embedding, logs)


def _report(args, turns: int, measured: list[Setup], embedding: dict, logs: Path) -> None:
    base = measured[0]
    print()
    print(f"{'setup':32} {'runs (turns/s)':>20} {'median':>8} {'× per message, 1 worker':>24}")
    results = {}
    for setup in measured:
        median = statistics.median(setup.speeds)
        paired = statistics.median(s / b for s, b in zip(setup.speeds, base.speeds, strict=True))
        runs = " ".join(f"{s:.1f}" for s in setup.speeds)
        print(f"{setup.name:32} {runs:>20} {median:8.1f} {paired:24.2f}")
        results[setup.name] = {
            "turns_per_s": setup.speeds,
            "median": median,
            "ratio": paired,
            "load": setup.loads,
        }
    for size, label in (("1", "per message"), (BATCH, "batches")):
        one, two = [
            s
            for s in measured
            if s.batch_size == size and s.tree == BASE_DIR and s.runtime == "onnx"
        ]
        ratio = statistics.median(t / o for t, o in zip(two.speeds, one.speeds, strict=True))
        print(f"2 workers / 1 worker, {label}: {ratio:.2f}")
        results[f"2/1 workers, {label}"] = ratio
    by_name = {setup.name: setup for setup in measured}
    for workers in ("1 worker", "2 workers"):
        if f"batches, {workers}, torch" in by_name:
            onnx, torch = by_name[f"batches, {workers}"], by_name[f"batches, {workers}, torch"]
            ratio = statistics.median(o / t for o, t in zip(onnx.speeds, torch.speeds, strict=True))
            print(f"ONNX Runtime / torch, batches, {workers}: {ratio:.2f}")
            results[f"onnx/torch, batches, {workers}"] = ratio
    print("\nthe embedding model alone (this process, one thread), the same turns:")
    for name, speeds in embedding.items():
        runs = " ".join(f"{s:.1f}" for s in speeds)
        print(f"  {name:44} {runs:>20} {statistics.median(speeds):8.1f} turns/s")
        results[f"embedding: {name}"] = {"turns_per_s": speeds, "median": statistics.median(speeds)}
    loads = [load for setup in measured for load in setup.loads]
    print(
        f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print(f"ratios are medians of each round's own ratio; worker logs in {logs}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"turns": turns, "rounds": args.runs, "setups": results}, indent=2)
        )


class Worker:
    """A Celery worker as `serve` starts one, listening only to a queue of its own until told to
    take the chat's queue too."""

    def __init__(self, key: tuple[Path, str, str, int], env: dict[str, str], logs: Path):
        from memoryweb.celery import worker_command

        tree, batch_size, runtime, number = key
        name = f"{'alone' if batch_size == '1' else 'batch'}-{runtime}-{number}"
        if tree != BASE_DIR:
            name = f"before-{number}"
        self.hostname = f"ingest-{name}-{os.getpid()}@{socket.gethostname()}"
        self.own_queue = f"ingest-bench-{name}"
        self.log = logs / f"{name}.log"
        self.process = subprocess.Popen(
            worker_command(
                "--concurrency",
                "1",
                "--hostname",
                self.hostname,
                "-Q",
                self.own_queue,
                "--without-mingle",
                "--without-gossip",
            ),
            cwd=tree,  # `-A memoryweb` imports the project found there
            env={**env, "MEMORY_BATCH_SIZE": batch_size, "EMBEDDING_RUNTIME": runtime},
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def warm_up(self) -> None:
        """Wait until it answers, then until it has processed a message (the model loaded)."""
        from memories import tasks
        from memoryweb.celery import app

        deadline = time.monotonic() + READY_TIMEOUT
        while not app.control.ping(destination=[self.hostname], timeout=1.0):
            self._check(deadline, "to answer a ping")
        warm_up_turn = ("warm-up", ("User", "I live in Porto and I like tea."))
        [message] = _messages([warm_up_turn], tag=self.own_queue)
        tasks.process_message.apply_async((message.pk,), queue=self.own_queue)
        while not _all_processed([message.pk]):
            self._check(deadline, "to process its warm-up message")
            time.sleep(0.2)

    def consume(self, on: bool) -> None:
        from memoryweb.celery import app

        control = app.control.add_consumer if on else app.control.cancel_consumer
        replies = control(QUEUE, destination=[self.hostname], reply=True, timeout=5.0)
        if not replies:
            raise SystemExit(f"{self.hostname} did not answer {control.__name__} (log: {self.log})")

    def _check(self, deadline: float, what: str) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.hostname} exited ({self.process.returncode}); log: {self.log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{self.hostname} took too long {what}; log: {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)


def _timed_run(turns, workers: list[Worker], redis_client, timeout: float) -> tuple[float, float]:
    """Fresh users' messages queued as the chat queues them; turns/s from the first queued to the
    last processed, and the load average at the end."""
    from django.utils import timezone

    from chat.models import Message
    from memories import tasks
    from memoryweb.celery import enqueue

    messages = _messages(turns, tag=secrets.token_hex(3))
    ids = [m.pk for m in messages]
    for worker in workers:
        worker.consume(True)
    try:
        start = time.perf_counter()
        for pk in ids:  # what the chat turn does on commit (chat.services._enqueue_processing)
            Message.objects.filter(pk=pk).update(queued_at=timezone.now())
            enqueue(tasks.process_message, pk)
        deadline = time.monotonic() + timeout
        while not _all_processed(ids):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{len(ids) - Message.objects.filter(pk__in=ids).exclude(processed_at=None).count()}"
                    f" messages still unprocessed after {timeout:.0f} s"
                )
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        load = os.getloadavg()[0]
        while redis_client.llen(QUEUE):  # the tasks of messages a batch took: nothing left to do
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.consume(False)
    _delete_bench_users()
    return len(ids) / elapsed, load


def _turn_texts(turns) -> list[str]:
    """What the pipeline embeds for each turn (`turn_embedding_text`)."""
    from chat.models import Message
    from memories.episodes import turn_embedding_text

    return [
        turn_embedding_text(Message(role=Message.Role.USER, speaker=speaker, content=content))
        for _, (speaker, content) in turns
    ]


def _embedding_alone(texts: list[str]) -> dict[str, float]:
    """Turns/s of the local model with nothing else running: a call per turn (as before batches),
    a call per 32 (a batch), and inside that call the model's own batches of 32, 16 or 4 (its
    texts are sorted by length and padded to the longest of each; `LOCAL_BATCH` is 4)."""
    from memoryweb.ai.embeddings import embed_texts, local_model

    def rate(embed, texts, per_call):
        start = time.perf_counter()
        for i in range(0, len(texts), per_call):
            embed(texts[i : i + per_call])
        return len(texts) / (time.perf_counter() - start)

    def encode_in(size):
        return lambda chunk: local_model().encode(chunk, size)

    embed_texts(texts[:32])  # the model loaded, before anything is timed
    return {
        "embed_texts, a call per turn": rate(embed_texts, texts[:64], 1),
        "embed_texts, a call per 32 turns": rate(embed_texts, texts, 32),
        "the model on 32 turns, in batches of 32": rate(encode_in(32), texts, 32),
        "the model on 32 turns, in batches of 16": rate(encode_in(16), texts, 32),
        "the model on 32 turns, in batches of 4": rate(encode_in(4), texts, 32),
    }


def _traffic(samples, limit: int) -> list[list[tuple[str, str]]]:
    """Each LoCoMo session as a conversation of its own: (speaker, content) turns."""
    sessions = [
        [(turn.speaker, turn.content) for turn in session.turns]
        for sample in samples
        for session in sample.sessions
        if session.turns
    ]
    return sessions[:limit] if limit else sessions


def _interleaved(conversations, count: int) -> list[tuple[int, tuple[str, str]]]:
    """`count` turns as they arrive when all the conversations go on at once: the next turn of
    each in turn, a conversation's own in their order."""
    turns, depth = [], 0
    while len(turns) < count and any(depth < len(c) for c in conversations):
        turns += [(i, c[depth]) for i, c in enumerate(conversations) if depth < len(c)]
        depth += 1
    return turns[:count]


def _messages(turns, *, tag: str) -> list:
    """One consenting user per conversation (memory, past chats and every sensitive category, as
    the LoCoMo evaluation's users), and the turns as their unprocessed user messages, a millisecond
    apart in the order given."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ConsentRecord, SensitiveCategory, User
    from accounts.services import consent_set, memory_settings_update
    from chat.models import Conversation, Message

    start = timezone.now()
    conversations, messages = {}, []
    for i, (key, turn) in enumerate(turns):
        speaker, content = turn
        if key not in conversations:
            user = User.objects.create_user(f"{USER_PREFIX}{tag}-{key}", password=None)
            for purpose in [ConsentRecord.Purpose.MEMORY] + [
                ConsentRecord.SENSITIVE_PREFIX + c for c in SensitiveCategory
            ]:
                consent_set(user=user, purpose=purpose, granted=True, method="benchmark")
            memory_settings_update(user=user, use_past_chats=True)
            conversations[key] = Conversation.objects.create(
                user=user, created_at=start, last_activity_at=start
            )
        messages.append(
            Message.objects.create(
                conversation=conversations[key],
                role=Message.Role.USER,
                speaker=speaker[:100],
                content=content,
                created_at=start + timedelta(milliseconds=i),
            )
        )
    return messages


def _all_processed(ids: list[int]) -> bool:
    from chat.models import Message

    return not Message.objects.filter(pk__in=ids, processed_at=None).exists()


def _delete_bench_users() -> None:
    from accounts.models import User

    for user in User.objects.filter(username__startswith=USER_PREFIX):
        user.delete()


def _warn_of_other_waiting_messages() -> None:
    from chat.models import Message

    if waiting := Message.objects.unprocessed().count():
        print(
            f"note: {waiting} other user messages wait in this database; the workers take them too"
        )


def _redis_or_exit(db: int):
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        raise SystemExit(
            f"no Redis at {REDIS_HOST}:{REDIS_PORT} ({error}): start redis-server"
        ) from error
    return client


@contextlib.contextmanager
def _exclusive(db: int):
    """One run at a time on this Redis db: another run's workers would take this one's tasks."""
    path = Path(tempfile.gettempdir()) / f"memoryweb-bench-redis-{REDIS_PORT}-{db}.lock"
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another benchmark uses Redis db {db} (lock {path}); try --redis-db"
            ) from None
        yield


if __name__ == "__main__":
    main()
