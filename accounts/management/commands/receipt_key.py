from django.core.management.base import BaseCommand

from accounts.receipts import receipt_public_keys


class Command(BaseCommand):
    help = (
        "Print the public key that verifies this server's erasure receipts (its id, raw base64 "
        "and PEM); with --all, the earlier keys (RECEIPT_PUBLIC_KEYS) too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Earlier keys too.")
        parser.add_argument("--pem", action="store_true", help="Only the current key's PEM.")

    def handle(self, *args, all, pem, **options):
        keys = receipt_public_keys()
        if pem:
            self.stdout.write(keys[0]["pem"], ending="")
            return
        for key in keys if all else keys[:1]:
            state = "current" if key["current"] else "earlier"
            self.stdout.write(
                f"key id: {key['id']} ({key['algorithm']}, {state})\n"
                f"public key (base64): {key['public_key']}\n{key['pem']}"
            )
