from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.models import Conversation
from memoryweb.models import OwnedQuerySet
from vault.fields import EncryptedTextField, PreallocatedAutoField


class ImportJobQuerySet(OwnedQuerySet):
    def live(self) -> ImportJobQuerySet:
        """Jobs that hold their upload: not finished yet."""
        return self.filter(status__in=ImportJob.LIVE)


class ImportJob(models.Model):
    """One upload of another assistant's data export, read by a task: listed (the user may choose
    which conversations), then imported conversation by conversation. The uploaded file is kept
    only while the job needs it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Importing"
        CHOOSING = "choosing", "Waiting for your choice"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    LIVE = (Status.QUEUED, Status.RUNNING, Status.CHOOSING)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs"
    )
    source = models.CharField(
        max_length=20,
        choices=Conversation.Origin.choices,
        blank=True,
        help_text="Blank: not read yet.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Stop after listing the conversations, for the user to choose (the portal); the API's default
    # imports them all.
    choose = models.BooleanField(default=False)
    listed = models.BooleanField(default=False, help_text="The file was read once: items exist.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    file_name = models.CharField(
        max_length=200, blank=True, help_text="The upload's name in DATA_DIR/imports, while kept."
    )
    file_sha256 = models.CharField(max_length=64, db_index=True)
    file_size = models.BigIntegerField()
    conversations_found = models.PositiveIntegerField(default=0)
    conversations_chosen = models.PositiveIntegerField(default=0)
    conversations_done = models.PositiveIntegerField(
        default=0, help_text="Of the chosen ones: imported, or skipped (already there, empty)."
    )
    conversations_imported = models.PositiveIntegerField(default=0)
    messages_imported = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The task writes here as it goes: one running with no sign of life for long was interrupted.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="import_job_progress_max"
            )
        ]

    def __str__(self) -> str:
        return f"import {self.pk} of user {self.user_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE


class ImportItemQuerySet(OwnedQuerySet):
    owner = "job__user"


class ImportItem(models.Model):
    """One conversation found in an import's file: what it is (title, date, messages), whether the
    user chose it, and what became of it (the conversation it became, while that exists)."""

    class State(models.TextChoices):
        PENDING = "pending", "To import"
        NOT_CHOSEN = "not_chosen", "Not chosen"
        IMPORTED = "imported", "Imported"
        EXISTING = "existing", "Imported before"
        DUPLICATE = "duplicate", "Twice in the file"
        EMPTY = "empty", "Nothing said in it"
        UNREADABLE = "unreadable", "Could not be read"

    # Drawn before the INSERT: the encrypted title binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="Its place in the file, from 0.")
    external_id = models.CharField(max_length=200, blank=True)
    title = EncryptedTextField(owner="job.user_id", blank=True)
    said_at = models.DateTimeField(null=True, blank=True)
    messages = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    note = models.CharField(max_length=200, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ImportItemQuerySet.as_manager()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="import_item_position_once")
        ]

    def __str__(self) -> str:  # no user text: str() shows up in the admin and in logs
        return f"item {self.position} of import {self.job_id}"
