"""A Redis database of a test module's own: each module that talks to the real Redis at
127.0.0.1:6379 uses a db number of its own (13: test_scale_out, 14: test_serve_faults, 15:
test_worker), and runs side by side (other work trees) take turns on it."""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@contextlib.contextmanager
def redis_db_of_our_own(db: int) -> Iterator[str]:
    """The URL of Redis db `db`, emptied before and after, held under a file lock meanwhile; the
    test is skipped when no Redis answers."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis answers at {REDIS_HOST}:{REDIS_PORT} ({error})")
    path = Path(tempfile.gettempdir()) / f"memoryweb-test-redis-{REDIS_PORT}-{db}.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client.flushdb()
        try:
            yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        finally:
            client.flushdb()
            fcntl.flock(lock, fcntl.LOCK_UN)
