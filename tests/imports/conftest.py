"""The real worker's fixtures, shared with tests/memories/test_worker.py (Redis db 15)."""

from tests.memories.test_worker import celery_worker_process, redis_broker  # noqa: F401
