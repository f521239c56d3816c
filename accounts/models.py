from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The product's user; custom from the first migration so it can grow without a table swap."""


class ApiKeyQuerySet(models.QuerySet):
    def for_user(self, user) -> ApiKeyQuerySet:
        return self.filter(user=user)

    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A personal API key. Only its SHA-256 is stored; the key itself is shown once at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to recognise it.")
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AccessEventQuerySet(models.QuerySet):
    def for_user(self, user) -> AccessEventQuerySet:
        return self.filter(user=user)


class AccessEvent(models.Model):
    """Who used or read a user's memories, when, and through what. Holds ids and counts, never text."""

    class Actor(models.TextChoices):
        ASSISTANT = "assistant", "The assistant"
        API = "api", "An API client"
        ADMIN = "admin", "An administrator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_events")
    actor = models.CharField(max_length=20, choices=Actor.choices)
    purpose = models.CharField(max_length=100, help_text="e.g. 'chat reply', 'context API'")
    conversation = models.ForeignKey("chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    items = models.PositiveIntegerField(default=0, help_text="How many memories/episodes were read.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AccessEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor} read {self.items} item(s) for {self.purpose}"
