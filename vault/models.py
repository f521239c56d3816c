from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class UserKey(models.Model):
    """A user's data key (AES-256), stored only wrapped (encrypted) by one of the master keys.

    Every encrypted column of the user's rows is encrypted with it
    (`vault.fields.EncryptedTextField`). Forgetting the user deletes this row: what was encrypted
    with it can no longer be read, wherever a copy of the ciphertext survives. A new key is made the
    next time the user's data is written."""

    # Random, never reused (a serial id could come back after a restore while a process still caches
    # the old key).
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_key"
    )
    wrapped_key = models.BinaryField(help_text="nonce + AES-GCM(master key, data key)")
    master_key_id = models.CharField(max_length=40, help_text="Which master key wrapped it.")
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(
        null=True, blank=True, help_text="Last master key rotation."
    )

    def __str__(self) -> str:
        return f"data key {self.pk}"
