"""The local defaults, made before the settings read them: the data folder, the generated keys and
the embedded PostgreSQL. Every entry point calls `prepare()` first (manage.py, wsgi/asgi, the Celery
app as it is configured, the tests' settings), so that importing the settings only reads the
environment and those files."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from memoryweb import database
from vault.master import load_master_keys, private_file_create
from vault.signing import load_signing_key

BASE_DIR = Path(__file__).resolve().parent.parent
BROKER_FOLDERS = ("queue", "processed", "control")  # of kombu's filesystem transport, the default
# A shared lock on this file, held by every process that prepared the embedded server until it exits:
# a command that started the server stops it at its end only when no other process holds one.
USERS_LOCK = "pgdata.users"

_users_lock = None  # this process's open lock file


def data_dir() -> Path:
    return Path(os.environ.get("MEMORYWEB_DATA_DIR") or BASE_DIR / ".data")


def prepare() -> None:
    """Make what the local defaults need (once per process; processes starting together agree on one
    of each)."""
    if _users_lock is not None:
        return
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        path = data / "secret_key"
        if not path.exists():  # kept in the (git-ignored) data folder: sessions survive restarts
            private_file_create(path, secrets.token_urlsafe(50))
    load_master_keys(os.environ.get("MEMORYWEB_MASTER_KEYS", ""), data / "master_keys")
    fingerprint_key = os.environ.get("MEMORYWEB_FINGERPRINT_KEY", "")
    load_master_keys(fingerprint_key, data / "fingerprint_key", source="MEMORYWEB_FINGERPRINT_KEY")
    load_signing_key(os.environ.get("RECEIPT_SIGNING_KEY", ""), data / "receipt_signing_key")
    if os.environ.get("CELERY_BROKER_URL", "filesystem://").startswith("filesystem://"):
        for folder in BROKER_FOLDERS:
            (data / "broker" / folder).mkdir(parents=True, exist_ok=True)
    _hold_users_lock(data)
    if not os.environ.get("DATABASE_URL"):
        database.start_embedded_server(data)  # the settings find it through its postmaster.pid


def _hold_users_lock(data: Path) -> None:
    """Take the shared lock before the server is started or found: a command stopping it holds the
    lock exclusively, so this waits until it is down, then starts it again."""
    global _users_lock
    _users_lock = open(data / USERS_LOCK, "a")  # held open until the process exits
    fcntl.flock(_users_lock, fcntl.LOCK_SH)


def finish() -> None:
    """Stop the embedded PostgreSQL if this process started it and no other process uses it: a
    one-off command (a migration, a check) leaves nothing running; one that found it running, or ends
    while `make start` or another command uses it, leaves it running."""
    if not database.started_here or _users_lock is None or os.environ.get("DATABASE_URL"):
        return
    try:
        fcntl.flock(_users_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another process holds the shared lock: it still uses the server
    from django.db import connections  # Django is set up only once a command has run

    connections.close_all()
    database.stop_embedded_server(data_dir())
