from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from memoryweb.models import OwnedQuerySet
from vault.fields import EncryptedTextField, PreallocatedAutoField


class ConversationQuerySet(OwnedQuerySet):
    def open(self) -> ConversationQuerySet:
        return self.filter(ended_at__isnull=True)


class Conversation(models.Model):
    """A chat session. It ends by the user's button, the API, or by itself when idle; or a past
    conversation imported from another assistant (`origin`), ended from the start."""

    class Origin(models.TextChoices):
        CHATGPT = "chatgpt", "ChatGPT"
        CLAUDE = "claude", "Claude"

    # Drawn before the INSERT: the encrypted text binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = EncryptedTextField(owner="user_id", blank=True)
    # A temporary chat neither reads nor writes memory and is deleted after the user's set time.
    temporary = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_index=True)
    last_activity_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set by the worker once every message is processed after the end (job state for the sweep).
    finalized_at = models.DateTimeField(null=True, blank=True)
    # When its finalization was last sent to the broker: the sweep sends it again only after
    # SWEEP_GRACE.
    finalize_queued_at = models.DateTimeField(null=True, blank=True)
    # Imported: where from (blank: said here) and its id there, so one is never imported twice.
    origin = models.CharField(max_length=20, choices=Origin.choices, blank=True)
    origin_id = models.CharField(max_length=200, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "origin", "origin_id"],
                condition=~Q(origin=""),
                name="conversation_origin_once",
            )
        ]

    def __str__(self) -> str:  # no user text here: str() shows up in the admin and in logs
        return f"Conversation {self.pk}"

    @property
    def display_title(self) -> str:
        """The title shown to its owner: the start of the first message."""
        return self.title or f"Conversation {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class MessageQuerySet(OwnedQuerySet):
    owner = "conversation__user"

    def unprocessed(self) -> MessageQuerySet:
        return self.filter(role=Message.Role.USER, processed_at__isnull=True)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    # Drawn before the INSERT: the encrypted text binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = EncryptedTextField(owner="conversation.user_id")
    created_at = models.DateTimeField(db_index=True)
    # Imported transcripts keep their speaker's name and their own id (e.g. LoCoMo's dia_id).
    speaker = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    # Job state: when the worker extracted memories and embedded the episode of this user message.
    processed_at = models.DateTimeField(null=True, blank=True)
    # When its processing was last sent to the broker: the sweep sends it again only after
    # SWEEP_GRACE (a task is not queued twice while the worker works through a backlog).
    queued_at = models.DateTimeField(null=True, blank=True)
    # The user had what this message taught forgotten (or asked to forget something in it): it is no
    # longer summarized or recalled.
    excluded_from_memory = models.BooleanField(default=False)
    used_memories = models.ManyToManyField(
        "memories.Memory", through="Recall", related_name="used_in", blank=True
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="message_unprocessed_idx",
                condition=Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"


class Recall(models.Model):
    """One item of memory that went into an assistant reply's context: a memory or an episode."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="recalls")
    memory = models.ForeignKey("memories.Memory", null=True, blank=True, on_delete=models.CASCADE)
    episode = models.ForeignKey("memories.Episode", null=True, blank=True, on_delete=models.CASCADE)
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=Q(memory__isnull=False, episode__isnull=True)
                | Q(memory__isnull=True, episode__isnull=False),
                name="recall_memory_xor_episode",
            )
        ]

    def __str__(self) -> str:
        return f"recall #{self.rank} of message {self.message_id}"
