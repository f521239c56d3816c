"""An import's life: uploaded (`import_upload`: kept on disk, recognised, queued), read by the task
(`import_run`: the conversations listed, then the chosen ones stored and learned from, one at a
time), chosen (`import_start`), cancelled (`import_cancel`), deleted with what it brought
(`import_delete`), and cleaned up (`imports_cleanup`). The pages and the API call these."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.selectors import memory_policy
from accounts.services import lock_user
from chat.models import Conversation
from chat.services import PastMessage, conversation_delete, conversation_import
from imports.formats import ExportedConversation, ExportError, conversations, detect
from imports.formats import open_conversations as open_export
from imports.models import ImportItem, ImportJob
from imports.tasks import run_import as run_import_task
from memories.pipeline import conversation_finalize
from memoryweb.celery import enqueue

logger = logging.getLogger(__name__)

Status, State = ImportJob.Status, ImportItem.State
# Listing the file is the first LISTED_PERCENT of the progress; importing the chosen ones the rest.
LISTED_PERCENT = 10
# A RUNNING job silent this long was interrupted (its worker died): cleanup marks it failed. One
# conversation is learned from in one go, which with a language model can take a while.
STALE_AFTER = timedelta(hours=2)
# A QUEUED job this old may have lost its broker message: cleanup queues it again.
REQUEUE_AFTER = timedelta(minutes=2)
ITEM_BATCH = 500
MEMORY_OFF = (
    "Memory is switched off, or you have not consented to it: an import would teach nothing. "
    "Switch it on in Privacy → Memory settings first."
)


class ImportStopped(Exception):
    """The job was cancelled or deleted while it ran."""


def uploads_dir() -> Path:
    """The folder of uploads being imported, DATA_DIR/imports (created private on first use)."""
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _path(job: ImportJob) -> Path:
    return uploads_dir() / job.file_name


def upload_delete(file_name: str) -> None:
    if file_name:
        (uploads_dir() / file_name).unlink(missing_ok=True)


# --- Uploading ------------------------------------------------------------------------------------


def import_upload(*, user, upload: File, choose: bool = False) -> tuple[ImportJob, bool]:
    """Keep the upload and queue its import (after commit). Refused (ValidationError, with why) with
    memory off, for a file too large or empty, and for one that is no ChatGPT or Claude export.
    The same file again returns the job that has it (created False): it adds nothing. `choose`:
    stop after listing, for the user to pick conversations (`import_start`)."""
    if not memory_policy(user=user).extract:
        raise ValidationError(MEMORY_OFF)
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"The file is larger than {settings.IMPORT_MAX_UPLOAD_BYTES:,} bytes "
            "(IMPORT_MAX_UPLOAD_BYTES)."
        )
    if not upload.size:
        raise ValidationError("The file is empty.")
    file_name = f"{user.pk}-{secrets.token_hex(16)}.upload"
    path = uploads_dir() / file_name
    try:
        digest = _store(upload, path)
        with open_export(path) as (stream, _):
            source = detect(stream)
        with transaction.atomic():
            lock_user(user)  # one upload at a time: the same file twice finds the first
            same = ImportJob.objects.for_user(user).filter(
                file_sha256=digest, status__in=[*ImportJob.LIVE, Status.DONE]
            )
            if (existing := same.first()) is not None:
                path.unlink(missing_ok=True)
                return existing, False
            job = ImportJob.objects.create(
                user=user,
                source=source,
                choose=choose,
                file_name=file_name,
                file_sha256=digest,
                file_size=upload.size,
                heartbeat_at=timezone.now(),
            )
            transaction.on_commit(lambda: enqueue(run_import_task, job.pk))
    except ExportError as error:
        path.unlink(missing_ok=True)
        raise ValidationError(str(error)) from error
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job, True


def _store(upload: File, path: Path) -> str:
    """Write the upload to `path` (readable by this user only); its SHA-256."""
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        for chunk in upload.chunks():
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


# --- Choosing, cancelling, deleting ---------------------------------------------------------------


def import_start(*, job: ImportJob, positions: list[int] | None = None) -> ImportJob:
    """Import the chosen conversations (by their place in the file; None: all) of a job waiting for
    the choice; queued after commit. ValidationError when it is not waiting or none is chosen."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.CHOOSING:
            raise ValidationError("This import is not waiting for a choice.")
        pending = job.items.filter(state=State.PENDING)
        chosen = pending if positions is None else pending.filter(position__in=positions)
        count = chosen.count()
        if not count:
            raise ValidationError("Choose at least one conversation to import.")
        pending.exclude(pk__in=chosen.values("pk")).update(state=State.NOT_CHOSEN)
        job.status, job.choose, job.conversations_chosen = Status.QUEUED, False, count
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "choose", "conversations_chosen", "heartbeat_at"])
        transaction.on_commit(lambda: enqueue(run_import_task, job.pk))
    return job


