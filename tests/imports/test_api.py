"""The import API: upload as multipart, follow {id, status, progress}, the conversations found,
choose, cancel, delete; errors in the API's shape. Who may call what: tests/api/test_access.py."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import memory_settings_update
from chat.models import Conversation
from tests.imports.exports import as_json, as_zip, sample_chatgpt, sample_claude


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def _post(client, body: bytes, **fields):
    upload = SimpleUploadedFile("export.zip", body)
    return client.post("/api/v1/me/imports", {"file": upload, **fields}, format="multipart")


def test_an_upload_is_imported_and_its_progress_read(alice_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(alice_api, as_zip(as_json(sample_chatgpt())))
    assert response.status_code == 202
    job = response.json()
    assert {"id", "status", "progress"} <= set(job) and job["status"] == "queued"

    done = alice_api.get(f"/api/v1/me/imports/{job['id']}").json()

    assert (done["status"], done["progress"], done["source"]) == ("done", 100, "chatgpt")
    assert (done["conversations_imported"], done["messages_imported"]) == (2, 4)
    items = alice_api.get(f"/api/v1/me/imports/{job['id']}/conversations").json()["results"]
    assert [(i["title"], i["state"]) for i in items] == [
        ("Moving to Lisbon", "imported"),
        ("I am vegetarian.", "imported"),
        ("Empty", "empty"),
    ]
    assert items[0]["conversation"] and items[2]["conversation"] is None
    listed = alice_api.get("/api/v1/me/imports").json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_the_same_file_again_answers_200_with_the_first_import(
    alice_api, django_capture_on_commit_callbacks
):
    body = as_json(sample_claude())
    with django_capture_on_commit_callbacks(execute=True):
        first = _post(alice_api, body).json()
    again = _post(alice_api, body)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert Conversation.objects.count() == 1


def test_choose_then_start_with_the_chosen_positions(alice_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = _post(alice_api, as_json(sample_chatgpt()), choose="true").json()
    assert alice_api.get(f"/api/v1/me/imports/{job['id']}").json()["status"] == "choosing"

    with django_capture_on_commit_callbacks(execute=True):
        started = alice_api.post(
            f"/api/v1/me/imports/{job['id']}/start", {"conversations": [0]}, format="json"
        )

    assert started.status_code == 202
    assert list(Conversation.objects.values_list("origin_id", flat=True)) == ["gpt-1"]
    again = alice_api.post(f"/api/v1/me/imports/{job['id']}/start", {}, format="json")
    assert again.status_code == 400 and "not waiting" in again.json()["error"]["message"]


def test_cancel_then_delete(alice_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = _post(alice_api, as_json(sample_chatgpt()), choose="true").json()

    cancelled = alice_api.post(f"/api/v1/me/imports/{job['id']}/cancel")
    deleted = alice_api.delete(f"/api/v1/me/imports/{job['id']}")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert deleted.status_code == 200 and deleted.json() == {
        "conversations": 0,
        "messages": 0,
        "memories": 0,
    }
    assert alice_api.get(f"/api/v1/me/imports/{job['id']}").status_code == 404


@pytest.mark.parametrize(
    "body, message",
    [
        (b"hello", "neither a zip nor JSON"),
        (as_zip(b"[]", member="other.json"), "no conversations.json"),
        (b'[{"id": 1}]', "not a ChatGPT or Claude export"),
    ],
)
def test_a_bad_file_is_a_400_saying_why(alice_api, body, message):
    response = _post(alice_api, body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_no_file_is_a_400_on_the_file_field(alice_api):
    response = alice_api.post("/api/v1/me/imports", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]


def test_with_memory_off_the_upload_is_refused(alice, alice_api):
    memory_settings_update(user=alice, memory_enabled=False)
    response = _post(alice_api, as_json(sample_claude()))
    assert (
        response.status_code == 400
        and "Memory is switched off" in response.json()["error"]["message"]
    )


def test_deleting_from_a_browser_session_needs_the_password(
    alice, alice_api, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    with django_capture_on_commit_callbacks(execute=True):
        job = _post(alice_api, as_json(sample_claude())).json()
    session = APIClient(enforce_csrf_checks=False)
    session.force_login(alice)

    refused = session.delete(f"/api/v1/me/imports/{job['id']}")
    allowed = session.delete(
        f"/api/v1/me/imports/{job['id']}", {"password": "alice-pass-123"}, format="json"
    )

    assert refused.status_code == 403 and allowed.status_code == 200
    assert not Conversation.objects.exists()
