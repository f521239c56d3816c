"""Account writes: API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from accounts.models import ApiKey

KEY_PREFIX = "mw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user, name: str = "personal") -> tuple[ApiKey, str]:
    """Create a personal API key; returns the row and the key itself, which is never stored or shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(user=user, name=name[:100], prefix=key[:10], hashed_key=hash_key(key))
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
