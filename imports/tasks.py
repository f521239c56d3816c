"""Celery tasks of imports: thin interfaces that take ids and call idempotent services (each
imports its service inside its body, so that services can import the tasks they queue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="imports.tasks.run_import", acks_late=True)
def run_import(job_id: int) -> bool:
    from imports.services import import_run

    return import_run(job_id=job_id)


@shared_task(name="imports.tasks.cleanup_imports")
def cleanup_imports() -> dict[str, int]:
    """Queue lost jobs again, fail interrupted ones, cancel unchosen uploads, delete orphan files."""
    from imports.services import imports_cleanup

    return imports_cleanup()
