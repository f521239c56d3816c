from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorField
from django.db import models
from django.db.models import Func, Q, TextField, Value
from django.utils import timezone
from pgvector.django import SparseVectorField, VectorField

from memories.poisoning import injection_reasons
from memories.sensitive import sensitive_categories as categories_touched
from memoryweb.models import OwnedQuerySet
from vault.fields import EncryptedTextField, PreallocatedAutoField

EMBEDDING_DIMENSIONS = settings.EMBEDDING_DIMENSIONS
LEXICAL_DIMENSIONS = 1_000_000_000  # pgvector's largest sparsevec: a user's terms seldom collide
ALL_TURNS = 0  # the TurnTerm row that counts a user's turns (term ids start at 1)


class TextSearchQuerySet(OwnedQuerySet):
    def with_words(self, query: str):
        """Rows whose text has every word of `query`, a word matching as a prefix too ("bicyc" finds
        "bicycles"), found by the `search` column: the text itself is encrypted."""
        words = re.findall(r"[^\W_]+", query.lower())[:10]
        if not words:
            return self
        tsquery = SearchQuery(
            " & ".join(f"{word}:*" for word in words), search_type="raw", config="english"
        )
        return self.filter(search=tsquery)


class MemoryQuerySet(TextSearchQuerySet):
    def current(self) -> MemoryQuerySet:
        """Memories true now: not superseded or expired."""
        return self.filter(valid_until__isnull=True)

    def saying(self, kind: str, text: str) -> MemoryQuerySet:
        """The current memory of `kind` that states `text` (same fingerprint; at most one per
        user)."""
        # Imported here: memories.extraction loads the openai SDK (0.4 s), which every process would
        # pay for at start when the models load.
        from memories.extraction import fingerprint

        return self.current().filter(kind=kind, fingerprint=fingerprint(text))

    def usable(self, policy) -> MemoryQuerySet:
        """What may be used in replies, context, banners and digests under an
        `accounts.selectors.MemoryPolicy`: current, approved by review, not switched off by the user
        ("don't use this"), confident enough, and of no special category the user has not opted in
        to. Nothing when memory may not be used at all."""
        if not policy.inject:
            return self.none()
        ended = models.Q(ends_at__isnull=False, ends_at__lte=timezone.now())
        return (
            self.current()
            .exclude(ended)
            .filter(
                sensitive_categories__contained_by=sorted(policy.sensitive_categories),
                review_status=Memory.Review.APPROVED,
                use_in_context=True,
                confidence__gte=settings.CONTEXT_MIN_CONFIDENCE,
            )
        )


class FullTextSearchable(models.Model):
    """A `search` column: the English tsvector of the (encrypted) `text`, which the database cannot
    compute itself, so every save that writes `text` writes it too, in the same statement. Plain
    derived data: the text's stemmed words without their positions (stripped), so the text cannot be
    read back in order; erased with the row."""

    search = SearchVectorField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "text" in update_fields:
            self.search = search_vector(self.text)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "search"}
        super().save(*args, **kwargs)
        self.__dict__.pop("search", None)  # an expression until read again from the database


def search_vector(text: str) -> Func:
    """The expression that writes a `search` column for `text` (in `save()`, or a `bulk_create`)."""
    vector = SearchVector(Value(text, output_field=TextField()), config="english")
    return Func(vector, function="strip", output_field=SearchVectorField())


