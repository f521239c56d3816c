# Fingerprints become an HMAC keyed by FINGERPRINT_KEY (a plain SHA-256 of a short, predictable sentence
# could be confirmed from a dump by guessing it); "note:" subjects made from them follow.

import hashlib
import re

from django.db import migrations


def _plain(text: str) -> str:
    return hashlib.sha256(" ".join(re.findall(r"[a-z0-9]+", text.lower())).encode()).hexdigest()


def _rewrite(schema_editor, old, new) -> None:
    from vault import keys
    from vault.migration_ops import read_token

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, user_id, text, subject FROM memories_memory")
        for pk, user_id, token, subject in cursor.fetchall():
            try:
                text = read_token("memories_memory", "text", pk, user_id, token) if token else ""
            except keys.VaultError:  # unreadable: it cannot be matched again anyway
                continue
            if subject == f"note:{old(text)[:16]}":
                subject = f"note:{new(text)[:16]}"
            cursor.execute(
                "UPDATE memories_memory SET fingerprint = %s, subject = %s WHERE id = %s", [new(text), subject, pk]
            )


def keyed(apps, schema_editor):
    from memories.extraction import fingerprint

    _rewrite(schema_editor, _plain, fingerprint)


def plain(apps, schema_editor):
    from memories.extraction import fingerprint

    _rewrite(schema_editor, fingerprint, _plain)


class Migration(migrations.Migration):
    dependencies = [("memories", "0010_sensitive_categories")]

    operations = [migrations.RunPython(keyed, plain)]
