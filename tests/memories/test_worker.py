"""The production path with a real Celery worker process and a real Redis broker.

The rest of the suite runs Celery eagerly. Here the chat turn's on_commit enqueues through Redis, a
separate `celery worker` process (same code, the same test database, its own connections) consumes
the task, and the test watches the committed result in PostgreSQL. It also proves the sweep recovers
a message whose broker message was lost. Skipped when no Redis answers at 127.0.0.1:6379; uses Redis
db 15 only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import pools as kombu_pools

from chat import services as chat_services
from chat.models import Conversation, Message
from memories import tasks
from memories.models import Episode
from memoryweb.celery import app, worker_command
from tests.factories import memory_saying

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 15
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
READY_TIMEOUT = 90  # the worker boots Django; allow a slow machine
FIRST_TASK_TIMEOUT = 90  # the first task loads the local embedding model (torch) in the worker
TASK_TIMEOUT = 60
LOCK_TIMEOUT = 150  # another run's worker test takes well under a minute


def _redis_or_skip():
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency of the broker transport
        pytest.skip("the redis client library is not installed")
    client = redis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=1, socket_timeout=2
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(
            f"no Redis answers at {REDIS_HOST}:{REDIS_PORT} ({exc}); start redis-server to run this test"
        )
    return client


def _test_database_url() -> str:
    """A libpq URL of the database this test process uses (the test database), for the worker's
    DATABASE_URL."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if user or password else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    query = {
        k: str(v) for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int | float)
    }
    if db["HOST"]:
        query["host"] = db["HOST"]  # a socket directory for the embedded server, or a host name
    suffix = f"?{urlencode(query)}" if query else ""
    return f"postgresql://{auth}{port}/{quote(db['NAME'], safe='')}{suffix}"


