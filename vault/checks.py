"""System checks of the encryption setup (`manage.py check --deploy`, and `--database default`)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db.utils import DatabaseError

from vault.models import UserKey


@register(Tags.security, deploy=True)
def master_keys_from_the_environment(app_configs, **kwargs):
    if os.environ.get("MEMORYWEB_MASTER_KEYS", "").strip():
        return []
    return [
        Warning(
            "MEMORYWEB_MASTER_KEYS is not set: the master key is the local file DATA_DIR/master_keys.",
            hint="Set MEMORYWEB_MASTER_KEYS in production and keep it out of the database's backups.",
            id="vault.W001",
        )
    ]


@register(Tags.security, deploy=True)
def receipt_signing_key_from_the_environment(app_configs, **kwargs):
    if os.environ.get("RECEIPT_SIGNING_KEY", "").strip():
        return []
    return [
        Warning(
            "RECEIPT_SIGNING_KEY is not set: erasure receipts are signed with the local file "
            "DATA_DIR/receipt_signing_key.",
            hint="Set RECEIPT_SIGNING_KEY in production, the same on every web node, and publish "
            "its public key (manage.py receipt_key).",
            id="vault.W002",
        )
    ]


@register(Tags.database)
def every_data_key_can_be_unwrapped(app_configs, databases=None, **kwargs):
    """Every user's data key is wrapped by a configured master key (e.g. none was removed before
    `rotate_master_key` re-wrapped the keys it protected)."""
    if not databases or "default" not in databases:
        return []
    configured = {key_id for key_id, _ in settings.MASTER_KEYS}
    try:
        used = set(UserKey.objects.values_list("master_key_id", flat=True).distinct())
    except DatabaseError:  # not migrated yet
        return []
    return [
        Error(
            f"{UserKey.objects.filter(master_key_id=key_id).count()} data key(s) are wrapped by master key "
            f"{key_id!r}, which MEMORYWEB_MASTER_KEYS does not hold: that data cannot be read.",
            hint="Put the old master key back (after the current one), run manage.py rotate_master_key, then drop it.",
            id="vault.E001",
        )
        for key_id in sorted(used - configured)
    ]
