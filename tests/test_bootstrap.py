"""Entry points make the local defaults; importing the settings makes nothing; a one-off command
stops the embedded database it started, but never under another process still using it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from memoryweb import database

pytestmark = pytest.mark.skipif(
    not settings.EMBEDDED_DATABASE, reason="the embedded database's life is tested on it"
)


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "MEMORYWEB_DATA_DIR": str(data_dir)}
    env["DJANGO_SETTINGS_MODULE"] = "memoryweb.settings"
    env.pop("DATABASE_URL", None)
    return env


def _shell(data_dir: Path, code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_importing_the_settings_makes_nothing(tmp_path):
    code = "import memoryweb.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=_env(tmp_path / "fresh"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "does not exist (start through manage.py)" in result.stderr
    assert not (tmp_path / "fresh").exists()


def test_a_command_stops_the_database_it_started_but_not_under_another_user(tmp_path):
    first = _shell(tmp_path, "import time; time.sleep(8)")  # starts the server
    deadline = time.monotonic() + 120
    while not database.embedded_server_running(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    query = "from django.db import connection; connection.cursor().execute('select 1'); print('ok')"
    second = _shell(tmp_path, f"import time; time.sleep(14); {query}")  # still at work after it
    try:
        assert first.wait(120) == 0, first.stdout.read()
        assert database.embedded_server_running(tmp_path)  # the second one holds it
        out = second.communicate(timeout=120)[0]
        assert second.returncode == 0 and "ok" in out, out
        database.stop_embedded_server(tmp_path)

        alone = _shell(tmp_path, "pass")  # starts it, and nobody else uses it
        assert alone.wait(120) == 0, alone.stdout.read()
        assert not database.embedded_server_running(tmp_path)
    finally:
        for process in (first, second):
            process.kill()
        database.stop_embedded_server(tmp_path)


def test_the_embedded_servers_page_cache_is_sized_from_its_next_start(tmp_path):
    show = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('show shared_buffers'); print('buffers', c.fetchone()[0])"
    )
    env = {**_env(tmp_path), "EMBEDDED_DB_SHARED_BUFFERS": "160MB"}
    seen = []
    for _ in range(2):  # each command starts the server and stops it again
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", show], cwd=settings.BASE_DIR, env=env,
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.split("buffers ")[-1].strip())
    assert seen == ["128MB", "160MB"]  # written at the first start, in force from the next
    env["EMBEDDED_DB_SHARED_BUFFERS"] = "lots; DROP TABLE x"
    refused = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show], cwd=settings.BASE_DIR, env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert refused.returncode != 0 and "must be a size such as 512MB" in refused.stderr
