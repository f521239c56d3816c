"""Celery wiring: settings come from Django's (CELERY_ prefix); tasks are found in each app's
tasks.py."""

import logging
import os
import sys

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun

from memoryweb import bootstrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

app = Celery("memoryweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@app.on_configure.connect
def _prepare(sender, **kwargs) -> None:
    """Before the Django settings are read: a worker or beat started on its own (`celery -A
    memoryweb worker`) makes the local defaults as every other entry point does."""
    bootstrap.prepare()


@task_prerun.connect
@task_postrun.connect
def _connections_checked(task=None, **kwargs) -> None:
    """Before and after each task, what Django does around a request: a connection that is broken,
    in a bad state or older than CONN_MAX_AGE is closed; the others are kept for the next task."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


def enqueue(task, *args) -> bool:
    """Queue `task(*args)`; when the broker is down, log it and return False. For messages,
    conversations and exports the job state lives in Postgres, so the sweep (or the export cleanup)
    queues them again; a lost rewrite of a summary or digest is not retried (the erased text stays
    erased either way)."""
    try:
        task.delay(*args)
    except Exception:
        logger.exception("could not queue %s%r (is the broker down?)", task.name, args)
        return False
    return True


def worker_command(*options: str) -> list[str]:
    """The command line of a Celery worker of this project (`serve` runs one; so does a test)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "memoryweb",
        "worker",
        "--loglevel",
        "INFO",
        *options,
    ]


def beat_command(schedule_file: str) -> list[str]:
    """The command line of Celery beat, which sends the periodic jobs below (`serve` runs it apart
    from the worker, so that each is restarted on its own)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "memoryweb",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        schedule_file,
    ]


@app.on_after_finalize.connect
def _schedule_sweep(sender, **kwargs) -> None:
    from django.conf import settings

    # A periodic job still queued when its next one is sent is dropped (`expires`): a worker that
    # was down comes back to one of each, not a backlog of them ahead of the users' messages.
    every = settings.MEMORY_SWEEP_SECONDS
    sender.add_periodic_task(
        every, sender.signature("memories.tasks.sweep"), name="memory sweep", expires=every
    )
    sender.add_periodic_task(
        crontab(hour=settings.DIGEST_HOUR, minute=0, day_of_week=settings.DIGEST_WEEKDAY),
        sender.signature("memories.tasks.digest_all"),
        name="weekly digest",
    )
    for task, name in (
        ("accounts.tasks.cleanup_exports", "export cleanup"),
        ("chat.tasks.end_idle_conversations", "end idle conversations"),
        ("chat.tasks.delete_expired_temporary_chats", "temporary chats"),
        ("chat.tasks.delete_old_conversations", "conversation retention"),
        ("memories.tasks.apply_retention", "memory retention"),
        ("imports.tasks.cleanup_imports", "import cleanup"),
    ):
        sender.add_periodic_task(every, sender.signature(task), name=name, expires=every)
