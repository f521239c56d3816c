"""The server's Ed25519 signing key, which signs erasure receipts, and the public keys that verify them.

Read by the settings, so nothing here touches Django models. `RECEIPT_SIGNING_KEY` is the private key:
its 32 bytes in URL-safe base64 (any 32 random bytes: `python -c "import base64, os;
print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`); the local default is a key generated once
in the data folder (mode 0600). `RECEIPT_PUBLIC_KEYS` lists the public keys of earlier signing keys
(comma-separated, base64 of the 32 raw bytes), so that receipts signed before a rotation still verify.
A key is named by its fingerprint (`key_id`), which every receipt carries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured

from vault.master import private_file_create

ALGORITHM = "Ed25519"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A key's fingerprint: the first 16 bytes of SHA-256 over its raw public bytes, in hex."""
    return hashlib.sha256(public_raw(public_key)).hexdigest()[:32]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_from_pem(pem: bytes) -> Ed25519PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo); ValueError for anything else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signature_valid(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def load_signing_key(raw: str, default_file: Path) -> Ed25519PrivateKey:
    """The configured key, or the local default kept (mode 0600) in `default_file`, made on first
    use."""
    if not raw.strip() and not default_file.exists():
        private_file_create(default_file, base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    return read_signing_key(raw, default_file)


def read_signing_key(raw: str, default_file: Path) -> Ed25519PrivateKey:
    """The configured key, or the local default in `default_file`; makes nothing (the settings read
    this: `memoryweb.bootstrap.prepare` makes the local file first)."""
    if raw.strip():
        return _private_key(raw.strip(), "RECEIPT_SIGNING_KEY")
    if not default_file.exists():
        raise ImproperlyConfigured(
            f"RECEIPT_SIGNING_KEY is not set and {default_file} does not exist "
            "(start through manage.py)"
        )
    return _private_key(default_file.read_text().strip(), str(default_file))


def parse_public_keys(raw: str) -> tuple[Ed25519PublicKey, ...]:
    """`RECEIPT_PUBLIC_KEYS`: earlier keys' public halves, base64 of their 32 raw bytes, by commas."""
    keys = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        keys.append(Ed25519PublicKey.from_public_bytes(_key_bytes(entry, "RECEIPT_PUBLIC_KEYS")))
    return tuple(keys)


def _private_key(encoded: str, source: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_key_bytes(encoded, source))


def _key_bytes(encoded: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{source}: not URL-safe base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{source}: a key must be 32 bytes, got {len(key)}")
    return key
