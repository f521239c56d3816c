"""The privacy endpoints call the portal's services: settings, consent, export (start, poll,
download, expiry), the access log, forget everything (typed confirmation), delete a conversation."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ConsentRecord, DataExport, User
from accounts.selectors import memory_policy
from chat.models import Conversation
from memories.models import Memory
from tests.factories import ready_export


def test_settings_are_read_and_changed(alice_api, alice):
    assert alice_api.get("/api/v1/me/settings").json()["use_past_chats"] is True
    response = alice_api.patch(
        "/api/v1/me/settings", {"memory_enabled": False, "temporary_chat_hours": 2}, format="json"
    )
    assert response.status_code == 200
    assert (
        response.json()["memory_enabled"] is False and response.json()["temporary_chat_hours"] == 2
    )
    assert memory_policy(user=alice).inject is False


def test_the_time_zone_is_read_and_changed(alice_api, alice):
    assert alice_api.get("/api/v1/me/settings").json()["time_zone"] == "UTC"
    response = alice_api.patch("/api/v1/me/settings", {"time_zone": "Europe/Paris"}, format="json")
    assert response.status_code == 200 and response.json()["time_zone"] == "Europe/Paris"
    alice.refresh_from_db()
    assert alice.time_zone == "Europe/Paris"


@pytest.mark.parametrize(
    "payload",
    [
        {"temporary_chat_hours": 0},
        {"temporary_chat_hours": 721},
        {"memory_enabled": "x"},
        {"time_zone": "Mars/Base"},
    ],
)
def test_bad_settings_are_a_400(alice_api, payload):
    assert alice_api.patch("/api/v1/me/settings", payload, format="json").status_code == 400


def test_a_new_user_sees_the_private_defaults(bob_api, bob):
    bob.memory_settings.delete()
    body = bob_api.get("/api/v1/me/settings").json()
    assert body == {
        "memory_enabled": True,
        "use_past_chats": False,
        "temporary_chat_hours": 24,
        "time_zone": "UTC",
        "updated_at": None,
    }


def test_consent_is_listed_granted_and_withdrawn(alice_api, alice):
    listed = alice_api.get("/api/v1/me/consents?page_size=100").json()
    memory = next(c for c in listed["results"] if c["purpose"] == "memory")
    assert memory["granted"] is True and memory["method"] == "test fixture"

    response = alice_api.post(
        "/api/v1/me/consents", {"purpose": "memory", "granted": False}, format="json"
    )

    assert response.status_code == 200 and response.json()["granted"] is False
    record = ConsentRecord.objects.for_user(alice).first()
    assert record.method == "api" and not record.granted
    assert memory_policy(user=alice).extract is False
    assert (
        alice_api.post(
            "/api/v1/me/consents", {"purpose": "nope", "granted": True}, format="json"
        ).status_code
        == 400
    )


def test_an_export_is_started_polled_and_downloaded(
    alice_api, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        started = alice_api.post("/api/v1/me/exports")
    assert started.status_code == 202
    export_id = started.json()["id"]

    polled = alice_api.get(f"/api/v1/me/exports/{export_id}").json()
    assert polled["status"] == "ready" and polled["progress"] == 100

    download = alice_api.get(f"/api/v1/me/exports/{export_id}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert "attachment" in download["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert {"export.json", "export.md"} <= set(archive.namelist())
    assert alice_api.get("/api/v1/me/exports").json()["count"] == 1


def test_an_unfinished_export_is_404_and_an_expired_one_410(alice_api, alice):
    pending = DataExport.objects.create(user=alice)
    assert alice_api.get(f"/api/v1/me/exports/{pending.pk}/download").status_code == 404
    export = ready_export(alice)
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = alice_api.get(f"/api/v1/me/exports/{export.pk}/download")

    assert response.status_code == 410 and response.json()["error"]["code"] == "expired"
    assert DataExport.objects.get(pk=export.pk).status == "expired"


@pytest.mark.parametrize("payload", [{}, {"confirmation": "yes"}, {"confirmation": "forget"}])
def test_forget_everything_needs_the_typed_confirmation(alice_api, alice_data, payload):
    response = alice_api.post("/api/v1/me/forget", payload, format="json")
    assert response.status_code == 400
    assert Memory.objects.filter(pk=alice_data["memory"]).exists()


def test_forget_everything_erases_all_and_can_delete_the_account(alice_api, alice, alice_data):
    response = alice_api.post(
        "/api/v1/me/forget", {"confirmation": " Forget Everything "}, format="json"
    )
    body = response.json()
    assert (body["forgotten"], body["account_deleted"]) == (True, False)
    assert body["receipt"]["receipt"]["id"] == body["receipt_id"]  # tests/accounts/test_receipts.py
    assert (
        not Memory.objects.filter(user=alice).exists()
        and not Conversation.objects.filter(user=alice).exists()
    )
    assert not DataExport.objects.filter(user=alice).exists()

    deleted = alice_api.post(
        "/api/v1/me/forget",
        {"confirmation": "forget everything", "delete_account": True},
        format="json",
    )
    assert deleted.json()["account_deleted"] is True
    assert not User.objects.filter(pk=alice.pk).exists()
    assert alice_api.get("/api/v1/memories").status_code == 401


def test_the_access_log_lists_api_reads(alice_api, alice):
    alice_api.post("/api/v1/context", {"query": "anything"}, format="json")
    alice_api.get("/api/v1/memories")
    body = alice_api.get("/api/v1/me/access-log").json()
    reads = [e for e in body["results"] if e["actor"] == "api"]
    assert {e["purpose"] for e in reads} == {"context API", "memories API"}
    assert all(e["api_key"] and e["app"] is None for e in reads)
    # the rest: the key's creation (tests/conftest.py made it), by the user, with no item read
    others = [(e["actor"], e["purpose"], e["items"]) for e in body["results"] if e not in reads]
    assert others == [("user", "API key created", 0)]