class Memory(FullTextSearchable):
    """One remembered thing about a user (semantic or procedural memory), with its provenance."""

    class Kind(models.TextChoices):
        FACT = "fact", "Fact"
        PREFERENCE = "preference", "Preference"
        RELATIONSHIP = "relationship", "Relationship"
        PROJECT = "project", "Project"
        INSTRUCTION = "instruction", "Instruction"
        EVENT = "event", "Event"

    class Review(models.TextChoices):
        APPROVED = "approved", "Approved"
        PENDING = "pending", "Held for review"
        REJECTED = "rejected", "Rejected"

    class Source(models.TextChoices):
        STATED = "stated", "Said by you"
        INFERRED = "inferred", "Inferred"
        API = "api", "Pushed by an app"
        ADMIN = "admin", "Added by an admin"

    # Drawn before the INSERT: the encrypted text binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(
        max_length=200, help_text="What it is about, e.g. 'diet', 'person:Sam'."
    )
    text = EncryptedTextField(owner="user_id", help_text="The memory as a sentence about the user.")
    attributes = models.JSONField(default=dict, blank=True)
    # Normalised text: the same memory stated twice has the same fingerprint (and is stored once).
    fingerprint = models.CharField(max_length=64)
    confidence = models.FloatField(default=0.8)
    importance = models.FloatField(default=0.5)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.STATED)
    pinned = models.BooleanField(default=False, help_text="The user asked to remember this.")
    sensitive_categories = ArrayField(
        models.CharField(max_length=20),
        default=list,
        blank=True,
        help_text="The special categories (GDPR art. 9) the text touches, if any: it is used only when the user "
        "opted in to every one of them.",
    )
    review_status = models.CharField(
        max_length=10,
        choices=Review.choices,
        default=Review.APPROVED,
        help_text="Only approved memories are used.",
    )
    flag_reasons = models.JSONField(
        default=list, blank=True, help_text="Why the poisoning check held it."
    )
    use_in_context = models.BooleanField(
        default=True, help_text='Off: kept, but never injected ("don\'t use this").'
    )
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text='True only until then ("I\'m in Lisbon until Friday"): not used after it.',
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="superseded"
    )
    source_messages = models.ManyToManyField("chat.Message", related_name="memories", blank=True)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    recall_count = models.PositiveIntegerField(default=0)
    last_recalled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "-created_at"]
        verbose_name_plural = "memories"
        permissions = [
            ("view_memory_text", "Can read the text of users' memories and messages"),
            ("moderate_memory", "Can approve or reject memories held for review"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "fingerprint"],
                condition=Q(valid_until__isnull=True),
                name="memory_current_unique",
            )
        ]
        # No approximate (HNSW) index on `embedding`: every vector search is one user's, and the
        # planner could walk a whole-table index and filter it by user afterwards, returning fewer
        # rows than asked; a user's rows, found by the user, are ranked exactly (docs/scaling.md).
        indexes = [
            models.Index(fields=["user", "kind", "subject"], name="memory_user_subject_idx"),
            GinIndex(fields=["search"], name="memory_search_gin"),
        ]

    def __str__(self) -> str:  # no user text here: str() shows up in the admin and in logs
        return f"{self.kind} memory {self.pk}"

    @property
    def ends_on(self):
        """The last day it is used, on its owner's clock (None: true for good)."""
        if self.ends_at is None:
            return None
        return self.user.local(self.ends_at - timedelta(microseconds=1)).date()


class _KindManager(models.Manager):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def get_queryset(self):
        return MemoryQuerySet(self.model, using=self._db).filter(kind=self.kind)

    def deconstruct(self):  # migrations rebuild it from the proxy's kind
        return (False, "django.db.models.Manager", None, [], {})


class Fact(Memory):
    """Facts only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.FACT
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "fact"
        verbose_name_plural = "facts"


class Preference(Memory):
    """Preferences only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.PREFERENCE
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "preference"
        verbose_name_plural = "preferences"


class Relationship(Memory):
    """Relationships only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.RELATIONSHIP
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "relationship"
        verbose_name_plural = "relationships"


class Project(Memory):
    """Projects only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.PROJECT
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "project"
        verbose_name_plural = "projects"


class Instruction(Memory):
    """Instructions only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.INSTRUCTION
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "instruction"
        verbose_name_plural = "instructions"


class Event(Memory):
    """Events only: a typed view for the admin, without logic of its own."""

    KIND = Memory.Kind.EVENT
    objects = _KindManager(KIND)

    class Meta:
        proxy = True
        verbose_name = "event"
        verbose_name_plural = "events"


class _HeldManager(models.Manager):
    def get_queryset(self):
        return MemoryQuerySet(self.model, using=self._db).filter(
            review_status=Memory.Review.PENDING
        )


class HeldMemory(Memory):
    """Memories held for review: the admin's moderation queue."""

    objects = _HeldManager()

    class Meta:
        proxy = True
        verbose_name = "memory held for review"
        verbose_name_plural = "moderation queue"


