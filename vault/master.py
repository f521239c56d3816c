"""The master keys: from MEMORYWEB_MASTER_KEYS, or (local default) a key generated once in the data
folder.

Read by the settings, so nothing here touches Django models. The format is a comma-separated list of
`id:key`, the key 32 random bytes in URL-safe base64 (`python -c "import base64, os;
print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`). The first key wraps new user keys; the
others only unwrap (rotation: put the new key first, run `manage.py rotate_master_key`, then drop
the old ones)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def parse_master_keys(
    raw: str, *, source: str = "MEMORYWEB_MASTER_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    keys = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _ID.match(key_id):
            raise ImproperlyConfigured(
                f"{source}: each entry must be 'id:key' with an id of [A-Za-z0-9_.-]{{1,40}}"
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(
                f"{source}: the key of {key_id!r} is not URL-safe base64"
            ) from None
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"{source}: the key of {key_id!r} must be 32 bytes, got {len(key)}"
            )
        if any(existing == key_id for existing, _ in keys):
            raise ImproperlyConfigured(f"{source}: the id {key_id!r} is used twice")
        keys.append((key_id, key))
    return tuple(keys)


def load_master_keys(
    raw: str, default_file: Path, *, source: str = "MEMORYWEB_MASTER_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    """The configured keys, or the local default kept (mode 0600) in `default_file`, made on first
    use."""
    if not raw.strip() and not default_file.exists():
        _create_key_file(default_file)
    return read_master_keys(raw, default_file, source=source)


def read_master_keys(
    raw: str, default_file: Path, *, source: str = "MEMORYWEB_MASTER_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    """The configured keys, or the local default in `default_file`; makes nothing (the settings read
    this: `memoryweb.bootstrap.prepare` makes the local file first)."""
    if raw.strip():
        keys = parse_master_keys(raw, source=source)
        if not keys:
            raise ImproperlyConfigured(f"{source} holds no key")
        return keys
    if not default_file.exists():
        raise ImproperlyConfigured(
            f"{source} is not set and {default_file} does not exist (start through manage.py)"
        )
    return parse_master_keys(default_file.read_text(), source=str(default_file))


def _create_key_file(path: Path) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    private_file_create(
        path, f"local-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}:{key}\n"
    )


def private_file_create(path: Path, text: str) -> None:
    """Write `text` to a private (0600) temporary file, then link it into place unless `path` exists:
    processes starting together (web, worker, beat) all end up with the one that got there first,
    and never read a half-written file."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
