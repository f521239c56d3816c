"""The vault's share of a user's data: the data key. Its part of the data export says that the
user's text is encrypted, and with which key (never the key); erasing it destroys the key."""

from __future__ import annotations

from collections import Counter
from typing import Any

from memoryweb.privacy import Erasure, PrivacyArea, register
from vault.keys import destroy_user_key
from vault.models import UserKey


@register
class EncryptionArea(PrivacyArea):
    """The user's data key. Destroyed last of all the user's data (after what it encrypts), so that
    copies of their encrypted text elsewhere (a replica, a dump) cannot be read."""

    label = "encryption"

    def export(self, user) -> dict[str, Any]:
        return export_user_data(user=user)

    def erase(self, user) -> Erasure:
        destroyed = destroy_user_key(user.pk)
        return Erasure(counts=Counter(data_keys=len(destroyed)), data_key_ids=destroyed)


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
