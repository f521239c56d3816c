"""The vault's part of the data export: that the user's text is encrypted, and with which key (never the key)."""

from __future__ import annotations

from typing import Any

from vault.models import UserKey


def export_user_data(*, user) -> dict[str, Any]:
    key = UserKey.objects.filter(user=user).first()
    if key is None:
        return {"data_key": None}
    return {
        "data_key": {
            "id": key.pk,
            "master_key_id": key.master_key_id,
            "created_at": key.created_at,
            "rewrapped_at": key.rewrapped_at,
        }
    }
