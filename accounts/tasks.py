"""Celery tasks of the accounts app: thin interfaces that take ids and call idempotent services.
Each imports its service in its body: the services import these tasks to queue them."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="accounts.tasks.build_export", acks_late=True)
def build_export(export_id: int) -> bool:
    """Build one data export. Does nothing when it is already built, expired, or gone with its
    user."""
    from accounts.export.jobs import export_build

    return export_build(export_id=export_id)


@shared_task(name="accounts.tasks.cleanup_exports")
def cleanup_exports() -> dict[str, int]:
    """Expire exports past their link's life (deleting the files) and pick up lost or interrupted
    ones."""
    from accounts.export.jobs import exports_cleanup

    return exports_cleanup()
