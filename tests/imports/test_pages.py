"""The portal's Import page: upload, the list to choose from (all by default), progress that
refreshes itself, cancel, delete with the password; provenance on "What I remember"; another
user's import is a 404."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import memory_settings_update
from chat.models import Conversation
from imports.models import ImportJob
from tests.imports.exports import as_json, as_zip, sample_chatgpt


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


@pytest.fixture
def uploaded(alice_client, django_capture_on_commit_callbacks):
    """Alice uploaded the sample ChatGPT zip on the page: it is listed, waiting for her choice."""
    upload = SimpleUploadedFile("chatgpt.zip", as_zip(as_json(sample_chatgpt())))
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/accounts/privacy/import/", {"file": upload})
    job = ImportJob.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/accounts/privacy/import/{job.pk}/"
    )
    return job


def test_the_page_explains_and_offers_the_upload(alice_client):
    page = alice_client.get("/accounts/privacy/import/").content.decode()
    assert 'enctype="multipart/form-data"' in page and "imported from ChatGPT" in page
    assert "No imports yet." in page


def test_an_upload_lists_its_conversations_to_choose_from(alice_client, uploaded):
    page = alice_client.get(f"/accounts/privacy/import/{uploaded.pk}/").content.decode()

    assert "Waiting for your choice" in page and "Moving to Lisbon" in page
    assert page.count('name="leave_out"') == 2  # the empty one cannot be chosen
    assert "Nothing said in it" in page and not Conversation.objects.exists()


def test_importing_with_one_left_out(alice_client, uploaded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/accounts/privacy/import/{uploaded.pk}/start/", {"leave_out": ["1"]}
        )
    assert response.status_code == 302
    uploaded.refresh_from_db()
    assert uploaded.status == "done"
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Moving to Lisbon"]
    page = alice_client.get(f"/accounts/privacy/import/{uploaded.pk}/").content.decode()
    assert "Not chosen" in page and "Refresh" not in alice_client.get(
        f"/accounts/privacy/import/{uploaded.pk}/"
    )


def test_the_page_refreshes_itself_while_an_import_runs(alice, alice_client):
    job = ImportJob.objects.create(user=alice, status="running", file_sha256="0" * 64, file_size=1)
    response = alice_client.get(f"/accounts/privacy/import/{job.pk}/")
    assert response["Refresh"] == "3" and "This page updates by itself" in response.content.decode()
    assert alice_client.get("/accounts/privacy/import/")["Refresh"] == "3"


def test_what_i_remember_says_where_an_imported_memory_came_from(
    alice_client, uploaded, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/accounts/privacy/import/{uploaded.pk}/start/")

    page = alice_client.get("/memories/").content.decode()

    assert "imported from ChatGPT: Moving to Lisbon, Mar 4, 2024" in page


def test_cancel_then_delete_with_the_password(alice_client, uploaded):
    cancelled = alice_client.post(f"/accounts/privacy/import/{uploaded.pk}/cancel/", follow=True)
    assert "Import cancelled" in cancelled.content.decode()

    wrong = alice_client.post(
        f"/accounts/privacy/import/{uploaded.pk}/delete/",
        {"password": "nope", "confirmation": "delete"},
    )
    assert wrong.status_code == 200 and ImportJob.objects.exists()
    right = alice_client.post(
        f"/accounts/privacy/import/{uploaded.pk}/delete/",
        {"password": "alice-pass-123", "confirmation": "delete"},
    )
    assert right.status_code == 302 and not ImportJob.objects.exists()


def test_a_bad_file_is_shown_on_the_form(alice_client):
    upload = SimpleUploadedFile("x.json", b'{"not": "a list"}')
    response = alice_client.post("/accounts/privacy/import/", {"file": upload})
    assert response.status_code == 400
    assert "not a ChatGPT or Claude export" in response.content.decode()


def test_with_memory_off_the_page_says_so_and_offers_no_upload(alice, alice_client):
    memory_settings_update(user=alice, memory_enabled=False)
    page = alice_client.get("/accounts/privacy/import/").content.decode()
    assert "Memory is switched off" in page and 'name="file"' not in page


@pytest.mark.parametrize("path", ["", "start/", "cancel/", "delete/"])
def test_another_user_gets_404(bob_client, uploaded, path):
    method = bob_client.get if path in ("", "delete/") else bob_client.post
    assert method(f"/accounts/privacy/import/{uploaded.pk}/{path}").status_code == 404
    assert ImportJob.objects.get().status == "choosing"