def import_cancel(*, job: ImportJob) -> bool:
    """Stop a job that has not finished: it stops between two conversations, and what it imported
    so far stays (listed, deletable). False when it had finished already."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if not job.is_live:
            return False
        was_running = job.status == Status.RUNNING
        job.items.filter(state=State.PENDING).update(
            state=State.NOT_CHOSEN, note="cancelled before it was imported"
        )
        _end(job, Status.CANCELLED, keep_file=was_running)  # the task deletes it as it stops
    return True


def import_delete(*, job: ImportJob) -> dict[str, int]:
    """Delete an import and what it brought: its conversations with their messages, and what they
    alone taught (each through `chat.services.conversation_delete`); a running one is stopped
    first. Returns what went."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        ImportJob.objects.filter(pk=job.pk).update(status=Status.CANCELLED)  # stops the task
        conversation_ids = list(
            job.items.filter(conversation__isnull=False).values_list("conversation_id", flat=True)
        )
    deleted = {"conversations": 0, "messages": 0, "memories": 0}
    for conversation in Conversation.objects.for_user(job.user_id).filter(pk__in=conversation_ids):
        gone = conversation_delete(user=job.user, conversation=conversation)
        deleted["conversations"] += 1
        deleted["messages"] += gone["messages"]
        deleted["memories"] += gone["memories"]
    upload_delete(job.file_name)
    ImportJob.objects.filter(pk=job.pk).delete()
    logger.info("import %s of user %s deleted: %s", job.pk, job.user_id, deleted)
    return deleted


def _end(job: ImportJob, status: str, *, error: str = "", keep_file: bool = False) -> None:
    fields = {"status": status, "finished_at": timezone.now(), "error": error}
    if not keep_file:
        upload_delete(job.file_name)
        fields["file_name"] = ""
    ImportJob.objects.filter(pk=job.pk).update(**fields)


# --- The task's work ------------------------------------------------------------------------------


def import_run(*, job_id: int) -> bool:
    """Run a QUEUED job: list the file's conversations (once), stop there if the user is to
    choose, else store each chosen one and learn from it as from an ended chat. Idempotent: a
    job not queued is left alone. A failure marks it failed, saying how much went in."""
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job_id, status=Status.QUEUED, user__is_active=True).update(
        status=Status.RUNNING, heartbeat_at=now, started_at=now
    ):
        return False
    job = ImportJob.objects.select_related("user").get(pk=job_id)
    try:
        if not job.listed:
            _list(job)
        if job.choose:
            ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
                status=Status.CHOOSING, heartbeat_at=timezone.now()
            )
            return True
        _ingest(job)
        _end(job, Status.DONE)
        ImportJob.objects.filter(pk=job.pk).update(progress=100)
        return True
    except ImportStopped:
        upload_delete(job.file_name)
        ImportJob.objects.filter(pk=job.pk).update(file_name="")
    except ExportError as error:
        _fail(job, str(error))
    except Exception:
        logger.exception("import %s failed", job_id)
        _fail(job, "The import stopped on an error on our side.")
    return False


def _fail(job: ImportJob, reason: str) -> None:
    job = ImportJob.objects.filter(pk=job.pk).first()
    if job is None:  # deleted meanwhile (by its owner, or forget everything)
        return
    if job.conversations_imported:
        reason += (
            f" {job.conversations_imported} of the {job.conversations_chosen} chosen conversations"
            " were imported before it stopped; they stay until you delete this import."
        )
    elif job.listed:
        reason += " Nothing was imported."
    else:
        reason += " Nothing was imported: the file could not be read to its end."
    if job.status in ImportJob.LIVE:
        _end(job, Status.FAILED, error=reason)


def _tick(job_id: int, **fields) -> None:
    """Say the job is alive (with any counts); ImportStopped when it was cancelled or deleted."""
    if not ImportJob.objects.filter(pk=job_id, status=Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    ):
        raise ImportStopped(job_id)


