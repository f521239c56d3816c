from django.conf import settings
from django.core.management.base import BaseCommand

from vault.keys import rotate_master_key


class Command(BaseCommand):
    help = (
        "Re-wrap every user's data key with the first key of MEMORYWEB_MASTER_KEYS. Rotation: put a new key "
        "first in MEMORYWEB_MASTER_KEYS (keep the old ones after it), restart, run this, then remove the old keys."
    )

    def handle(self, *args, **options):
        count = rotate_master_key()
        self.stdout.write(
            f"re-wrapped {count} data key(s) with master key {settings.MASTER_KEYS[0][0]!r}"
        )
