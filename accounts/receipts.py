"""Erasure receipts: after forget everything, a conversation deleted or the account deleted, a
document saying what was erased (rows counted per kind by the erasure itself, never what they held),
when, and which data key was destroyed, signed with the server's Ed25519 key (vault/signing.py).

The file is `{"receipt": {...}, "signature": "<base64>"}`; the signature is over the receipt's
canonical JSON (`canonical`): keys sorted, no whitespace, UTF-8, only strings, integers, booleans
and null. Verifying needs the file and a public key, nothing else (`receipt_verify`,
`manage.py verify_receipt`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

import memoryweb
from accounts.models import ErasureReceipt
from memoryweb.privacy import Erasure
from vault.models import UserKey
from vault.signing import ALGORITHM, key_id, public_pem, public_raw, signature_valid

FORMAT = "memoryweb-erasure-receipt"
FORMAT_VERSION = 1
SUBJECT_SCHEME = "sha256(salt || username)"
MAX_DOCUMENT_BYTES = 64 * 1024  # a receipt is about 1 KB; a bigger file is no receipt
RECEIPT_FIELDS = frozenset(
    {
        "format",
        "version",
        "id",
        "kind",
        "erased_at",
        "subject",
        "erased",
        "data_key",
        "server",
        "signing_key",
    }
)


class ReceiptInvalid(Exception):
    """The file is no valid receipt; the message says why."""


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt made and signed: its id, kind, time, and the document as the user downloads it."""

    id: uuid.UUID
    kind: str
    erased_at: datetime
    document: str

    def data(self) -> dict[str, Any]:
        return json.loads(self.document)


def receipt_response(*, receipt_id, erased_at: datetime, document: str) -> HttpResponse:
    """The receipt as a JSON file to download, byte for byte as it was signed."""
    name = f"memoryweb-erasure-receipt-{erased_at:%Y%m%d-%H%M%S}-{str(receipt_id)[:8]}.json"
    response = HttpResponse(document.encode(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def erased_summary(receipt: dict[str, Any]) -> str:
    """What a receipt says was erased, for reading: "2 conversations, 9 messages, …"."""
    counts = receipt["erased"]
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()) or "nothing"


def canonical(value: Any) -> bytes:
    """The one byte string a receipt is signed as: JSON with sorted keys, no whitespace, UTF-8 (for
    these values, the JSON Canonicalization Scheme of RFC 8785)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def receipt_issue(*, user, kind: str, erasure: Erasure, store: bool = True) -> SignedReceipt:
    """Sign a receipt of `erasure` (done to `user` just now) and, with `store`, keep it for the
    user to download later (not for an account deleted: it would go with it). Call in the
    erasure's transaction, so that a receipt exists exactly when the erasure happened."""
    receipt_id, erased_at = uuid.uuid4(), timezone.now()
    signing_key = settings.RECEIPT_SIGNING_KEY
    receipt = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "id": str(receipt_id),
        "kind": ErasureReceipt.Kind(kind).value,
        "erased_at": erased_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": subject_commitment(user.get_username()),
        "erased": dict(sorted((+erasure.counts).items())),
        "data_key": _data_key(user, kind, erasure),
        "server": {"software": "memoryweb", "version": memoryweb.__version__},
        "signing_key": {"algorithm": ALGORITHM, "id": key_id(signing_key.public_key())},
    }
    signature = base64.b64encode(signing_key.sign(canonical(receipt))).decode()
    document = canonical({"receipt": receipt, "signature": signature}).decode()
    if store:
        ErasureReceipt.objects.create(
            id=receipt_id, user=user, kind=kind, created_at=erased_at, document=document
        )
    return SignedReceipt(receipt_id, kind, erased_at, document)


