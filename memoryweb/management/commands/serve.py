"""`manage.py serve`: the whole product on one machine — database, migrations, static files, a
Celery worker, Celery beat and gunicorn — supervised until Ctrl-C or SIGTERM, which stop everything it
started (docs/operations.md)."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import psutil
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from memoryweb import database
from memoryweb.celery import beat_command, worker_command

READY_TIMEOUT = 120
# After SIGTERM to a group's leader (gunicorn's master, Celery's main process), the whole group is
# SIGKILLed when it has not stopped in this time.
STOP_GRACE = 15.0
# A process that dies is started again after 1 s, then 2, 4 … up to 30 s while it keeps dying; one
# that ran for a minute starts again from 1 s.
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0
POLL_SECONDS = 0.5


@dataclass
class Supervised:
    """A process `serve` runs and starts again when it dies. It runs in its own process group
    (start_new_session): the terminal's Ctrl-C reaches only `serve`, and killing the group leaves
    none of what it forked behind."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0

    def start(self) -> None:
        _kill_group(self.process)  # what a dead leader left (its pool, workers on the port)
        self.process = subprocess.Popen(self.argv, start_new_session=True)
        self.started_at = time.monotonic()

    def died(self) -> int | None:
        """The exit code, once, when the process has ended since it was started."""
        if self.process is None or self.restart_at or self.process.poll() is None:
            return None
        return self.process.returncode


