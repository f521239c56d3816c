"""`manage.py serve`: the whole product on one machine — database, migrations, static files, a
Celery worker (with the periodic sweep) and gunicorn — until Ctrl-C, which stops everything it
started."""

from __future__ import annotations

import fcntl
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from memoryweb import database
from memoryweb.celery import worker_command

READY_TIMEOUT = 120


class Command(BaseCommand):
    help = "Run the product: web server (gunicorn) and worker (Celery + beat) on the configured database."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, host: str, port: int, web_workers: int, **options):
        lock = _single_instance_lock(settings.DATA_DIR / "serve.lock")
        _check_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write("database ready, migrations applied, static files collected")
        children = [self._worker(), self._web(host, port, web_workers)]
        stop = _install_signal_handlers()
        try:
            url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"
            self._wait_ready(
                f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/accounts/login/",
                children,
            )
            self.stdout.write(
                self.style.SUCCESS(f"memoryweb is running at {url}  (Ctrl-C to stop)")
            )
            while not stop["requested"]:
                if any(p.poll() is not None for p in children):
                    raise CommandError(
                        "a child process exited unexpectedly; stopping (see its output above)"
                    )
                time.sleep(0.5)
        finally:
            self.stdout.write("stopping…")
            _terminate(children)
            if settings.EMBEDDED_DATABASE:
                database.stop_embedded_server(settings.DATA_DIR)
            self.stdout.write("stopped")
            lock.close()

    def _worker(self) -> subprocess.Popen:
        return subprocess.Popen(
            worker_command(
                "--beat", "--concurrency", "1", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME
            )
        )

    def _web(self, host: str, port: int, workers: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
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
                "--access-logfile",
                "-",
            ],
        )

    def _wait_ready(self, url: str, children: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in children):
                raise CommandError(
                    "the web server or the worker failed to start (see the output above)"
                )
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise CommandError(f"the web server did not answer at {url} within {READY_TIMEOUT}s")


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


def _install_signal_handlers() -> dict:
    state = {"requested": False}

    def _request_stop(signum, frame):
        state["requested"] = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    return state


def _terminate(children: list[subprocess.Popen], timeout: float = 20) -> None:
    for p in children:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in children:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