def subject_commitment(username: str, salt: bytes | None = None) -> dict[str, str]:
    """Whose data it was, without naming them: a hash of the username with a random salt. Whoever
    knows the username can check it (`subject_matches`); the receipt alone does not tell it."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return {
        "scheme": SUBJECT_SCHEME,
        "salt": base64.b64encode(salt).decode(),
        "hash": hashlib.sha256(salt + username.encode()).hexdigest(),
    }


def subject_matches(receipt: dict[str, Any], username: str) -> bool:
    subject = receipt["subject"]
    salt = base64.b64decode(subject["salt"])
    return secrets.compare_digest(subject_commitment(username, salt)["hash"], subject["hash"])


def _data_key(user, kind: str, erasure: Erasure) -> dict[str, Any]:
    """Forget everything: the key it destroyed (none if the user never wrote anything). A
    conversation deleted: the user's key, which stays (it encrypts the rest of their data); a later
    "forget everything" receipt names it destroyed."""
    if kind != ErasureReceipt.Kind.CONVERSATION_DELETED:
        destroyed = erasure.data_key_ids[:1]
        return {"id": destroyed[0] if destroyed else None, "destroyed": bool(destroyed)}
    kept = UserKey.objects.filter(user=user).values_list("pk", flat=True).first()
    return {"id": str(kept) if kept else None, "destroyed": False}


def verification_keys() -> dict[str, Any]:
    """The public keys receipts of this server verify with, by key id: the current one, then the
    earlier ones (RECEIPT_PUBLIC_KEYS)."""
    keys = [settings.RECEIPT_SIGNING_KEY.public_key(), *settings.RECEIPT_PUBLIC_KEYS]
    return {key_id(key): key for key in keys}


def receipt_public_keys() -> list[dict[str, Any]]:
    """The verification keys as published (the API, `manage.py receipt_key`)."""
    return [
        {
            "id": kid,
            "algorithm": ALGORITHM,
            "current": index == 0,
            "public_key": base64.b64encode(public_raw(key)).decode(),
            "pem": public_pem(key),
        }
        for index, (kid, key) in enumerate(verification_keys().items())
    ]


def receipt_verify(document: bytes, public_keys: dict[str, Any]) -> dict[str, Any]:
    """The receipt in `document` if its signature verifies with one of `public_keys` (by key id);
    ReceiptInvalid otherwise, saying why. Reformatting the JSON keeps it valid; changing anything in
    it does not."""
    data = _parse(document)
    receipt, signature = data["receipt"], data["signature"]
    signing_key = receipt.get("signing_key")
    if not isinstance(signing_key, dict) or signing_key.get("algorithm") != ALGORITHM:
        raise ReceiptInvalid(f"not signed with {ALGORITHM}")
    public_key = public_keys.get(signing_key.get("id"))
    if public_key is None:
        raise ReceiptInvalid(
            f"signed with key {signing_key.get('id')!r}, which is not among the public keys given"
        )
    if not signature_valid(public_key, _signature_bytes(signature), canonical(receipt)):
        raise ReceiptInvalid("the signature does not match the receipt: it was changed")
    if set(receipt) != RECEIPT_FIELDS or receipt["format"] != FORMAT:
        raise ReceiptInvalid("signed, but not a receipt of a format this server knows")
    return receipt


def _parse(document: bytes) -> dict[str, Any]:
    if len(document) > MAX_DOCUMENT_BYTES:
        raise ReceiptInvalid(f"larger than {MAX_DOCUMENT_BYTES} bytes: not a receipt")
    try:
        data = json.loads(
            document.decode("utf-8"),
            object_pairs_hook=_no_repeated_keys,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except UnicodeDecodeError:
        raise ReceiptInvalid("not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ReceiptInvalid(f"not a receipt's JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"receipt", "signature"}:
        raise ReceiptInvalid('not a receipt: expected exactly "receipt" and "signature"')
    if not isinstance(data["receipt"], dict) or not isinstance(data["signature"], str):
        raise ReceiptInvalid("not a receipt: the receipt must be an object, the signature a string")
    return data


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key is repeated")  # a reader could see either value
    return dict(pairs)


def _no_float(text: str):
    raise ValueError(f"a non-integer number ({text}): receipts hold none")


def _signature_bytes(signature: str) -> bytes:
    """The signature's 64 bytes; a base64 text that is not exactly their encoding is refused (a
    lenient decoder ignores some changed characters)."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptInvalid("the signature is not base64") from None
    if len(raw) != 64 or base64.b64encode(raw).decode() != signature:
        raise ReceiptInvalid("the signature is not an Ed25519 signature's base64")
    return raw
