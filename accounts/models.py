from __future__ import annotations

import json
import secrets
import uuid
import zoneinfo
from datetime import datetime
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from memoryweb.models import OwnedQuerySet


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class User(AbstractUser):
    """The product's user; custom from the first migration so it can grow without a table swap."""

    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA name, e.g. Europe/Paris: what 'today', 'yesterday' or 'next Friday' mean for this user.",
    )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone if self.time_zone in time_zone_names() else "UTC")

    def local(self, moment: datetime) -> datetime:
        """`moment` on the user's clock (timezone-aware)."""
        return moment.astimezone(self.zone)


class MemorySettings(models.Model):
    """The user's switches for memory. Private by default: past chats and sensitive categories are
    off."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="memory_settings",
    )
    memory_enabled = models.BooleanField(
        default=True, help_text="Off: nothing is extracted or injected."
    )
    use_past_chats = models.BooleanField(
        default=False,
        help_text="Let the assistant recall earlier conversations (turns and summaries).",
    )
    temporary_chat_hours = models.PositiveIntegerField(
        default=24, help_text="Temporary chats are deleted this long after they were last used."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "memory settings"  # also the kind an erasure receipt counts

    def __str__(self) -> str:
        return f"memory settings of user {self.user_id}"


class ConsentRecordQuerySet(OwnedQuerySet):
    pass


class SensitiveCategory(models.TextChoices):
    """Special categories of personal data (GDPR art. 9): not kept unless the user opts in."""

    HEALTH = "health", "Health"
    RELIGION = "religion", "Religion or beliefs"
    SEXUALITY = "sexuality", "Sexual orientation or sex life"
    POLITICS = "politics", "Political opinions"
    ETHNICITY = "ethnicity", "Racial or ethnic origin"
    UNION = "union", "Trade-union membership"
    GENETIC = "genetic", "Genetic or biometric data"


class ConsentRecord(models.Model):
    """One grant or withdrawal of consent for a purpose; the newest record per purpose is in
    force."""

    class Purpose(models.TextChoices):
        MEMORY = "memory", "Remember what I tell the assistant (memory extraction)"

    SENSITIVE_PREFIX = "sensitive:"  # + a category, e.g. "sensitive:health"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents"
    )
    purpose = models.CharField(max_length=100)
    granted = models.BooleanField()
    policy_version = models.CharField(max_length=20)
    method = models.CharField(
        max_length=50, help_text="How it was given: 'signup form', 'consent page', 'api'."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{'granted' if self.granted else 'withdrawn'} {self.purpose} ({self.policy_version})"
        )


class ApiKeyQuerySet(OwnedQuerySet):
    def active(self) -> ApiKeyQuerySet:
        """Neither revoked nor expired: the keys that authenticate."""
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiKey(models.Model):
    """A personal API key, limited to the scopes its owner chose and, optionally, to a lifetime.
    Only its SHA-256 is stored; the key itself is shown once at creation."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=12, help_text="The key's first characters, to recognise it."
    )
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(
        default=list, help_text="Values of accounts.scopes.Scope: what the key may do."
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Set: the key stops working then. Empty: never expires."
    )

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.ACTIVE


class RegisteredAppQuerySet(models.QuerySet):
    def active(self) -> RegisteredAppQuerySet:
        return self.filter(disabled_at__isnull=True)


class RegisteredApp(models.Model):
    """An app an operator registered (in the admin) that may read or write a user's memory over the
    API, but only for users who granted it access in the portal. It authenticates with its own
    secret (only its SHA-256 is stored; the secret is shown once, when the app is registered)."""

    name = models.CharField(
        max_length=100, unique=True, help_text="Shown to users on the apps page."
    )
    description = models.TextField(
        blank=True, help_text="What the app does with memory, for users."
    )
    prefix = models.CharField(
        max_length=14, editable=False, help_text="The secret's first characters."
    )
    hashed_secret = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(
        null=True, blank=True, help_text="Set: the app's secret stops working."
    )
    oauth_application = models.OneToOneField(
        "oauth2_provider.Application",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registered_app",
        help_text="The OAuth client (an MCP client) this app is: its tokens act under its grants.",
    )
    self_registered = models.BooleanField(
        default=False,
        editable=False,
        help_text="Registered by the client itself (OAuth dynamic registration): its name is "
        "its own claim, and it is listed only to users who granted it access.",
    )

    objects = RegisteredAppQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "registered app"

    def __str__(self) -> str:
        return self.name


