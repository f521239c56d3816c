"""The local defaults, made before the settings read them: the data folder, the generated keys and
the embedded PostgreSQL. Every entry point (manage.py, wsgi/asgi, the Celery app, the tests' plugin)
calls `prepare()` first, so that importing the settings only reads the environment and those
files."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from memoryweb import database
from vault.master import load_master_keys

BASE_DIR = Path(__file__).resolve().parent.parent
# Set by prepare(): the embedded server's database, for the settings of this process and its
# children.
EMBEDDED_DATABASE_URL = "MEMORYWEB_EMBEDDED_DATABASE_URL"
# of kombu's filesystem transport, the default broker
BROKER_FOLDERS = (
    "queue",
    "processed",
    "control",
)


def data_dir() -> Path:
    return Path(os.environ.get("MEMORYWEB_DATA_DIR") or BASE_DIR / ".data")


def prepare() -> None:
    """Make what the local defaults need (idempotent; processes starting together agree on one of
    each)."""
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        _secret_key_file(data / "secret_key")
    load_master_keys(os.environ.get("MEMORYWEB_MASTER_KEYS", ""), data / "master_keys")
    load_master_keys(
        os.environ.get("MEMORYWEB_FINGERPRINT_KEY", ""),
        data / "fingerprint_key",
        source="MEMORYWEB_FINGERPRINT_KEY",
    )
    if os.environ.get("CELERY_BROKER_URL", "filesystem://").startswith("filesystem://"):
        for folder in BROKER_FOLDERS:
            (data / "broker" / folder).mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        os.environ[EMBEDDED_DATABASE_URL] = database.start_embedded_server(data)


def finish() -> None:
    """Stop the embedded PostgreSQL if this process started it: a one-off command (migrate, a check,
    a shell) leaves nothing running; when `make start` or a test run has it running, it stays."""
    if not database.started_here:
        return
    from django.db import connections  # Django is only set up once a command ran

    connections.close_all()
    database.stop_embedded_server(data_dir())


def _secret_key_file(path: Path) -> None:
    """Django's SECRET_KEY for local use, kept in the (git-ignored) data folder: sessions survive
    restarts."""
    if path.exists():
        return
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
        # whole, or not at all: a process starting alongside reads a complete key
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
