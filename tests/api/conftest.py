"""API fixtures: alice's data (a conversation, a memory, a ready export, an import waiting for her
choice), registered apps and their clients, and a fresh throttling cache for every test."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.connected_apps import app_grant, app_register
from accounts.receipts import receipt_issue
from accounts.services import api_key_create
from chat.services import chat_turn
from imports.services import import_upload
from memoryweb.privacy import Erasure
from tests.factories import memory_saying, ready_export
from tests.imports.exports import as_json, as_zip, sample_claude


@pytest.fixture(autouse=True)
def _fresh_throttle_and_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    # Hundreds of users are made here: a fast hasher (the real one takes a quarter of a second per
    # user).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice_data(alice, run_on_commit):
    """Alice's conversation (her message and the reply), the memory learned from it, a ready
    export, a spare API key of hers, an erasure receipt (of an erasure of nothing) and an import."""
    turn = run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Lisbon.")
    memory = memory_saying("User lives in Lisbon", user=alice)
    export = ready_export(alice)
    spare_key, _ = api_key_create(user=alice, name="spare", scopes=["context:read"])
    receipt = receipt_issue(user=alice, kind="conversation_deleted", erasure=Erasure())
    upload = SimpleUploadedFile("export.zip", as_zip(as_json(sample_claude())))
    job, _ = run_on_commit(import_upload, user=alice, upload=upload, choose=True)
    return {
        "receipt": receipt.id,
        "import": job.pk,
        "key": spare_key.pk,
        "conversation": turn.conversation.pk,
        "message": turn.user_message.pk,
        "reply": turn.reply.pk,
        "memory": memory.pk,
        "export": export.pk,
    }


def app_client(secret: str, username: str | None) -> APIClient:
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if username is not None:
        headers["HTTP_X_MEMORYWEB_USER"] = username
    client.credentials(**headers)
    return client


@pytest.fixture
def calendar(db):
    """A registered app and its secret."""
    return app_register(name="Calendar", description="Reminds you of what matters.")


@pytest.fixture
def calendar_for_alice(calendar, alice):
    """The Calendar app acting for alice, who granted it both scopes."""
    app, secret = calendar
    app_grant(user=alice, app=app, scopes=["context:read", "memories:write"])
    return app_client(secret, "alice")
