"""Envelope encryption of users' text: one data key per user, wrapped by the master keys.

`encrypt(user_id, text)` → a token `enc1:<key id>:<base64(nonce + AES-256-GCM ciphertext)>`; the
header is authenticated with it. `decrypt(token)` finds the data key by its id. Key ids are random
UUIDs, never reused; data keys are unwrapped once per process and kept in memory by key id for at
most CACHE_SECONDS (so a key destroyed by another process stops working there too); the *current*
key of a user is looked up in the database on every write, so that a destroyed key is never written
with again. `destroy_user_key` is crypto-shredding: the ciphertext that survives anywhere (a
replica, a dump, a stray copy) cannot be read once the key row is gone."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from vault.models import UserKey

logger = logging.getLogger(__name__)

PREFIX = "enc1:"
NONCE_BYTES = 12
CACHED_KEYS = 4096
CACHE_SECONDS = 300


class VaultError(Exception):
    """Encrypted data that cannot be read or written (damaged, unknown master key, plain text)."""


class KeyDestroyed(VaultError):
    """The data key of this ciphertext was destroyed: its owner was forgotten."""


_cache: OrderedDict[str, tuple[float, AESGCM]] = OrderedDict()  # key id → (when unwrapped, key)
_lock = threading.Lock()


def is_token(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt(user_id: int, text: str) -> str:
    key_id, aead = _current_key(user_id)
    header = f"{PREFIX}{key_id}:"
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, text.encode(), header.encode())
    return header + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decrypt(token: str) -> str:
    if not is_token(token):
        raise VaultError("not an encrypted value: plain text in an encrypted column")
    try:
        key_id, body = token.removeprefix(PREFIX).split(":", 1)
        key_id = str(uuid.UUID(key_id))
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, binascii.Error):
        raise VaultError("a damaged encrypted value") from None
    aead = _key_by_id(key_id)
    try:
        return aead.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{PREFIX}{key_id}:".encode()
        ).decode()
    except InvalidTag:
        raise VaultError(f"the ciphertext under data key {key_id} is damaged") from None


def destroy_user_key(user_id: int) -> int:
    """Delete the user's data key: everything encrypted with it becomes unreadable. Returns how many
    keys."""
    ids = [str(pk) for pk in UserKey.objects.filter(user_id=user_id).values_list("pk", flat=True)]
    UserKey.objects.filter(pk__in=ids).delete()
    with _lock:
        for key_id in ids:
            _cache.pop(key_id, None)
    return len(ids)


def rotate_master_key() -> int:
    """Re-wrap every data key not wrapped by the current (first) master key. Returns how many."""
    current_id, _ = settings.MASTER_KEYS[0]
    rewrapped = 0
    for key in UserKey.objects.exclude(master_key_id=current_id).iterator():
        with transaction.atomic():
            key = UserKey.objects.select_for_update().filter(pk=key.pk).first()
            if key is None or key.master_key_id == current_id:  # destroyed meanwhile, or done
                continue
            data_key = _unwrap(key.user_id, bytes(key.wrapped_key), key.master_key_id)
            key.master_key_id, key.wrapped_key = _wrap(key.user_id, data_key)
            key.rewrapped_at = timezone.now()
            key.save(update_fields=["master_key_id", "wrapped_key", "rewrapped_at"])
            rewrapped += 1
    return rewrapped


def forget_cached_keys() -> None:
    """Drop the unwrapped data keys this process holds (after a change of master keys)."""
    with _lock:
        _cache.clear()


def _current_key(user_id: int) -> tuple[str, AESGCM]:
    row = UserKey.objects.filter(user_id=user_id).values_list("pk").first()
    if row is None:
        return _create_key(user_id)
    return str(row[0]), _key_by_id(str(row[0]))


def _create_key(user_id: int) -> tuple[str, AESGCM]:
    data_key = AESGCM.generate_key(bit_length=256)
    master_id, wrapped = _wrap(user_id, data_key)
    try:
        with transaction.atomic():
            key = UserKey.objects.create(
                user_id=user_id, wrapped_key=wrapped, master_key_id=master_id
            )
    except IntegrityError:  # another process made the user's key first: use that one
        key_id = str(UserKey.objects.get(user_id=user_id).pk)
        return key_id, _key_by_id(key_id)
    aead = AESGCM(data_key)
    _remember(str(key.pk), aead)
    return str(key.pk), aead


def _key_by_id(key_id: str) -> AESGCM:
    with _lock:
        cached = _cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            _cache.move_to_end(key_id)
            return cached[1]
    row = (
        UserKey.objects.filter(pk=key_id)
        .values_list("user_id", "wrapped_key", "master_key_id")
        .first()
    )
    if row is None:
        raise KeyDestroyed(f"data key {key_id} was destroyed")
    user_id, wrapped, master_id = row
    aead = AESGCM(_unwrap(user_id, bytes(wrapped), master_id))
    _remember(key_id, aead)
    return aead


def _remember(key_id: str, aead: AESGCM) -> None:
    with _lock:
        _cache[key_id] = (time.monotonic(), aead)
        while len(_cache) > CACHED_KEYS:
            _cache.popitem(last=False)


def _wrap(user_id: int, data_key: bytes) -> tuple[str, bytes]:
    master_id, master = settings.MASTER_KEYS[0]
    nonce = os.urandom(NONCE_BYTES)
    return master_id, nonce + AESGCM(master).encrypt(nonce, data_key, _wrap_context(user_id))


def _unwrap(user_id: int, wrapped: bytes, master_id: str) -> bytes:
    master = dict(settings.MASTER_KEYS).get(master_id)
    if master is None:
        raise VaultError(f"master key {master_id!r} is not configured (MEMORYWEB_MASTER_KEYS)")
    try:
        return AESGCM(master).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_context(user_id)
        )
    except InvalidTag:
        raise VaultError(
            f"the data key of user {user_id} does not unwrap with master key {master_id!r}"
        ) from None


def _wrap_context(user_id: int) -> bytes:
    return f"memoryweb data key of user {user_id}".encode()
