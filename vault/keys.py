"""Envelope encryption of users' text: one data key per user, wrapped by the master keys.

`encrypt(binding, text)` → a token `enc2:<key id>:<base64(nonce + AES-256-GCM ciphertext)>`. Its
authenticated data (AAD) is `v2|<key id>|<user id>|<table>|<column>|<row id>` (a `Binding`): a token
copied to another user's row, another row, column or table fails to decrypt (`CiphertextMismatch`,
logged) instead of showing its text there. `decrypt(binding, token)` finds the data key by its id
and checks that the key is the binding's user's. The first format, `enc1:` (bound to its key id
only), is read only by the migration that binds it (`decrypt_unbound`); the app refuses it.

Key ids are random UUIDs, never reused; data keys are unwrapped once per process and kept in memory
by key id for at most CACHE_SECONDS (so a key destroyed by another process stops working there too);
the *current* key of a user is looked up in the database on every write, so that a destroyed key is
never written with again. `destroy_user_key` is crypto-shredding: the ciphertext that survives
anywhere (a replica, a dump, a stray copy) cannot be read once the key row is gone."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from vault.models import UserKey

logger = logging.getLogger(__name__)

PREFIX = "enc2:"
UNBOUND_PREFIX = "enc1:"  # the first format, bound to its key id only
NONCE_BYTES = 12
CACHED_KEYS = 4096
CACHE_SECONDS = 300


class VaultError(Exception):
    """Encrypted data that cannot be read or written (damaged, unknown master key, plain text)."""


class KeyDestroyed(VaultError):
    """The data key of this ciphertext was destroyed: its owner was forgotten."""


class CiphertextMismatch(VaultError):
    """A token that does not authenticate where it was read: damaged, or moved there from another
    user, row, column or table. Never read as another row's text."""


class UnboundToken(VaultError):
    """A token of the first format (bound to its key only) found by the app: the migration that
    binds every token (`vault.migration_ops.bind_column`) has not run on this row."""


@dataclass(frozen=True)
class Binding:
    """Where a token belongs: its owner, table, column and row. Authenticated with the ciphertext,
    it makes a token good for that one place only."""

    user_id: int | str
    table: str
    column: str
    row: int | str

    def aad(self, key_id: str) -> bytes:
        return f"v2|{key_id}|{self.user_id}|{self.table}|{self.column}|{self.row}".encode()

    def __str__(self) -> str:
        return f"{self.table}.{self.column} row {self.row} of user {self.user_id}"


_cache: OrderedDict[str, tuple[float, int, AESGCM]] = OrderedDict()  # key id → (when, user, key)
_lock = threading.Lock()


def is_token(value: str) -> bool:
    return value.startswith(PREFIX)


def is_unbound_token(value: str) -> bool:
    return value.startswith(UNBOUND_PREFIX)


def encrypt(binding: Binding, text: str) -> str:
    key_id, aead = _current_key(int(binding.user_id))
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, text.encode(), binding.aad(key_id))
    return f"{PREFIX}{key_id}:{_b64(nonce + sealed)}"


def decrypt(binding: Binding, token: str) -> str:
    if is_unbound_token(token):
        _key_by_id(_parse(token, UNBOUND_PREFIX)[0])  # under a destroyed key: KeyDestroyed
        logger.error("vault: an unbound (enc1) token in %s: run manage.py migrate", binding)
        raise UnboundToken(f"an unbound (enc1) token in {binding}: run manage.py migrate")
    key_id, raw = _parse(token, PREFIX)
    owner, aead = _key_by_id(key_id)
    if str(owner) != str(binding.user_id):
        _mismatch(binding, key_id, f"it is under the data key of user {owner}")
    try:
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], binding.aad(key_id)).decode()
    except InvalidTag:
        _mismatch(binding, key_id, "damaged, or moved there from another row, column or table")


def encrypt_unbound(user_id: int, text: str) -> str:
    """A token of the first format: only for migrating back to a release that reads no other."""
    key_id, aead = _current_key(user_id)
    header = f"{UNBOUND_PREFIX}{key_id}:"
    nonce = os.urandom(NONCE_BYTES)
    return header + _b64(nonce + aead.encrypt(nonce, text.encode(), header.encode()))


