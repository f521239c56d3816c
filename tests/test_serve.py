"""The start command for real: `manage.py serve` on its own data folder starts the embedded
database, migrates, runs gunicorn and Celery workers (two, as asked), serves pages and static files, refuses a
second instance, and stops everything on Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from memoryweb import database

pytestmark = pytest.mark.django_db(transaction=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "MEMORYWEB_DATA_DIR": str(data_dir), "MEMORY_SWEEP_SECONDS": "5"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    return env


def _serve(data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--web-workers",
            "1",
            "--worker-processes",
            "2",
        ],
        cwd=settings.BASE_DIR,
        env=_environment(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _manage(data_dir: Path, *args: str) -> str:
    """A one-off `manage.py` command on the running product's data folder; its output."""
    env = {
        **os.environ,
        "MEMORYWEB_DATA_DIR": str(data_dir),
        "DJANGO_SUPERUSER_PASSWORD": "x-Pass-77",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _mcp_answers_under_gunicorn(data_dir: Path, port: int) -> None:
    """/mcp in gunicorn's threads (the SDK's app on a loop of the request's own): 401 without a
    token, and the SDK's client with a personal key."""
    from tests.oauth_clients import mcp_session

    url = f"http://127.0.0.1:{port}/mcp"
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert (
        refused.value.code == 401
        and "resource_metadata=" in refused.value.headers["WWW-Authenticate"]
    )
    _manage(data_dir, "createsuperuser", "--noinput", "--username", "ops", "--email", "o@x.test")
    key = _manage(data_dir, "apikey", "create", "ops", "--scope", "context:read").strip()

    async def tools(session, initialized):
        return {t.name for t in (await session.list_tools()).tools}

    assert "get_context" in asyncio.run(mcp_session(url, key, tools))


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed in {timeout}s:\n" + "".join(lines[-60:]))


@pytest.mark.skipif(
    not settings.EMBEDDED_DATABASE, reason="serve is tested on the embedded database"
)
def test_it_runs_the_product_and_stops_everything_on_ctrl_c(tmp_path):
    port = _free_port()
    server = _serve(tmp_path, port)
    children: list[psutil.Process] = []
    try:
        lines = _wait_for_line(server, "memoryweb is running at", timeout=240)
        assert f"http://localhost:{port}/" in lines[-1]
        children = psutil.Process(server.pid).children(recursive=True)
        assert any("gunicorn" in " ".join(c.cmdline()) for c in children)
        assert any("celery" in " ".join(c.cmdline()) for c in children)
        # One worker process per core asked for, each its own node, each answering.
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "memoryweb", "inspect", "ping", "-t", "10"],
            cwd=settings.BASE_DIR,
            env=_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "worker1@" in ping.stdout and "worker2@" in ping.stdout, ping.stdout + ping.stderr

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            assert b"Log in" in page.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/app.css") as css:
            assert css.status == 200
        _mcp_answers_under_gunicorn(tmp_path, port)

        second = _serve(tmp_path, _free_port())
        assert second.wait(120) != 0
        assert "already running" in second.stdout.read()

        server.send_signal(signal.SIGINT)
        assert server.wait(90) == 0
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
    finally:
        for process in (server, *children):
            if (
                process.poll() is None
                if isinstance(process, subprocess.Popen)
                else process.is_running()
            ):
                process.kill()
        database.stop_embedded_server(tmp_path)
