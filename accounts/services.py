"""Account writes: consent, memory settings, API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils import timezone

from accounts.models import ApiKey, ConsentRecord, MemorySettings, User, time_zone_names

KEY_PREFIX = "mw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user, name: str = "personal") -> tuple[ApiKey, str]:
    """Create a personal API key; returns the row and the key itself, which is never stored or shown
    again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user, name=name[:100], prefix=key[:10], hashed_key=hash_key(key)
    )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def consent_set(*, user, purpose: str, granted: bool, method: str) -> ConsentRecord:
    """Record a grant or a withdrawal (in force at once) with the current policy version and the
    method."""
    return ConsentRecord.objects.create(
        user=user,
        purpose=purpose,
        granted=granted,
        policy_version=settings.PRIVACY_POLICY_VERSION,
        method=method,
    )


def memory_settings_update(*, user, **changes) -> MemorySettings:
    """Change the user's memory switches (memory_enabled, use_past_chats, temporary_chat_hours)."""
    allowed = {"memory_enabled", "use_past_chats", "temporary_chat_hours"}
    if unknown := set(changes) - allowed:
        raise ValueError(f"unknown memory settings: {sorted(unknown)}")
    memory_settings, _ = MemorySettings.objects.update_or_create(user=user, defaults=changes)
    return memory_settings


def time_zone_set(*, user, time_zone: str) -> None:
    """The user's clock (an IANA name): relative dates, time words and "due soon" follow it."""
    if time_zone not in time_zone_names():
        raise ValueError(f"unknown time zone: {time_zone!r}")
    if user.time_zone != time_zone:
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])


def password_recheck(*, request, user, password) -> bool:
    """Whether `password` is `user`'s, asked through Django's authenticate: a wrong one counts
    against guessing like a failed login (django-axes), and a locked-out user or address is refused
    however right the password. `request` is Django's (the lock-out page is made from it)."""
    if not isinstance(password, str) or not password:
        return False
    authenticated = authenticate(request, username=user.get_username(), password=password)
    return authenticated is not None and authenticated.pk == user.pk


def lock_user(user) -> None:
    """Take the user's row lock until the transaction ends. Every writer of a user's memory (the
    worker, the portal, erasure, summaries, digests) takes it first, so they run one after another
    and in the same lock order (no deadlocks), and an erasure is never followed by a write from
    older data."""
    list(
        User.objects.select_for_update()
        .filter(pk=getattr(user, "pk", user))
        .values_list("pk", flat=True)
    )
