"""Account writes: consent, memory settings, API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    AccessEvent,
    ApiKey,
    ConsentRecord,
    MemorySettings,
    User,
    time_zone_names,
)
from accounts.scopes import scopes_validate

KEY_PREFIX = "mw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    user,
    scopes,
    name: str = "personal",
    expires_in_days: int | None = None,
    actor: str = AccessEvent.Actor.USER,
) -> tuple[ApiKey, str]:
    """Create a personal API key with `scopes` (ValueError for none or unknown ones), expiring after
    `expires_in_days` (None: never); returns the row and the key itself, never stored or shown
    again. The creation goes to the owner's access log."""
    if expires_in_days is not None and expires_in_days < 1:
        raise ValueError("a key expires at least one day after it is made")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user,
        name=name[:100],
        prefix=key[:10],
        hashed_key=hash_key(key),
        scopes=scopes_validate(scopes),
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    AccessEvent.objects.create(user=user, actor=actor, purpose="API key created", api_key=api_key)
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: str = AccessEvent.Actor.USER) -> bool:
    """Revoke a key (refused from its next request), in its owner's access log; False when it was
    already revoked."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        api_key.refresh_from_db(fields=["revoked_at"])
        AccessEvent.objects.create(
            user_id=api_key.user_id, actor=actor, purpose="API key revoked", api_key=api_key
        )
    return bool(revoked)


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
    lock_users([getattr(user, "pk", user)])


def lock_users(user_ids) -> None:
    """`lock_user` for many users in one statement, in the order of their ids (as every writer
    that locks more than one takes them, so two never wait on each other in a circle)."""
    list(
        User.objects.select_for_update()
        .filter(pk__in=list(user_ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