def _reset_broker_connections() -> None:
    """Drop the app's cached broker connection and producer pools so the next publish uses
    app.conf.broker_url. The producer pools live in kombu's process-wide registry: reset it, or a
    later test would be handed the closed pool again ("Acquire on closed pool")."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    kombu_pools.reset()


@contextlib.contextmanager
def _app_using_broker(url: str):
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    app.conf.broker_url = url
    app.conf.broker_transport_options = {}  # the filesystem transport's folders mean nothing to Redis
    app.conf.task_always_eager = False
    _reset_broker_connections()
    try:
        yield
    finally:
        _reset_broker_connections()
        for key, value in saved.items():
            app.conf[key] = value


class Worker:
    def __init__(self, hostname: str, env: dict[str, str]):
        self.hostname = hostname
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            worker_command(
                "--pool", "solo", "--without-mingle", "--without-gossip", "--hostname", hostname
            ),
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def fail(self, reason: str):
        pytest.fail(
            f"{reason}\n--- celery worker output ---\n{self.output}\n--- end of worker output ---"
        )

    def wait_until(self, predicate, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(
                    f"the worker exited (code {self.process.returncode}) while waiting for {what}"
                )
            if predicate():
                return
            time.sleep(0.25)
        self.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_ready(self) -> None:
        def answers() -> bool:
            if not any(" ready." in line for line in self.lines):
                return False
            # A ping through the test process's app proves both sides use the same broker.
            return bool(app.control.ping(destination=[self.hostname], timeout=1.0))

        self.wait_until(
            answers, timeout=READY_TIMEOUT, what="the worker to be ready and answer a ping"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown: finishes the task in hand
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


@contextlib.contextmanager
def _exclusive_redis_db():
    """Test runs side by side (each with its own test database) share Redis db 15: one flushing it,
    or one worker consuming the other's tasks against the wrong database, would break both. Take
    turns."""
    path = os.path.join(tempfile.gettempdir(), f"memoryweb-test-redis-{REDIS_PORT}-{REDIS_DB}.lock")
    with open(path, "a") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"another test run kept Redis db {REDIS_DB} busy (lock {path}) for {LOCK_TIMEOUT} s"
                    )
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def redis_broker():
    client = _redis_or_skip()
    with _exclusive_redis_db():
        client.flushdb()
        try:
            yield BROKER_URL
        finally:
            client.flushdb()
            client.close()


def worker_environment(settings, broker_url: str, **extra: str) -> dict[str, str]:
    """What a real worker process is started with: this test's database and broker, offline like
    the test process (rule extraction and local embeddings)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryweb.settings",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": _test_database_url(),
        "MEMORYWEB_DATA_DIR": str(settings.DATA_DIR),
        "OPENAI_API_KEY": "",
        "EMBEDDING_BACKEND": "local",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def celery_worker_process(request, _offline_and_eager, settings, transactional_db, redis_broker):
    """A real `celery worker` on Redis db 15 against this test's database; the test process
    publishes there too.

    Requested after the autouse eager fixture (so it can undo it) and after the transactional
    database (so the worker is gone before the tables are flushed)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    env = worker_environment(settings, redis_broker)
    with _app_using_broker(redis_broker):
        worker = Worker(f"memoryweb-test-{os.getpid()}@{socket.gethostname()}", env)
        failed_before = request.session.testsfailed
        try:
            worker.wait_ready()
            yield worker
        finally:
            worker.stop()
            if request.session.testsfailed > failed_before or os.environ.get(
                "MEMORYWEB_SHOW_WORKER_OUTPUT"
            ):
                print(
                    f"\n--- celery worker output ---\n{worker.output}\n--- end of worker output ---"
                )


def _processed(message: Message) -> bool:
    message.refresh_from_db(fields=["processed_at"])
    return message.processed_at is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_chat_turns_and_swept_messages_through_redis(
    alice, celery_worker_process
):
    worker = celery_worker_process

    # A: the chat turn commits, its on_commit callback publishes process_message to Redis, the
    # worker runs it.
    turn = chat_services.chat_turn(
        user=alice, conversation=None, text="Remember that I'm vegetarian."
    )
    message = turn.user_message
    assert message.processed_at is None  # not eager: nothing ran in this process
    worker.wait_until(
        lambda: _processed(message),
        timeout=FIRST_TASK_TIMEOUT,
        what=f"the worker to process message {message.pk}",
    )
    memory = memory_saying("User is vegetarian", user=alice)
    assert list(memory.source_messages.all()) == [message]
    episode = Episode.objects.get(user=alice, key=f"turn:{message.pk}")
    assert list(episode.messages.all()) == [message]
    assert any(
        "memories.tasks.process_message[" in line and "received" in line for line in worker.lines
    )

    # B: a user message whose broker message was lost (never enqueued) is found by the sweep, sent
    # through the broker, re-queued by the worker and processed.
    now = timezone.now()
    conversation = Conversation.objects.create(user=alice, created_at=now, last_activity_at=now)
    lost = Message.objects.create(
        conversation=conversation,
        role=Message.Role.USER,
        content="I live in Berlin.",
        created_at=now - tasks.SWEEP_GRACE - timedelta(minutes=1),
    )
    time.sleep(1)  # nothing was queued for it: it stays unprocessed
    assert not _processed(lost)
    tasks.sweep.delay()
    worker.wait_until(
        lambda: _processed(lost),
        timeout=TASK_TIMEOUT,
        what=f"the sweep to get message {lost.pk} done",
    )
    located = memory_saying("User lives in Berlin", user=alice)
    assert list(located.source_messages.all()) == [lost]
    assert Episode.objects.filter(user=alice, key=f"turn:{lost.pk}").exists()
    assert any("memories.tasks.sweep[" in line and "received" in line for line in worker.lines)
    assert any("sweep re-queued" in line and "'messages': 1" in line for line in worker.lines)
    assert Message.objects.unprocessed().count() == 0


def _worker_backends() -> set[tuple[int, object]]:
    """The other clients' connections to this test database (the worker's): pid and start."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return set(cursor.fetchall())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_database_connection_and_replaces_a_broken_one(
    alice, celery_worker_process
):
    """Celery's Django fixup would close the connection around every task (a new one each, ~10 ms);
    the worker keeps it as Django keeps a web request's, and a connection the server dropped is
    replaced before the next task uses it, so that task does not fail."""
    worker = celery_worker_process

    def learned(text: str, fact: str) -> None:
        message = chat_services.chat_turn(user=alice, conversation=None, text=text).user_message
        worker.wait_until(
            lambda: _processed(message),
            timeout=FIRST_TASK_TIMEOUT,
            what=f"the worker to process message {message.pk}",
        )
        assert memory_saying(fact, user=alice)

    learned("Remember that I'm vegetarian.", "User is vegetarian")
    kept = _worker_backends()
    assert kept  # still open after the task
    learned("I live in Porto.", "User lives in Porto")
    learned("I work at Initech.", "User works at Initech")
    assert _worker_backends() == kept  # the same connection for every task

    with connection.cursor() as cursor:  # the server drops it (a restart, a proxy's idle timeout)
        cursor.execute("SELECT pg_terminate_backend(%s)", [next(iter(kept))[0]])
    learned("I live in Berlin.", "User lives in Berlin")
    replaced = _worker_backends()
    assert replaced and replaced.isdisjoint(kept)
    assert "Traceback" not in worker.output
