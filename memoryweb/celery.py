"""Celery wiring: settings come from Django's (CELERY_ prefix); tasks are found in each app's tasks.py."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

app = Celery("memoryweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweep(sender, **kwargs) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        settings.MEMORY_SWEEP_SECONDS, sender.signature("memories.tasks.sweep"), name="memory sweep"
    )
    sender.add_periodic_task(
        crontab(hour=settings.DIGEST_HOUR, minute=0, day_of_week=settings.DIGEST_WEEKDAY),
        sender.signature("memories.tasks.digest_all"),
        name="weekly digest",
    )
    sender.add_periodic_task(
        settings.MEMORY_SWEEP_SECONDS, sender.signature("accounts.tasks.cleanup_exports"), name="export cleanup"
    )