class Command(BaseCommand):
    help = (
        "Run the product: web server (gunicorn), worker and beat (Celery) on the configured "
        "database, restarting whatever dies, until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--worker-processes",
            type=int,
            default=settings.WORKER_PROCESSES,
            help="Celery workers, each a process of its own (default: WORKER_PROCESSES).",
        )

    def handle(
        self, *args, host: str, port: int, web_workers: int, worker_processes: int, **options
    ):
        if worker_processes < 1:
            raise CommandError("--worker-processes must be at least 1")
        lock = _single_instance_lock(settings.DATA_DIR / "serve.lock")
        _check_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write("database ready, migrations applied, static files collected")
        stop = _install_signal_handlers()
        children = [
            *_workers(worker_processes),
            Supervised("beat", beat_command(settings.CELERY_BEAT_SCHEDULE_FILENAME)),
            Supervised("web", _web_command(host, port, web_workers)),
        ]
        try:
            for child in children:
                child.start()
            local = host if host != "0.0.0.0" else "127.0.0.1"
            self._wait_ready(f"http://{local}:{port}/healthz", children, stop)
            if not stop.signals:
                url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"
                self.stdout.write(
                    self.style.SUCCESS(f"memoryweb is running at {url}  (Ctrl-C to stop)"),
                )
                self._supervise(children, stop)
        finally:
            self.stdout.write("stopping…")
            _stop(children, hurry=lambda: stop.signals > 1)
            if settings.EMBEDDED_DATABASE:
                database.stop_embedded_server(settings.DATA_DIR)
            self.stdout.write("stopped")
            lock.close()

    def _supervise(self, children: list[Supervised], stop: _StopRequest) -> None:
        database_down_since = None
        database_retry_at = 0.0
        database_failures = 0
        while not stop.signals:
            now = time.monotonic()
            for child in children:
                if (code := child.died()) is not None:
                    _kill_group(child.process)  # at once: an orphan may hold the port, or a task
                    ran = now - child.started_at
                    child.quick_deaths = 0 if ran >= STABLE_AFTER else child.quick_deaths + 1
                    delay = _backoff(child.quick_deaths)
                    child.restart_at = now + delay
                    self._log(
                        f"{child.name} (pid {child.process.pid}) exited with {_describe(code)} "
                        f"after {ran:.0f}s; starting it again in {delay:.0f}s"
                    )
                elif child.restart_at and now >= child.restart_at:
                    child.restart_at = 0.0
                    child.start()
                    self._log(f"{child.name} started again (pid {child.process.pid})")
            if settings.EMBEDDED_DATABASE and not database.embedded_server_running(
                settings.DATA_DIR
            ):
                if database_down_since is None:
                    database_down_since = now
                    self._log("the embedded PostgreSQL is not running; starting it again")
                if now >= database_retry_at:
                    try:
                        database.restart_embedded_server(settings.DATA_DIR)
                    except Exception as error:  # its old backends may still hold its memory
                        database_failures += 1
                        delay = _backoff(database_failures)
                        database_retry_at = now + delay
                        self._log(
                            f"PostgreSQL did not start ({error}); trying again in {delay:.0f}s"
                        )
                    else:
                        self._log(
                            "the embedded PostgreSQL runs again "
                            f"(down {time.monotonic() - database_down_since:.1f}s)"
                        )
                        database_down_since, database_failures = None, 0
            time.sleep(POLL_SECONDS)

    def _log(self, text: str) -> None:
        self.stdout.write(f"serve: {text}")
        self.stdout.flush()

    def _wait_ready(self, url: str, children: list[Supervised], stop: _StopRequest) -> None:
        """Until the web server answers; a process that dies while starting is a configuration
        error, not a fault to heal."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not stop.signals:
            if any(child.died() is not None for child in children):
                raise CommandError(
                    "the web server, the worker or beat failed to start (see the output above)"
                )
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(POLL_SECONDS)
        if not stop.signals:
            raise CommandError(f"the web server did not answer at {url} within {READY_TIMEOUT}s")


def _workers(count: int) -> list[Supervised]:
    """One Celery worker process per core: a worker's Python work holds its GIL, so threads in one
    process do not add cores (docs/benchmarks.md, ingestion). Each has a node name of its own."""
    if count == 1:
        return [Supervised("worker", worker_command("--concurrency", "1"))]
    return [
        Supervised(
            f"worker {number}",
            worker_command("--concurrency", "1", "--hostname", f"worker{number}@%h"),
        )
        for number in range(1, count + 1)
    ]


def _web_command(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "memoryweb.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--config",
        "python:memoryweb.gunicorn_conf",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--timeout",
        "120",
        "--graceful-timeout",
        str(int(STOP_GRACE) - 5),  # its workers are done before serve's grace period ends
        "--access-logfile",
        "-",
    ]


def _backoff(deaths: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, deaths - 1))


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def _single_instance_lock(path):
    """One `serve` per data folder: a second one would share (and then stop) the first one's
    database."""
    handle = open(path, "w")  # noqa: SIM115 - held open for the life of the command
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CommandError(
            f"memoryweb is already running from this data folder ({path.parent})."
        ) from None
    return handle


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise CommandError(
                f"port {port} on {host} is in use; choose another with --port"
            ) from None


class _StopRequest:
    """Ctrl-C and SIGTERM only count here, so that no signal interrupts starting or stopping half
    way; a second one while stopping makes the stop SIGKILL at once."""

    def __init__(self) -> None:
        self.signals = 0

    def __call__(self, signum, frame) -> None:
        self.signals += 1


def _install_signal_handlers() -> _StopRequest:
    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stop


def _group_alive(pgid: int) -> bool:
    """Whether the group still has a process that is not a zombie (an orphan's zombie only waits
    for init to reap it)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


def _kill_group(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGKILL the process's whole group and wait until it is gone."""
    if process is None:
        return
    deadline = time.monotonic() + timeout
    while _group_alive(process.pid) and time.monotonic() < deadline:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    process.poll()


def _stop(children: list[Supervised], hurry) -> None:
    """SIGTERM each group's leader, so that gunicorn and Celery stop in order (a SIGTERM straight
    to Celery's pool processes would kill a task half way); SIGKILL the whole group once its leader
    is gone, after STOP_GRACE, or at once on a second Ctrl-C."""
    running = [c.process for c in children if c.process is not None]
    for process in running:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    while running:
        for process in list(running):
            if process.poll() is not None or time.monotonic() > deadline or hurry():
                _kill_group(process)
                running.remove(process)
        time.sleep(0.05)