def _list(job: ImportJob) -> None:
    """The first pass: one item per conversation of the file, with what will become of it."""
    imported_before = set(
        Conversation.objects.for_user(job.user)
        .filter(origin=job.source)
        .values_list("origin_id", flat=True)
    )
    seen: set[str] = set()
    batch: list[ImportItem] = []
    found = pending = 0
    with open_export(_path(job)) as (stream, size):
        for read in conversations(stream, job.source):
            state, note = _state(read, imported_before, seen)
            seen.add(read.external_id)
            batch.append(_item(job, read, state, note))
            found += 1
            pending += state == State.PENDING
            if len(batch) >= ITEM_BATCH:
                ImportItem.objects.bulk_create(batch)
                batch = []
                _tick(job.pk, progress=min(LISTED_PERCENT * stream.read_bytes // size, 9))
    ImportItem.objects.bulk_create(batch)
    if not found:
        raise ExportError("The export holds no conversations.")
    job.listed, job.conversations_found, job.conversations_chosen = True, found, pending
    _tick(
        job.pk,
        listed=True,
        conversations_found=found,
        conversations_chosen=pending,
        progress=LISTED_PERCENT,
    )


def _state(read: ExportedConversation, imported_before: set[str], seen: set[str]):
    if read.problem:
        return State.UNREADABLE, read.problem
    if read.external_id in seen:
        return State.DUPLICATE, ""
    if read.external_id in imported_before:
        return State.EXISTING, ""
    if not read.messages:
        return State.EMPTY, ""
    return State.PENDING, f"{read.cut} long messages cut" if read.cut else ""


def _item(job: ImportJob, read: ExportedConversation, state: str, note: str) -> ImportItem:
    return ImportItem(
        job=job,
        position=read.position,
        external_id=read.external_id,
        title=_title(read),
        said_at=read.created_at,
        messages=len(read.messages),
        state=state,
        note=note,
    )


def _title(read: ExportedConversation) -> str:
    """Its title there; untitled, the start of its first message (as a chat's title is)."""
    return read.title or (read.messages[0].text[:80] if read.messages else "")


def _ingest(job: ImportJob) -> None:
    """The second pass: each chosen conversation stored, then learned from, one at a time; the
    job's status is checked between two (cancel) and so is the memory policy."""
    pending = dict(job.items.filter(state=State.PENDING).values_list("position", "pk"))
    done = job.items.filter(state__in=[State.IMPORTED, State.EXISTING]).count()
    if not pending:
        return
    with open_export(_path(job)) as (stream, _):
        for read in conversations(stream, job.source):
            item_id = pending.pop(read.position, None)
            if item_id is None:
                continue
            if not memory_policy(user=job.user).extract:
                raise ExportError("Memory was switched off during the import.")
            conversation = _store_one(job, item_id, read)
            done += 1
            _tick(
                job.pk,
                conversations_done=done,
                progress=_percent(done, job.conversations_chosen),
            )
            if conversation is not None:
                _learn(conversation)
            if not pending:
                break
    if pending:
        raise ExportError("The file changed while it was imported.")


def _store_one(job: ImportJob, item_id: int, read: ExportedConversation) -> Conversation | None:
    """One conversation stored under the job's row lock (which cancelling and deleting take): the
    item says what became of it."""
    with transaction.atomic():
        # The user's lock first, as every writer of their data takes it (erasure too): one order,
        # no deadlock.
        lock_user(job.user_id)
        if not ImportJob.objects.select_for_update().filter(pk=job.pk, status=Status.RUNNING):
            raise ImportStopped(job.pk)
        conversation = conversation_import(
            user=job.user,
            origin=job.source,
            origin_id=read.external_id,
            title=_title(read),
            messages=[
                PastMessage(t.role, t.text, t.created_at or job.created_at, t.external_id)
                for t in read.messages
            ],
        )
        item = ImportItem.objects.filter(pk=item_id)
        if conversation is None:
            item.update(state=State.EXISTING)
            return None
        item.update(state=State.IMPORTED, conversation=conversation)
        ImportJob.objects.filter(pk=job.pk).update(
            conversations_imported=F("conversations_imported") + 1,
            messages_imported=F("messages_imported") + len(read.messages),
        )
    return conversation


def _learn(conversation: Conversation) -> None:
    """What a chat's end sets off, now: its messages processed, its summary written. A failure is
    the sweep's to retry; the import goes on."""
    try:
        conversation_finalize(conversation_id=conversation.pk)
    except Exception:
        logger.exception("learning from imported conversation %s failed", conversation.pk)


def _percent(done: int, chosen: int) -> int:
    return min(LISTED_PERCENT + (100 - LISTED_PERCENT) * done // max(chosen, 1), 99)


# --- Cleaning up ----------------------------------------------------------------------------------


def imports_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: queue again jobs whose task may be lost, fail interrupted ones, cancel uploads
    left without a choice for IMPORT_CHOICE_HOURS, and delete upload files no live job owns."""
    now = now or timezone.now()
    interrupted = ImportJob.objects.filter(
        status=Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    for job in interrupted:
        _fail(job, "The import was interrupted.")
    unchosen = ImportJob.objects.filter(
        status=Status.CHOOSING,
        heartbeat_at__lt=now - timedelta(hours=settings.IMPORT_CHOICE_HOURS),
    )
    for job in unchosen:
        import_cancel(job=job)
    lost = list(
        ImportJob.objects.filter(
            status=Status.QUEUED, heartbeat_at__lt=now - REQUEUE_AFTER, user__is_active=True
        ).values_list("pk", flat=True)
    )
    ImportJob.objects.filter(pk__in=lost).update(heartbeat_at=now)
    for job_id in lost:
        enqueue(run_import_task, job_id)
    result = {
        "interrupted": len(interrupted),
        "unchosen": len(unchosen),
        "requeued": len(lost),
        "orphans": _delete_orphans(now),
    }
    if any(result.values()):
        logger.info("import cleanup: %s", result)
    return result


def _delete_orphans(now: datetime) -> int:
    """Delete upload files no live job owns (left by a crash, or by a job that ended while its
    task was stopping), once older than REQUEUE_AFTER (an upload being written is not yet
    owned)."""
    live = set(ImportJob.objects.live().values_list("file_name", flat=True))
    old = (now - REQUEUE_AFTER).timestamp()
    deleted = 0
    for path in uploads_dir().iterdir():
        if path.is_file() and path.name not in live and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
