"""The export's life: asked for (`export_request`), built by accounts.tasks.build_export with a
progress percentage (`export_build`), downloaded (`export_archive`) until `expires_at`
(EXPORT_LINK_HOURS), then expired and its file deleted (`export_expire`, `exports_cleanup`)."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.export.document import export_document, export_markdown
from accounts.models import DataExport, User
from accounts.privacy import export_paths, exports_dir
from accounts.tasks import build_export as build_export_task
from memoryweb.celery import enqueue

logger = logging.getLogger(__name__)

# A RUNNING export not finished after this was interrupted (its worker died): cleanup marks it
# failed.
STALE_AFTER = timedelta(hours=1)
# A PENDING export this old may have lost its broker message: cleanup queues it again.
REQUEUE_AFTER = timedelta(minutes=2)


class ExportCancelled(Exception):
    """The export row went away while building (erased, or the account deleted)."""


class ExportExpired(Exception):
    """The export's download link is past its life: its file is deleted (answered 410 Gone)."""


class ExportNotFound(Exception):
    """The export has no archive to download: not built yet, failed, or its file is gone (answered
    404)."""


# --- Building -------------------------------------------------------------------------------------


def export_request(*, user) -> tuple[DataExport, bool]:
    """Ask for a new export of `user`'s data; it is built by a task after commit. While one is still
    being prepared, that one is returned instead (created False)."""
    with transaction.atomic():
        # one request at a time per user
        User.objects.select_for_update().filter(pk=user.pk).first()
        if (running := DataExport.objects.for_user(user).in_progress().first()) is not None:
            return running, False
        export = DataExport.objects.create(user=user)
        transaction.on_commit(lambda: _enqueue_build(export.pk))
    return export, True


def _enqueue_build(export_id: int) -> None:
    enqueue(build_export_task, export_id)  # the broker down: the periodic cleanup queues it again


def export_build(*, export_id: int) -> bool:
    """Build a PENDING export: each app's data into export.json + export.md in the zip, with
    progress. Idempotent: an export already claimed, ready, failed or expired (or gone) is left
    alone. Returns whether this call built it."""
    now = timezone.now()
    claimed = DataExport.objects.filter(
        pk=export_id, status=DataExport.Status.PENDING, user__is_active=True
    ).update(status=DataExport.Status.RUNNING, started_at=now, progress=1)
    if not claimed:
        return False
    export = DataExport.objects.select_related("user").get(pk=export_id)
    path, partial = export_paths(user_id=export.user_id, token=export.token)
    try:
        document = export_document(
            user=export.user, on_progress=lambda p: _progress(export_id, max(p, 1))
        )
        markdown = export_markdown(document)
        _progress(export_id, 90)
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("export.json", json.dumps(document, ensure_ascii=False, indent=2))
            archive.writestr("export.md", markdown)
        os.chmod(partial, 0o600)
        os.replace(partial, path)
        _progress(export_id, 95)
        return _finish(export, path)
    except ExportCancelled:
        _delete_files(path, partial)
        return False
    except Exception:
        logger.exception("export %s failed", export_id)
        _delete_files(path, partial)
        DataExport.objects.filter(pk=export_id, status=DataExport.Status.RUNNING).update(
            status=DataExport.Status.FAILED,
            error="The export could not be built. Please prepare a new one.",
        )
        return False


def _progress(export_id: int, percent: int) -> None:
    if not DataExport.objects.filter(pk=export_id, status=DataExport.Status.RUNNING).update(
        progress=percent
    ):
        raise ExportCancelled(export_id)


