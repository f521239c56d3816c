"""An import run by a real Celery worker process on Redis, as in production: the upload's
on_commit queues the job, the worker reads the file from the data folder, imports and learns, and
the test watches the result in PostgreSQL (the worker fixture of tests/memories/test_worker.py:
Redis db 15, skipped without Redis)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat.models import Conversation, Message
from imports.models import ImportJob
from imports.services import import_upload, uploads_dir
from memories.models import Memory
from tests.imports.exports import as_json, as_zip, sample_chatgpt
from tests.memories.test_worker import TASK_TIMEOUT

FIRST_IMPORT_TIMEOUT = 2 * TASK_TIMEOUT  # the worker loads the embedding model on its first task


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_imports_an_upload_and_learns_from_it(alice, celery_worker_process):
    worker = celery_worker_process
    upload = SimpleUploadedFile("chatgpt.zip", as_zip(as_json(sample_chatgpt())))

    job, created = import_upload(user=alice, upload=upload)  # committed: queued through Redis

    def done() -> bool:
        job.refresh_from_db()
        return job.status not in ImportJob.LIVE

    worker.wait_until(done, timeout=FIRST_IMPORT_TIMEOUT, what="the import to finish")
    assert created and job.status == "done", job.error
    assert job.conversations_imported == 2 and job.progress == 100
    assert Conversation.objects.for_user(alice).filter(origin="chatgpt").count() == 2
    assert not Message.objects.for_user(alice).unprocessed().exists()
    assert any("Lisbon" in m.text for m in Memory.objects.for_user(alice))
    assert not (uploads_dir() / job.file_name).is_file() and job.file_name == ""