class AppGrantQuerySet(OwnedQuerySet):
    def active(self) -> AppGrantQuerySet:
        return self.filter(revoked_at__isnull=True)


class AppGrant(models.Model):
    """A user's grant of access to a registered app, with its scopes; revoked (kept as history) in
    the portal."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_grants"
    )
    app = models.ForeignKey(RegisteredApp, on_delete=models.CASCADE, related_name="grants")
    scopes = models.JSONField(default=list, help_text="Values of accounts.scopes.APP_SCOPES.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AppGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "app"],
                condition=models.Q(revoked_at__isnull=True),
                name="app_grant_active_unique",
            )
        ]

    def __str__(self) -> str:
        return f"grant of app {self.app_id} by user {self.user_id}"


class AccessEventQuerySet(OwnedQuerySet):
    pass


class AccessEvent(models.Model):
    """Who used or read a user's memories, when, and through what; and each API key created or
    revoked. Holds ids and counts, never text (nor a key)."""

    class Actor(models.TextChoices):
        USER = "user", "You"
        ASSISTANT = "assistant", "The assistant"
        API = "api", "An API client"
        APP = "app", "A registered app"
        ADMIN = "admin", "An administrator"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_events"
    )
    actor = models.CharField(max_length=20, choices=Actor.choices)
    purpose = models.CharField(max_length=100, help_text="e.g. 'chat reply', 'context API'")
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    app = models.ForeignKey(RegisteredApp, null=True, blank=True, on_delete=models.SET_NULL)
    items = models.PositiveIntegerField(
        default=0, help_text="How many memories/episodes were read."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AccessEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor} read {self.items} item(s) for {self.purpose}"


def new_export_token() -> str:
    """An unguessable token for an export's download link (256 bits)."""
    return secrets.token_urlsafe(32)


class DataExportQuerySet(OwnedQuerySet):
    def in_progress(self) -> DataExportQuerySet:
        return self.filter(status__in=[DataExport.Status.PENDING, DataExport.Status.RUNNING])


class DataExport(models.Model):
    """One archive of everything kept about a user (export.json + export.md in a zip), built by a
    task. Its download link works only for its owner and only until `expires_at`; then the file is
    deleted."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Being prepared"
        READY = "ready", "Ready to download"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    token = models.CharField(max_length=64, unique=True, default=new_export_token, editable=False)
    file_name = models.CharField(
        max_length=200, blank=True, help_text="The zip's name in DATA_DIR/exports."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when ready: the link stops working."
    )

    objects = DataExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="data_export_progress_max"
            )
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of user {self.user_id} ({self.status})"

    @property
    def is_downloadable(self) -> bool:
        """Ready and its link not yet expired."""
        return (
            self.status == self.Status.READY
            and self.expires_at is not None
            and self.expires_at > timezone.now()
        )


class ErasureReceiptQuerySet(OwnedQuerySet):
    pass


class ErasureReceipt(models.Model):
    """The signed receipt of one erasure the user asked for (forget everything, a conversation
    deleted): what went, counted per kind, never what it held. Kept through "forget everything" (it
    is the proof), deleted with the account."""

    class Kind(models.TextChoices):
        FORGET_EVERYTHING = "forget_everything", "Forget everything"
        CONVERSATION_DELETED = "conversation_deleted", "Conversation deleted"
        # never stored (it would go with the account): given to the user at that moment
        ACCOUNT_DELETED = "account_deleted", "Account deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="erasure_receipts"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    created_at = models.DateTimeField(db_index=True, help_text="When the erasure was done.")
    document = models.TextField(
        help_text="The signed receipt as downloaded: canonical JSON (accounts/receipts.py)."
    )

    objects = ErasureReceiptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"erasure receipt {self.pk} ({self.kind})"

    @property
    def receipt(self) -> dict:
        """The signed part of the document: what was erased, when, the data key."""
        return json.loads(self.document)["receipt"]