def _finish(export: DataExport, path: Path) -> bool:
    """Mark it ready under the user's row lock, the lock erasure takes: if the export was erased
    while it was built, delete what was written instead."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=export.user_id).first()
        if (
            not DataExport.objects.select_for_update()
            .filter(pk=export.pk, status=DataExport.Status.RUNNING)
            .exists()
        ):
            _delete_files(path)
            return False
        now = timezone.now()
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.READY,
            progress=100,
            file_name=path.name,
            finished_at=now,
            expires_at=now + timedelta(hours=settings.EXPORT_LINK_HOURS),
        )
    logger.info("export %s of user %s ready", export.pk, export.user_id)
    return True


# --- Downloading, expiring, cleaning up -----------------------------------------------------------


def export_expire(*, export: DataExport) -> None:
    """End a ready export's life: delete its file and mark it expired."""
    if export.file_name:
        _delete_files(exports_dir() / export.file_name)
    DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.EXPIRED, file_name="")
    export.status, export.file_name = DataExport.Status.EXPIRED, ""


def exports_outdate(*, user_id: int) -> int:
    """After an erasure of the user's data: every export made before it holds what was erased, so a
    ready one is expired (its file deleted) and one being prepared fails (its build stops, or deletes
    what it wrote). Returns how many exports this ended."""
    ended = 0
    for export in DataExport.objects.filter(user_id=user_id, status=DataExport.Status.READY):
        export_expire(export=export)
        ended += 1
    ended += DataExport.objects.filter(
        user_id=user_id, status__in=[DataExport.Status.PENDING, DataExport.Status.RUNNING]
    ).update(
        status=DataExport.Status.FAILED,
        error="Some of your data was erased while this export was prepared. Please prepare a new one.",
    )
    return ended


def export_archive(*, export: DataExport) -> tuple[Path, str]:
    """The archive of an export to download, and the file name to give it. An export whose link just
    ran out is expired now (its file deleted: the first late request does what the cleanup would).
    Raises ExportExpired for an expired export, ExportNotFound for one not ready (pending, failed,
    file gone)."""
    if export.status == DataExport.Status.READY and not export.is_downloadable:
        export_expire(export=export)
    if export.status == DataExport.Status.EXPIRED:
        raise ExportExpired(export.pk)
    path = exports_dir() / export.file_name
    if not export.is_downloadable or not export.file_name or not path.is_file():
        raise ExportNotFound(export.pk)
    return path, f"memoryweb-export-{export.user.username}-{export.created_at:%Y-%m-%d}.zip"


def exports_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: expire ready exports past `expires_at` (files deleted), fail interrupted or
    abandoned ones, queue again pending ones whose task may be lost, and delete files no live export
    owns."""
    now = now or timezone.now()
    expired = list(DataExport.objects.filter(status=DataExport.Status.READY, expires_at__lte=now))
    for export in expired:
        export_expire(export=export)
    interrupted = DataExport.objects.filter(
        status=DataExport.Status.RUNNING, started_at__lt=now - STALE_AFTER
    )
    abandoned = DataExport.objects.filter(
        status=DataExport.Status.PENDING,
        created_at__lt=now - timedelta(hours=settings.EXPORT_LINK_HOURS),
    )
    failed = (interrupted | abandoned).update(
        status=DataExport.Status.FAILED,
        error="The export was interrupted. Please prepare a new one.",
    )
    pending = list(
        DataExport.objects.filter(
            status=DataExport.Status.PENDING,
            created_at__lt=now - REQUEUE_AFTER,
            user__is_active=True,
        ).values_list("pk", flat=True)
    )
    for export_id in pending:
        enqueue(build_export_task, export_id)
    result = {
        "expired": len(expired),
        "failed": failed,
        "requeued": len(pending),
        "orphans": _delete_orphans(now),
    }
    if any(result.values()):
        logger.info("export cleanup: %s", result)
    return result


def _delete_orphans(now: datetime) -> int:
    """Delete files in the exports folder that no running or ready export owns (left by a crash),
    once older than REQUEUE_AFTER (a build that has just started may not be visible yet)."""
    live = DataExport.objects.filter(
        status__in=[DataExport.Status.RUNNING, DataExport.Status.READY]
    )
    tokens = set(live.values_list("token", flat=True))
    old = (now - REQUEUE_AFTER).timestamp()
    deleted = 0
    for path in exports_dir().iterdir():
        token = path.name.split("-", 1)[-1].removesuffix(".part").removesuffix(".zip")
        if path.is_file() and token not in tokens and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def _delete_files(*paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
