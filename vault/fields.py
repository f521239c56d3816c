"""A text column stored encrypted with its owner's data key (`vault.keys`), each token bound to its
place: owner, table, column and row id.

The model attribute holds plain text; the column holds a token. Encryption happens in `pre_save`,
which Django calls for `save()` and `bulk_create()`; the row id is known then because the table's
primary key is a `PreallocatedAutoField` (drawn from its sequence before the INSERT).
`QuerySet.update()`/`bulk_update()` would bypass `pre_save`, so anything but a bound token reaching
the column is refused (VaultError) rather than stored. Reads select the token together with the row
id and the owner's id (`BoundColumn`), so `from_db_value` checks the binding for model instances and
`values()` alike. The column cannot be searched or compared in SQL: lookups other than `isnull` are
refused too — search goes through the app-maintained `search` vectors, dedup through fingerprints."""

from __future__ import annotations

import logging
from operator import attrgetter

from django.core import checks
from django.core.exceptions import FieldError
from django.db import connections, models, router
from django.db.models.expressions import Col
from django.utils.functional import cached_property

from vault import keys

logger = logging.getLogger(__name__)

ALLOWED_LOOKUPS = {"isnull"}
# What a value reads as when its data key was destroyed (its owner was forgotten): it cannot come
# back, and the row can still be shown, exported or erased. Damaged or misplaced values and missing
# master keys still raise.
UNREADABLE = "[unreadable: the encryption key of this text was destroyed]"


class PreallocatedAutoField(models.BigAutoField):
    """A BigAutoField whose value is drawn from its sequence before the INSERT (for `save()` and
    `bulk_create()` alike), so that the row's encrypted columns can bind their token to it."""

    def get_pk_value_on_save(self, instance):
        return self.draw(1, using=router.db_for_write(type(instance), instance=instance))[0]

    def draw(self, count: int, *, using: str = "default") -> list[int]:
        """`count` ids from the sequence in one statement, for a `bulk_create` of many rows (which
        would otherwise draw one per row)."""
        table = self.model._meta.db_table
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, self.column, count],
            )
            return [row[0] for row in cursor.fetchall()]

    # The sequence is its default, in effect: so save() inserts a new row at once instead of trying
    # an UPDATE of the drawn id first. Nothing is drawn before the row is saved.
    def has_default(self) -> bool:
        return True

    def get_default(self):
        return None


class BoundColumn(Col):
    """The encrypted column, selected as ARRAY[token, row id, owner id]: what `from_db_value` needs
    to check where the token belongs. Filters and ordering still see the plain column."""

    def select_format(self, compiler, sql, params):
        row = _qualified(compiler, self.alias, self.target.model._meta.pk.column)
        owner = _owner_sql(compiler, self.target.model, self.alias, self.target.owner.split("."))
        return f"ARRAY[{sql}, ({row})::text, ({owner})::text]", params


def _qualified(compiler, alias: str | None, column: str) -> str:
    quoted = compiler.connection.ops.quote_name(column)
    return f"{compiler.quote_name_unless_alias(alias)}.{quoted}" if alias else quoted


def _owner_sql(compiler, model, alias: str | None, path: list[str], depth: int = 0) -> str:
    """SQL for the owner's user id: a column of the row, or one reached through foreign keys."""
    field = model._meta.get_field(path[0])
    if len(path) == 1:
        return _qualified(compiler, alias, field.column)
    related = field.related_model._meta
    inner = f"vault_owner_{depth}"
    quote = compiler.connection.ops.quote_name
    return (
        f"SELECT {_owner_sql(compiler, field.related_model, inner, path[1:], depth + 1)} "
        f"FROM {quote(related.db_table)} {quote(inner)} "
        f"WHERE {inner}.{quote(field.target_field.column)} = {_qualified(compiler, alias, field.column)}"
    )


class DecryptedOnRead:
    """An attribute of a row read by raw SQL: the model's encrypted `text` as selected (its bound
    column, ARRAY[token, row id, owner], in the row's `sealed`), decrypted when first read. A
    context ranks ~150 rows and quotes ~20; a decryption costs ~20 µs."""

    def __init__(self, model: type[models.Model]):
        self.model = model

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, row, owner=None):
        if row is None:
            return self
        field = self.model._meta.get_field("text")
        text = field.from_db_value(row.sealed, None, connections[router.db_for_read(self.model)])
        row.__dict__[self.name] = text  # read once: the instance's own value hides this
        return text


class EncryptedTextField(models.TextField):
    def __init__(self, *args, owner: str = "user_id", **kwargs):
        # dotted path from the instance to its user's id, e.g. "conversation.user_id"
        self.owner = owner
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["owner"] = self.owner
        return name, path, args, kwargs

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not isinstance(self.model._meta.pk, PreallocatedAutoField):
            errors.append(
                checks.Error(
                    f"{self.model._meta.label}.{self.name} binds its tokens to the row id, which "
                    "must be known before the INSERT.",
                    hint="Make the model's primary key a vault.fields.PreallocatedAutoField.",
                    obj=self,
                    id="vault.E002",
                )
            )
        return errors

    def binding(self, user_id, row) -> keys.Binding:
        return keys.Binding(user_id, self.model._meta.db_table, self.column, row)

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            return value
        owner = attrgetter(self.owner)(model_instance)
        return keys.encrypt(self.binding(owner, model_instance.pk), value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        if isinstance(value, str):  # selected as an expression of the column, or by raw SQL
            raise keys.VaultError(
                f"{self.model._meta.label}.{self.name} was read without its row: select the column "
                "itself (a model, values(), values_list()), not an expression of it"
            )
        token, row, owner = value
        if not token:
            return token
        try:
            return keys.decrypt(self.binding(owner, row), token)
        except keys.KeyDestroyed as error:
            logger.warning("%s.%s: %s", self.model._meta.label, self.name, error)
            return UNREADABLE

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if value and not keys.is_token(value):
            raise keys.VaultError(
                f"only a token bound by the field may be written to the encrypted column "
                f"{self.model._meta.label}.{self.name}: save the model (or bulk_create), not "
                "QuerySet.update"
            )
        return value

    def get_col(self, alias, output_field=None):
        if output_field is not None and output_field is not self:
            return super().get_col(alias, output_field)
        return BoundColumn(alias, self)

    @cached_property
    def cached_col(self):
        return BoundColumn(self.model._meta.db_table, self)

    def get_lookup(self, lookup_name):
        if lookup_name not in ALLOWED_LOOKUPS:
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: it cannot be compared or searched in SQL "
                f"('{lookup_name}')"
            )
        return super().get_lookup(lookup_name)
