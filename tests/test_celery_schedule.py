"""The beat schedule: each periodic job expires when its next one is due, so that a worker that
was down for a while is not held up by a backlog of them ahead of the users' messages."""

from __future__ import annotations

from django.conf import settings

from memoryweb.celery import app


def test_every_periodic_job_but_the_digest_expires_at_its_next_run():
    app.loader.import_default_modules()
    app.finalize(auto=True)
    entries = app.conf.beat_schedule
    periodic = {name: e for name, e in entries.items() if name != "weekly digest"}

    assert "memory sweep" in periodic and len(periodic) == 7
    for entry in periodic.values():
        assert entry["schedule"] == settings.MEMORY_SWEEP_SECONDS
        assert entry["options"]["expires"] == settings.MEMORY_SWEEP_SECONDS


def test_the_filesystem_broker_looks_for_the_next_task_ten_times_a_second():
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] == 0.1
