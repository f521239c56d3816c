"""`manage.py serve` under faults, for real: its processes are SIGKILLed one by one (the worker,
idle and with a task in hand; a gunicorn worker and gunicorn's master; beat; the embedded
PostgreSQL's postmaster) and the site answers again, a message sent afterwards is learned exactly
once, a task lost with its worker is done within two minutes, and Ctrl-C (to the whole process
group, as a terminal sends it) leaves no process behind and the port free, every time."""

from __future__ import annotations

import contextlib
import json
import os
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
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from memoryweb import database
from tests.redis_dbs import redis_db_of_our_own

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.skipif(
        not settings.EMBEDDED_DATABASE, reason="serve is tested on the embedded database"
    ),
]

RECOVERY_SECONDS = 30  # the site answers again within this after any one kill
LEARN_SECONDS = 120  # a message is learned within this (the worker may be loading its model)
REDIS_DB = 14  # db 15 is test_worker.py's
SETUP_USER = """
from accounts.models import ConsentRecord, User
from accounts.scopes import Scope
from accounts.services import api_key_create, consent_set
user, _ = User.objects.get_or_create(username="ann")
consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="test")
print("KEY", api_key_create(user=user, scopes=Scope.values)[1])
"""


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """One data folder for the module: its database is made and migrated once. Not under pytest's
    basetemp: as root the server runs as another user, and every pytest run (another work tree's
    too) makes /tmp/pytest-of-root private again, shutting that user out of its own data."""
    folder = Path(tempfile.mkdtemp(prefix="memoryweb-serve-"))
    yield folder
    database.stop_embedded_server(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until(predicate, timeout: float, what: str, output=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{output()}")


class Serve:
    """`manage.py serve` in its own session, as a terminal runs it: `ctrl_c` signals the whole
    group, as the terminal's Ctrl-C does."""

    def __init__(self, data_dir: Path, port: int, **env: str):
        self.data_dir, self.port = data_dir, port
        self.env = {
            **os.environ,
            "MEMORYWEB_DATA_DIR": str(data_dir),
            "MEMORY_SWEEP_SECONDS": "5",
            "MEMORY_REQUEUE_SECONDS": "10",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("DATABASE_URL", None)
        if "CELERY_BROKER_URL" not in env:
            self.env.pop("CELERY_BROKER_URL", None)
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--port",
                str(port),
                "--web-workers",
                "1",
                "--worker-processes",
                "1",  # the faults below kill "the" worker
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
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
        return "\n".join(self.lines[-80:])

    def wait_printed(self, needle: str, timeout: float, after: int = 0) -> None:
        def printed():
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.output()}")
            return any(needle in line for line in self.lines[after:])

        _wait_until(printed, timeout, f"{needle!r} printed", self.output)

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def child(self, *words: str) -> psutil.Process:
        [found] = [
            p
            for p in psutil.Process(self.process.pid).children()
            if all(word in " ".join(p.cmdline()) for word in words)
        ]
        return found

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0

    def wait_answers(self, path: str = "/healthz", timeout: float = RECOVERY_SECONDS) -> float:
        start = time.monotonic()
        _wait_until(lambda: self.status(path) == 200, timeout, f"{path} answers", self.output)
        return time.monotonic() - start

    def manage(self, *args: str, script: str | None = None) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args, *(["-c", script] if script else [])],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    def stop(self) -> int:
        self.ctrl_c()
        return self.process.wait(90)


class Api:
    def __init__(self, serve: Serve, key: str):
        self.serve, self.key = serve, key

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.serve.url(f"/api/v1/{path}"),
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def memories_saying(self, text: str) -> list[dict]:
        return [
            m for m in self.call("GET", "memories?page_size=200")["results"] if m["text"] == text
        ]

    def learned_once(self, text: str, timeout: float = LEARN_SECONDS) -> float:
        """Seconds until `text` is a memory; it must be one memory with one revision: a message
        processed twice would reinforce it (a second revision)."""
        start = time.monotonic()
        [memory] = _wait_until(
            lambda: self.memories_saying(text), timeout, f"{text!r} learned", self.serve.output
        )
        took = time.monotonic() - start
        time.sleep(2 * 5)  # two sweeps, which must not queue it again
        assert len(self.memories_saying(text)) == 1
        history = self.call("GET", f"memories/{memory['id']}")["history"]
        assert [revision["action"] for revision in history] == ["add"], history
        return took


def _leftovers(data_dir: Path, port: int) -> list[str]:
    """Processes still running for this data folder or port (by command line or environment)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (
            str(data_dir) in cmdline
            or f":{port}" in cmdline
            or environ.get("MEMORYWEB_DATA_DIR") == str(data_dir)
        ):
            found.append(f"{process.pid} {cmdline}")
    return found


def _assert_nothing_left(serve: Serve) -> None:
    _wait_until(
        lambda: not _leftovers(serve.data_dir, serve.port),
        10,
        f"no process left: {_leftovers(serve.data_dir, serve.port)}",
        serve.output,
    )
    assert _port_free(serve.port)
    assert not (serve.data_dir / "pgdata" / "postmaster.pid").exists()


@contextlib.contextmanager
def _serving(data_dir: Path, **env: str):
    serve = Serve(data_dir, _free_port(), **env)
    try:
        serve.wait_printed("memoryweb is running at", timeout=300)
        key = serve.manage("shell", script=SETUP_USER).split("KEY ")[1].strip()
        yield serve, Api(serve, key)
        assert serve.stop() == 0, serve.output()
        _assert_nothing_left(serve)
    finally:
        if serve.process.poll() is None:
            os.killpg(serve.process.pid, signal.SIGKILL)
        (data_dir / f"serve-{serve.port}.log").write_text("\n".join(serve.lines))
        for process in _leftovers(data_dir, serve.port):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(process.split()[0]), signal.SIGKILL)


def _kill(process: psutil.Process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _lose_a_task_in_flight(serve: Serve, api: Api, text: str, learned: str) -> float:
    """The worker is SIGKILLed with the message's task in hand: just started again, it is still
    loading the embedding model when the task comes. The sweep queues it again; seconds from the
    message to its memory."""
    mark = len(serve.lines)
    _kill(serve.child("celery", "worker"))
    serve.wait_printed("worker started again", timeout=RECOVERY_SECONDS, after=mark)
    serve.wait_printed(" ready.", timeout=LEARN_SECONDS, after=mark)
    start, mark = time.monotonic(), len(serve.lines)
    api.call("POST", "chat", {"message": text})
    serve.wait_printed("memories.tasks.process_message[", timeout=RECOVERY_SECONDS, after=mark)
    _kill(serve.child("celery", "worker"))
    assert not any("processed message" in line for line in serve.lines[mark:])  # mid-task
    api.learned_once(learned)
    return time.monotonic() - start


def test_serve_heals_each_process_it_runs_and_learns_each_message_once(data_dir):
    with _serving(data_dir) as (serve, api):
        serve.wait_answers("/readyz", timeout=LEARN_SECONDS)
        api.call("POST", "chat", {"message": "I live in Porto."})
        api.learned_once("User lives in Porto")

        recovered = {}
        for name, victim, text, expected in (
            (
                "worker",
                lambda: serve.child("celery", "worker"),
                "I work as a nurse.",
                "User is a nurse",
            ),
            (
                "gunicorn worker",
                lambda: serve.child("gunicorn").children()[0],
                "I have a dog called Rex.",
                "User's dog is Rex",
            ),
            (
                "web",
                lambda: serve.child("gunicorn"),
                "My sister is called Ana.",
                "User's sister is Ana",
            ),
            (
                "database",
                lambda: psutil.Process(database._postmaster(data_dir).pid),
                "My birthday is on May 3.",
                "User's birthday is May 3",
            ),
        ):
            process = victim()
            mark = len(serve.lines)
            _kill(process)
            start = time.monotonic()
            serve.wait_answers("/readyz")  # the database, the broker and a worker again
            recovered[name] = time.monotonic() - start
            api.call("POST", "chat", {"message": text})
            api.learned_once(expected)
            if name in ("worker", "web"):
                assert any(f"{name} started again" in line for line in serve.lines[mark:])
            if name == "database":
                assert any("PostgreSQL runs again" in line for line in serve.lines[mark:])

        mark = len(serve.lines)
        _kill(serve.child("celery", "beat"))
        serve.wait_printed("beat started again", timeout=RECOVERY_SECONDS, after=mark)

        lost = _lose_a_task_in_flight(serve, api, "I have a cat called Tom.", "User's cat is Tom")
        assert lost < 120
        print(f"\nrecovered in {recovered}; a task lost in flight was done after {lost:.0f}s")


def test_a_database_down_is_named_by_readyz(data_dir):
    with _serving(data_dir) as (serve, api):
        postmaster = psutil.Process(database._postmaster(data_dir).pid)
        postmaster.send_signal(signal.SIGSTOP)  # a database that does not answer
        try:
            request = urllib.request.Request(serve.url("/readyz"), headers={"Accept": "*/*"})
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=20)
            assert answer.value.code == 503
            body = json.loads(answer.value.read())
            assert body["database"].startswith("Unavailable")
            assert serve.status("/healthz") == 200  # alive all the same
        finally:
            postmaster.send_signal(signal.SIGCONT)
        serve.wait_answers("/readyz", timeout=LEARN_SECONDS)


def test_serve_heals_a_killed_worker_on_redis(data_dir):
    with (
        redis_db_of_our_own(REDIS_DB) as broker,
        _serving(data_dir, CELERY_BROKER_URL=broker) as (serve, api),
    ):
        serve.wait_answers("/readyz", timeout=LEARN_SECONDS)
        lost = _lose_a_task_in_flight(
            serve, api, "My brother is called Leo.", "User's brother is Leo"
        )
        assert lost < 120
        serve.wait_answers("/readyz")
        api.call("POST", "chat", {"message": "My manager is called Ines."})
        api.learned_once("User's manager is Ines")


def test_ctrl_c_leaves_no_process_and_the_port_free_every_time(data_dir):
    port = _free_port()
    times = []
    for attempt in range(10):
        serve = Serve(data_dir, port)
        try:
            serve.wait_printed("memoryweb is running at", timeout=300)
            start = time.monotonic()
            serve.ctrl_c()
            if attempt % 2:  # impatient: a second Ctrl-C while it stops
                time.sleep(0.5)
                serve.ctrl_c()
            assert serve.process.wait(90) == 0, serve.output()
            times.append(time.monotonic() - start)
            _assert_nothing_left(serve)
        finally:
            if serve.process.poll() is None:
                os.killpg(serve.process.pid, signal.SIGKILL)
    print(f"\nstopped in {', '.join(f'{t:.1f}' for t in times)} s")
