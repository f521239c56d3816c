import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.receipts import ReceiptInvalid, receipt_verify, subject_matches, verification_keys
from vault.signing import key_id, public_from_pem


class Command(BaseCommand):
    help = (
        "Check an erasure receipt's signature: prints valid or invalid with the reason; exit code "
        "0 or 1. With --public-key, only that key counts (offline, e.g. the published PEM); "
        "without, this server's current and earlier keys (RECEIPT_PUBLIC_KEYS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The receipt (JSON), as downloaded.")
        parser.add_argument("--public-key", metavar="PEM_FILE", help="The public key, PEM.")
        parser.add_argument(
            "--username", help="Also check that the receipt is of the account of this name."
        )

    def handle(self, *args, file, public_key, username, **options):
        keys = verification_keys() if public_key is None else self._key_from(public_key)
        try:
            document = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            receipt = receipt_verify(document, keys)
        except ReceiptInvalid as exc:
            self._invalid(str(exc))
        if username is not None and not subject_matches(receipt, username):
            self._invalid(f"the signature is good, but the receipt is not {username!r}'s")
        erased = ", ".join(f"{n} {kind}" for kind, n in receipt["erased"].items()) or "nothing"
        key = receipt["data_key"]
        if key["id"] is None:
            data_key = "none (there was none)"
        else:
            data_key = f"{key['id']} ({'destroyed' if key['destroyed'] else 'kept'})"
        self.stdout.write(
            f"valid: receipt {receipt['id']} ({receipt['kind']}, {receipt['erased_at']}), signed "
            f"with key {receipt['signing_key']['id']}\n"
            f"erased: {erased}\n"
            f"data key: {data_key}"
        )

    def _key_from(self, path: str) -> dict:
        try:
            public_key = public_from_pem(Path(path).read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None
        return {key_id(public_key): public_key}

    def _invalid(self, reason: str):
        self.stdout.write(f"invalid: {reason}")
        sys.exit(1)