class MemoryRevision(models.Model):
    """What changed in a memory, when and by whom. Erased together with its memory."""

    class Actor(models.TextChoices):
        EXTRACTOR = "extractor", "Extractor"
        USER = "user", "User"
        ADMIN = "admin", "Admin"
        API = "api", "API"

    class Action(models.TextChoices):
        ADD = "add", "Added"
        REINFORCE = "reinforce", "Said again"
        UPDATE = "update", "Rewritten with more detail"
        SUPERSEDE = "supersede", "Replaced by a newer memory"
        RESTORE = "restore", "Current again (what replaced it was erased)"
        UNDO = "undo", "Rewrite undone (its conversation was deleted)"
        EDIT = "edit", "Edited by the user"
        USE = "use", "Used again in replies"
        DONT_USE = "dont-use", "Not to be used in replies"
        REPORT = "report", "Reported"
        APPROVE = "approve", "Approved by a moderator"
        REJECT = "reject", "Rejected by a moderator"

    # Drawn before the INSERT: the encrypted text binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="revisions")
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.CharField(max_length=20, choices=Actor.choices)
    old_text = EncryptedTextField(owner="memory.user_id", blank=True)
    new_text = EncryptedTextField(owner="memory.user_id", blank=True)
    message = models.ForeignKey("chat.Message", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"


class EpisodeQuerySet(TextSearchQuerySet):
    pass


class Episode(FullTextSearchable):
    """An embedded slice of a conversation (a turn, or a summary) for episodic recall."""

    class Kind(models.TextChoices):
        TURN = "turn", "Turn"
        SUMMARY = "summary", "Conversation summary"
        DIGEST = "digest", "Periodic digest"

    # Drawn before the INSERT: the encrypted text binds its token to the row id (vault.fields).
    id = PreallocatedAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="episodes"
    )
    # None for a digest, which spans conversations.
    conversation = models.ForeignKey(
        "chat.Conversation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="episodes",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Idempotency key: e.g. "turn:<user message id>"; processing the same turn twice updates one
    # row.
    key = models.CharField(max_length=100)
    text = EncryptedTextField(owner="user_id")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    messages = models.ManyToManyField("chat.Message", related_name="episodes")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    # A turn's BM25 term weights by hashed term (memories.lexical): no word, only numbers.
    lexical = SparseVectorField(dimensions=LEXICAL_DIMENSIONS, null=True, blank=True)
    # Who said a turn (its message's speaker), for ranking without reading the message.
    speaker = models.CharField(max_length=100, blank=True, default="")
    # What the text was found to hold when it was written, so that retrieval filters in SQL instead
    # of reading every candidate: why it reads as an order to the assistant (then it is never quoted
    # into a context), and the special categories it touches (quoted only when opted in to).
    flag_reasons = models.JSONField(default=list, blank=True, editable=False)
    sensitive_categories = ArrayField(
        models.CharField(max_length=20), default=list, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EpisodeQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="episode_user_key_unique")
        ]
        # No HNSW index on `embedding`, as for memories: a user's turns are ranked exactly.
        indexes = [
            models.Index(fields=["user", "kind"], name="episode_user_kind_idx"),
            GinIndex(fields=["search"], name="episode_search_gin"),
            # the speakers a query may name (`memories.lexical.named_speakers`), read before its vector
            models.Index(
                fields=["user", "speaker"],
                name="episode_turn_speaker_idx",
                condition=models.Q(kind="turn"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "text" in update_fields:
            self.flag_reasons, self.sensitive_categories = episode_checks(self.text)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "flag_reasons", "sensitive_categories"}
        super().save(*args, **kwargs)


def episode_checks(text: str) -> tuple[list[str], list[str]]:
    """An episode's `flag_reasons` and `sensitive_categories`, from its text."""
    return injection_reasons(text), sorted(categories_touched(text))


class TurnTerm(models.Model):
    """In how many of a user's turn episodes a term occurs (term 0: how many turns there are), for
    BM25's idf. Kept by database triggers on the episodes table (migration 0016), so that every way
    a row is written or deleted keeps it right; never written by the application."""

    pk = models.CompositePrimaryKey("user", "term")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    term = models.IntegerField()  # memories.lexical.term_id, or ALL_TURNS
    turns = models.IntegerField()

    def __str__(self) -> str:
        return f"term {self.term}: {self.turns}"
