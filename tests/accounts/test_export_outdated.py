"""An export made before an erasure holds what was erased: once anything of the user's is erased
(a memory, a "Forget about …", a conversation), their ready exports expire with their files and
those being prepared fail."""

from __future__ import annotations

import pytest

from accounts.export.jobs import export_build
from accounts.models import DataExport
from accounts.privacy import exports_dir
from chat.services import chat_turn, conversation_delete
from memories.erasure import memory_delete
from tests.factories import make_memory, ready_export


@pytest.fixture(autouse=True)
def _own_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def test_deleting_a_memory_expires_the_exports_made_before(alice, bob, run_on_commit):
    memory = make_memory(alice, "User lives in Lisbon")
    export, others = ready_export(alice), ready_export(bob)
    path = exports_dir() / export.file_name
    run_on_commit(memory_delete, user=alice, memory=memory)
    export.refresh_from_db()
    assert export.status == DataExport.Status.EXPIRED and not path.exists()
    others.refresh_from_db()
    assert others.status == DataExport.Status.READY  # bob erased nothing


def test_deleting_a_conversation_does_too_and_its_download_is_gone(
    alice, alice_client, run_on_commit
):
    conversation = run_on_commit(chat_turn, user=alice, conversation=None, text="Hi").conversation
    export = ready_export(alice)
    run_on_commit(conversation_delete, user=alice, conversation=conversation)
    response = alice_client.get(f"/accounts/privacy/export/{export.token}/download/")
    assert response.status_code == 410


def test_an_export_being_prepared_fails_and_its_build_writes_nothing(alice, run_on_commit):
    memory = make_memory(alice, "User lives in Lisbon")
    pending = DataExport.objects.create(user=alice)
    run_on_commit(memory_delete, user=alice, memory=memory)
    pending.refresh_from_db()
    assert pending.status == DataExport.Status.FAILED and "erased" in pending.error
    assert export_build(export_id=pending.pk) is False
    assert not list(exports_dir().iterdir())
