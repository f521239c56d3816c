"""A text column stored encrypted with its owner's data key (`vault.keys`).

The model attribute holds plain text; the column holds a token. Encryption happens in `pre_save`,
which Django calls for `save()` and `bulk_create()`; `QuerySet.update()`/`bulk_update()` would
bypass it, so plain text reaching the column is refused (VaultError) rather than stored. The column
cannot be searched or compared in SQL: lookups other than `isnull` are refused too — search goes
through the app-maintained `search` vectors, dedup through fingerprints."""

from __future__ import annotations

import logging
from operator import attrgetter

from django.core.exceptions import FieldError
from django.db import models

from vault import keys

logger = logging.getLogger(__name__)

ALLOWED_LOOKUPS = {"isnull"}
# What a value reads as when its data key was destroyed (its owner was forgotten): it cannot come
# back, and the row can still be shown, exported or erased. Damaged values and missing master keys
# still raise.
UNREADABLE = "[unreadable: the encryption key of this text was destroyed]"


class EncryptedTextField(models.TextField):
    def __init__(self, *args, owner: str = "user_id", **kwargs):
        self.owner = (
            owner  # dotted path from the instance to its user's id, e.g. "conversation.user_id"
        )
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["owner"] = self.owner
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            return value
        return keys.encrypt(attrgetter(self.owner)(model_instance), value)

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return keys.decrypt(value)
        except keys.KeyDestroyed as error:
            logger.warning("%s.%s: %s", self.model._meta.label, self.name, error)
            return UNREADABLE

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if value and not keys.is_token(value):
            raise keys.VaultError(
                f"plain text may not be written to the encrypted column {self.model._meta.label}.{self.name}: "
                "save the model (or bulk_create), not QuerySet.update"
            )
        return value

    def get_lookup(self, lookup_name):
        if lookup_name not in ALLOWED_LOOKUPS:
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: it cannot be compared or searched in SQL "
                f"('{lookup_name}')"
            )
        return super().get_lookup(lookup_name)
