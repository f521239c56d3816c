"""The imports' share of a user's data: the import jobs and what each found in its file (the
conversations they brought are chat's, exported and erased with it), and the uploads kept while a
job runs."""

from __future__ import annotations

from typing import Any

from imports.models import ImportItem, ImportJob
from imports.services import upload_delete
from memoryweb.privacy import Erasure, PrivacyArea, register


@register
class ImportsArea(PrivacyArea):
    """Imports of other assistants' exports."""

    label = "imports"

    def export(self, user) -> dict[str, Any]:
        return export_user_data(user=user)

    def erase(self, user) -> Erasure:
        return erase_import_data(user=user)


def erase_import_data(*, user) -> Erasure:
    """Delete `user`'s import jobs, their items and any upload still kept (inside the caller's
    transaction; a task still running stops at its next check, finding its job gone)."""
    jobs = ImportJob.objects.for_user(user)
    for file_name in jobs.exclude(file_name="").values_list("file_name", flat=True):
        upload_delete(file_name)
    erasure = Erasure()
    erasure.deleted(jobs.delete())
    return erasure


def export_user_data(*, user) -> dict[str, Any]:
    items: dict[int, list[dict[str, Any]]] = {}
    for item in ImportItem.objects.for_user(user).order_by("job_id", "position"):
        items.setdefault(item.job_id, []).append(
            {
                "position": item.position,
                "external_id": item.external_id,
                "title": item.title,
                "said_at": item.said_at,
                "messages": item.messages,
                "state": item.state,
                "note": item.note,
                "conversation_id": item.conversation_id,
            }
        )
    jobs = [
        {
            "id": job.pk,
            "source": job.source,
            "status": job.status,
            "choose": job.choose,
            "listed": job.listed,
            "progress": job.progress,
            "file_sha256": job.file_sha256,
            "file_size": job.file_size,
            "conversations_found": job.conversations_found,
            "conversations_chosen": job.conversations_chosen,
            "conversations_done": job.conversations_done,
            "conversations_imported": job.conversations_imported,
            "messages_imported": job.messages_imported,
            "error": job.error,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "heartbeat_at": job.heartbeat_at,
            "finished_at": job.finished_at,
            "items": items.get(job.pk, []),
        }
        for job in ImportJob.objects.for_user(user).order_by("created_at", "id")
    ]
    return {"imports": jobs}