def decrypt_unbound(token: str) -> str:
    """Read a token of the first format: only the migration that binds every token does."""
    key_id, raw = _parse(token, UNBOUND_PREFIX)
    _, aead = _key_by_id(key_id)
    header = f"{UNBOUND_PREFIX}{key_id}:".encode()
    try:
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], header).decode()
    except InvalidTag:
        raise VaultError(f"the ciphertext under data key {key_id} is damaged") from None


def destroy_user_key(user_id: int) -> list[str]:
    """Delete the user's data key: everything encrypted with it becomes unreadable. Returns the ids
    of the keys destroyed (none if the user never had one)."""
    ids = [str(pk) for pk in UserKey.objects.filter(user_id=user_id).values_list("pk", flat=True)]
    UserKey.objects.filter(pk__in=ids).delete()
    with _lock:
        for key_id in ids:
            _cache.pop(key_id, None)
    return ids


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


def _parse(token: str, prefix: str) -> tuple[str, bytes]:
    if not token.startswith(prefix):
        raise VaultError("not an encrypted value: plain text in an encrypted column")
    try:
        key_id, body = token.removeprefix(prefix).split(":", 1)
        return str(uuid.UUID(key_id)), base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, binascii.Error):
        raise VaultError("a damaged encrypted value") from None


def _mismatch(binding: Binding, key_id: str, why: str) -> NoReturn:
    logger.error(
        "vault: the token in %s does not belong there (data key %s): %s", binding, key_id, why
    )
    raise CiphertextMismatch(f"the token in {binding} does not belong there: {why}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_bulk = threading.local()


@contextmanager
def current_keys_remembered() -> Iterator[None]:
    """Within it, each user's current data key is looked up once, not once per value encrypted:
    only for bulk writes of users made in the same transaction (benchmark seeding), whose keys
    nothing can destroy meanwhile. Outside it every write looks again, so that a destroyed key is
    never written with."""
    _bulk.keys = {}
    try:
        yield
    finally:
        del _bulk.keys


@contextmanager
def locked_users_keys(user_ids: Iterable[int]) -> Iterator[None]:
    """Within it, the data keys these users have now are read once (one query), not once per value
    encrypted. Call it with the users' rows locked (`lock_user`) to the end of the transaction:
    erasure takes that lock before it destroys a key, and deleting a user waits for it. A key made
    within it is looked up as outside: a savepoint rolled back could take it away again."""
    found = {}
    for key_id, user_id in UserKey.objects.filter(user_id__in=list(user_ids)).values_list(
        "pk", "user_id"
    ):
        found[user_id] = str(key_id), _key_by_id(str(key_id))[1]
    _bulk.locked = found
    try:
        yield
    finally:
        del _bulk.locked


def _current_key(user_id: int) -> tuple[str, AESGCM]:
    locked = getattr(_bulk, "locked", None)
    if locked is not None and user_id in locked:
        return locked[user_id]
    remembered = getattr(_bulk, "keys", None)
    if remembered is None:
        return _looked_up_key(user_id)
    if user_id not in remembered:
        remembered[user_id] = _looked_up_key(user_id)
    return remembered[user_id]


def _looked_up_key(user_id: int) -> tuple[str, AESGCM]:
    row = UserKey.objects.filter(user_id=user_id).values_list("pk").first()
    if row is None:
        return _create_key(user_id)
    return str(row[0]), _key_by_id(str(row[0]))[1]


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
        return key_id, _key_by_id(key_id)[1]
    aead = AESGCM(data_key)
    _remember(str(key.pk), user_id, aead)
    return str(key.pk), aead


def _key_by_id(key_id: str) -> tuple[int, AESGCM]:
    """The data key and the user it belongs to (as its wrapping authenticates)."""
    with _lock:
        cached = _cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            _cache.move_to_end(key_id)
            return cached[1], cached[2]
    row = (
        UserKey.objects.filter(pk=key_id)
        .values_list("user_id", "wrapped_key", "master_key_id")
        .first()
    )
    if row is None:
        raise KeyDestroyed(f"data key {key_id} was destroyed")
    user_id, wrapped, master_id = row
    aead = AESGCM(_unwrap(user_id, bytes(wrapped), master_id))
    _remember(key_id, user_id, aead)
    return user_id, aead


def _remember(key_id: str, user_id: int, aead: AESGCM) -> None:
    with _lock:
        _cache[key_id] = (time.monotonic(), user_id, aead)
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
