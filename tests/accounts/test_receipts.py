"""Erasure receipts: made by forget everything, a conversation deleted and the account deleted, with
the counts the erasure itself made and no content; signed so that any change fails; verified by
`manage.py verify_receipt` offline with the published key, across a key rotation; kept through
forget everything, gone with the account; on the portal and the API for their owner only."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client

from accounts.models import ErasureReceipt, User
from accounts.privacy import forget_everything
from accounts.receipts import (
    ReceiptInvalid,
    canonical,
    receipt_verify,
    subject_matches,
    verification_keys,
)
from chat.models import Conversation, Message
from chat.services import chat_turn, conversation_delete
from memories.models import Episode, Memory, MemoryRevision
from tests.factories import make_memory
from vault.models import UserKey
from vault.signing import key_id, load_signing_key, parse_public_keys, public_pem

WORDS = ("Quetzalcoatlus", "Brindlemoor", "vermilion-otter")  # seeded content, never in a receipt


def _chat(user, run_on_commit, *texts) -> Conversation:
    conversation = None
    for text in texts:
        conversation = run_on_commit(
            chat_turn, user=user, conversation=conversation, text=text
        ).conversation
    return conversation


def _seed(user, run_on_commit) -> Conversation:
    conversation = _chat(
        user,
        run_on_commit,
        f"Remember that my parrot is called {WORDS[0]}.",
        f"I live on {WORDS[1]} Street and love the {WORDS[2]}.",
    )
    make_memory(user, f"User's favourite animal is the {WORDS[2]}")
    return conversation


def _counts(user) -> dict[str, int]:
    return {
        "conversations": Conversation.objects.for_user(user).count(),
        "messages": Message.objects.for_user(user).count(),
        "memories": Memory.objects.for_user(user).count(),
        "memory_revisions": MemoryRevision.objects.filter(memory__user=user).count(),
        "episodes": Episode.objects.for_user(user).count(),
    }


def _verify(document: str | bytes) -> dict:
    raw = document.encode() if isinstance(document, str) else document
    return receipt_verify(raw, verification_keys())


def _resign(document: str, change) -> str:
    """The document with `change` applied to its receipt, signed again with another key."""
    data = json.loads(document)
    change(data["receipt"])
    other = Ed25519PrivateKey.generate()
    data["signature"] = base64.b64encode(other.sign(canonical(data["receipt"]))).decode()
    return canonical(data).decode()


def test_forget_everything_signs_a_receipt_of_what_it_erased(alice, bob, run_on_commit):
    _seed(alice, run_on_commit)
    _seed(bob, run_on_commit)
    before = _counts(alice)
    key = str(UserKey.objects.get(user=alice).pk)
    assert all(before.values()) and before["memory_revisions"] > 0

    signed = forget_everything(user=alice, delete_account=False)

    receipt = _verify(signed.document)
    assert receipt["kind"] == "forget_everything" and receipt["id"] == str(signed.id)
    assert {kind: receipt["erased"].get(kind, 0) for kind in before} == before
    assert receipt["erased"]["data_keys"] == 1 and receipt["erased"]["recalls"] >= 0
    assert receipt["data_key"] == {"id": key, "destroyed": True}
    assert receipt["erased_at"].endswith("Z") and receipt["server"]["software"] == "memoryweb"
    assert receipt["signing_key"]["id"] == next(iter(verification_keys()))
    stored = ErasureReceipt.objects.get(user=alice)
    assert stored.document == signed.document and str(stored.pk) == receipt["id"]
    assert _counts(bob)["memories"] > 0  # bob's are untouched


def test_a_receipt_holds_no_content(alice, run_on_commit):
    conversation = _seed(alice, run_on_commit)
    texts = [m.text for m in Memory.objects.for_user(alice)]
    texts += [m.content for m in Message.objects.for_user(alice)] + [conversation.title]
    fingerprints = list(Memory.objects.for_user(alice).values_list("fingerprint", flat=True))

    document = forget_everything(user=alice, delete_account=False).document

    lowered = document.lower()
    assert not [w for w in WORDS if w.lower() in lowered]
    assert not [t for t in texts if t.lower() in lowered]
    assert not [f for f in fingerprints if f in document]
    digests = {hashlib.sha256(t.encode()).hexdigest() for t in texts + list(WORDS)}
    assert not [d for d in digests if d in document]
    assert "alice" not in lowered  # the user is named only by a salted hash
    assert subject_matches(_verify(document), "alice")
    assert not subject_matches(_verify(document), "bob")


def test_any_changed_byte_fails(alice, run_on_commit):
    _seed(alice, run_on_commit)
    document = forget_everything(user=alice, delete_account=False).document.encode()
    _verify(document)
    for position in range(len(document)):
        changed = bytearray(document)
        changed[position] ^= 0x01
        with pytest.raises(ReceiptInvalid):
            _verify(bytes(changed))


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["erased"].update(messages=r["erased"]["messages"] - 1),
        lambda r: r.update(erased_at="2020-01-01T00:00:00.000000Z"),
        lambda r: r["data_key"].update(destroyed=False),
        lambda r: r.update(extra="added"),
    ],
    ids=["a count", "the time", "the key", "a field added"],
)
def test_a_changed_value_fails_even_reformatted(alice, run_on_commit, change):
    _seed(alice, run_on_commit)
    data = json.loads(forget_everything(user=alice, delete_account=False).document)
    assert _verify(json.dumps(data, indent=4))  # reformatting changes no value: still valid
    change(data["receipt"])
    with pytest.raises(ReceiptInvalid, match="changed"):
        _verify(json.dumps(data, indent=4))


def test_a_changed_signature_or_another_key_fails(alice):
    document = forget_everything(user=alice, delete_account=False).document
    data = json.loads(document)
    raw = bytearray(base64.b64decode(data["signature"]))
    raw[0] ^= 0x80
    with pytest.raises(ReceiptInvalid, match="changed"):
        _verify(canonical({**data, "signature": base64.b64encode(raw).decode()}))
    with pytest.raises(ReceiptInvalid, match="changed"):  # signed by another key, naming ours
        _verify(_resign(document, lambda r: None))
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ReceiptInvalid, match="not among the public keys"):
        receipt_verify(document.encode(), {key_id(other): other})


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"not json", "not a receipt's JSON"),
        (b"[1, 2]", "exactly"),
        (b'{"receipt": {}, "signature": "x", "more": 1}', "exactly"),
        (b'{"receipt": {"a": 1, "a": 2}, "signature": "x"}', "repeated"),
        (b'{"receipt": {"a": 1.5}, "signature": "x"}', "non-integer"),
        (b" " * 70_000, "larger"),
    ],
)
def test_malformed_files_are_invalid_with_a_reason(content, reason):
    with pytest.raises(ReceiptInvalid, match=reason):
        receipt_verify(content, {})


def test_verify_receipt_command_offline_with_the_published_key(
    alice, run_on_commit, tmp_path, capsys
):
    _seed(alice, run_on_commit)
    document = forget_everything(user=alice, delete_account=False).document
    receipt_file, pem_file = tmp_path / "receipt.json", tmp_path / "key.pem"
    receipt_file.write_text(document)
    call_command("receipt_key", "--pem", stdout=pem_file.open("w"))

    call_command("verify_receipt", str(receipt_file), "--public-key", str(pem_file))
    assert capsys.readouterr().out.startswith("valid: receipt ")
    call_command("verify_receipt", str(receipt_file), "--username", "alice")
    assert "data key:" in capsys.readouterr().out

    receipt_file.write_text(document.replace('"data_keys":1', '"data_keys":0'))
    with pytest.raises(SystemExit) as exit_code:
        call_command("verify_receipt", str(receipt_file), "--public-key", str(pem_file))
    assert exit_code.value.code == 1
    assert capsys.readouterr().out.startswith("invalid: the signature does not match")

    receipt_file.write_text(document)
    for args in (["--username", "bob"], ["--public-key", str(_other_pem(tmp_path))]):
        with pytest.raises(SystemExit) as exit_code:
            call_command("verify_receipt", str(receipt_file), *args)
        assert exit_code.value.code == 1 and capsys.readouterr().out.startswith("invalid: ")


def _other_pem(tmp_path):
    path = tmp_path / "other.pem"
    path.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    return path


def test_receipts_signed_before_a_rotation_verify_with_the_old_public_key(alice, settings):
    old = settings.RECEIPT_SIGNING_KEY
    document = forget_everything(user=alice, delete_account=False).document.encode()
    settings.RECEIPT_SIGNING_KEY = Ed25519PrivateKey.generate()
    with pytest.raises(ReceiptInvalid, match="not among"):
        _verify(document)
    old_public = base64.b64encode(old.public_key().public_bytes_raw()).decode()
    settings.RECEIPT_PUBLIC_KEYS = parse_public_keys(old_public)
    assert _verify(document)["signing_key"]["id"] == key_id(old.public_key())
    new = forget_everything(user=alice, delete_account=False).document.encode()
    assert _verify(new)["signing_key"]["id"] == key_id(settings.RECEIPT_SIGNING_KEY.public_key())


def test_receipts_stay_through_forget_everything_and_go_with_the_account(alice, run_on_commit):
    first = forget_everything(user=alice, delete_account=False)
    _seed(alice, run_on_commit)
    second = forget_everything(user=alice, delete_account=False)
    assert set(ErasureReceipt.objects.for_user(alice).values_list("pk", flat=True)) == {
        first.id,
        second.id,
    }
    assert _verify(first.document)["erased"] == {}  # nothing was there to erase

    last = forget_everything(user=alice, delete_account=True)

    receipt = _verify(last.document)
    assert receipt["kind"] == "account_deleted"
    assert receipt["erased"]["users"] == 1 and receipt["erased"]["erasure_receipts"] == 2
    assert not ErasureReceipt.objects.exists()


def test_deleting_a_conversation_signs_a_receipt_and_keeps_the_key(alice, run_on_commit):
    conversation = _seed(alice, run_on_commit)
    messages = conversation.messages.count()
    key = str(UserKey.objects.get(user=alice).pk)

    result = conversation_delete(user=alice, conversation=conversation, receipt=True)

    receipt = _verify(ErasureReceipt.objects.get(pk=result["receipt"]).document)
    assert receipt["kind"] == "conversation_deleted"
    assert receipt["erased"]["conversations"] == 1 and receipt["erased"]["messages"] == messages
    assert receipt["erased"]["memories"] == result["memories"] > 0
    assert receipt["data_key"] == {"id": key, "destroyed": False}
    assert UserKey.objects.filter(pk=key).exists()


def test_periodic_deletions_sign_no_receipt(alice, run_on_commit):
    conversation = _seed(alice, run_on_commit)
    result = conversation_delete(user=alice.pk, conversation=conversation, keep_memories=True)
    assert result["receipt"] is None and not ErasureReceipt.objects.exists()


def test_the_portal_lists_receipts_for_download(alice, alice_client, bob_client, run_on_commit):
    conversation = _seed(alice, run_on_commit)
    alice_client.post(
        f"/chat/{conversation.pk}/delete/", {"confirmation": "delete", "password": "alice-pass-123"}
    )
    receipt = ErasureReceipt.objects.get(user=alice)

    page = alice_client.get("/accounts/privacy/receipts/")
    assert page.status_code == 200
    assert (
        b"Conversation deleted" in page.content and f"receipt-{receipt.pk}".encode() in page.content
    )
    url = f"/accounts/privacy/receipts/{receipt.pk}/download/"
    download = alice_client.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "application/json"
    assert "attachment" in download["Content-Disposition"]
    assert download.content == receipt.document.encode() and _verify(download.content)
    assert bob_client.get(url).status_code == 404
    assert receipt.pk.hex not in bob_client.get("/accounts/privacy/receipts/").content.decode()


def test_deleting_the_account_on_the_portal_hands_over_the_receipt_once(alice, alice_client):
    response = alice_client.post(
        "/accounts/privacy/forget/",
        {"confirmation": "forget everything", "password": "alice-pass-123", "delete_account": "on"},
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/deleted/"
    assert not User.objects.filter(username="alice").exists()
    assert not ErasureReceipt.objects.exists()  # kept nowhere: it would go with the account

    page = alice_client.get("/accounts/deleted/")
    assert page.status_code == 200 and b"Download the receipt" in page.content
    download = alice_client.get("/accounts/deleted/receipt/")
    assert _verify(download.content)["kind"] == "account_deleted"
    assert "attachment" in download["Content-Disposition"]


def test_the_api_lists_and_serves_receipts_and_publishes_the_key(alice, alice_api, bob_api):
    forgotten = alice_api.post(
        "/api/v1/me/forget", {"confirmation": "forget everything"}, format="json"
    ).json()
    assert _verify(canonical(forgotten["receipt"]))["id"] == forgotten["receipt_id"]

    listed = alice_api.get("/api/v1/me/receipts").json()["results"]
    assert [r["id"] for r in listed] == [forgotten["receipt_id"]]
    assert listed[0]["kind"] == "forget_everything" and listed[0]["erased"] == {}
    url = f"/api/v1/me/receipts/{forgotten['receipt_id']}"
    served = alice_api.get(url)
    assert served.content == ErasureReceipt.objects.get().document.encode()
    assert bob_api.get(url).status_code == 404
    assert bob_api.get("/api/v1/me/receipts").json()["results"] == []

    keys = Client().get("/.well-known/memoryweb-receipt-keys").json()["keys"]  # anonymous
    assert (
        keys[0]["current"]
        and keys[0]["id"] == json.loads(served.content)["receipt"]["signing_key"]["id"]
    )
    assert keys[0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_the_signing_key_is_generated_private_or_refused_when_malformed(tmp_path):
    path = tmp_path / "receipt_signing_key"
    key = load_signing_key("", path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key_id(load_signing_key("", path).public_key()) == key_id(key.public_key())
    for bad in ("not base64!", base64.urlsafe_b64encode(b"short").decode()):
        with pytest.raises(ImproperlyConfigured, match="RECEIPT_SIGNING_KEY"):
            load_signing_key(bad, path)
    with pytest.raises(ImproperlyConfigured, match="RECEIPT_PUBLIC_KEYS"):
        parse_public_keys("AAAA")
