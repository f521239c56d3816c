"""Memory settings and consent pages."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ConsentRecord
from accounts.selectors import consents_in_force, memory_policy, memory_settings_get
from chat.models import Conversation


def test_it_saves_memory_settings(alice_client, alice):
    response = alice_client.post(
        "/accounts/privacy/settings/",
        {"memory_enabled": "", "use_past_chats": "on", "temporary_chat_hours": "6"},
    )
    assert response.status_code == 302
    saved = memory_settings_get(user=alice)
    assert (saved.memory_enabled, saved.use_past_chats, saved.temporary_chat_hours) == (
        False,
        True,
        6,
    )
    assert not memory_policy(user=alice).inject


def test_it_refuses_out_of_range_hours(alice_client, alice):
    response = alice_client.post(
        "/accounts/privacy/settings/", {"memory_enabled": "on", "temporary_chat_hours": "0"}
    )
    assert response.status_code == 200 and b"Between 1 and 720" in response.content


def test_withdrawing_consent_is_one_click_and_recorded(alice_client, alice):
    page = alice_client.get("/accounts/privacy/consent/")
    assert b"Withdraw" in page.content and b"policy 2026-11" in page.content

    alice_client.post("/accounts/privacy/consent/change/", {"purpose": "memory", "granted": "0"})

    record = consents_in_force(user=alice)["memory"]
    assert not record.granted and record.method == "consent page"
    assert not memory_policy(user=alice).extract


def test_a_sensitive_category_can_be_opted_in(alice_client, alice):
    alice_client.post(
        "/accounts/privacy/consent/change/", {"purpose": "sensitive:health", "granted": "1"}
    )
    assert memory_policy(user=alice).sensitive_categories == {"health"}


def test_an_unknown_purpose_is_refused(alice_client, alice):
    alice_client.post("/accounts/privacy/consent/change/", {"purpose": "app:evil", "granted": "1"})
    assert not ConsentRecord.objects.filter(purpose="app:evil").exists()


def test_a_temporary_chat_can_be_started_from_the_chat_page(alice_client, alice):
    alice_client.post("/chat/send/", {"message": "just between us", "temporary": "on"})
    conversation = Conversation.objects.get(user=alice)
    assert conversation.temporary
    assert b"temporary chat" in alice_client.get(f"/chat/{conversation.pk}/").content


@pytest.mark.parametrize("url", ["/accounts/privacy/settings/", "/accounts/privacy/consent/"])
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _conversation_with_memory(user, run_on_commit):
    from chat.services import chat_turn

    return run_on_commit(
        chat_turn, user=user, conversation=None, text="I live in Lisbon."
    ).conversation


def test_deleting_a_conversation_needs_the_password_and_the_typed_word(
    alice_client, alice, run_on_commit
):
    from memories.models import Memory

    conversation = _conversation_with_memory(alice, run_on_commit)
    url = f"/chat/{conversation.pk}/delete/"

    wrong_password = alice_client.post(url, {"password": "nope", "confirmation": "delete"})
    not_typed = alice_client.post(url, {"password": "alice-pass-123", "confirmation": "yes"})
    assert b"That is not your password" in wrong_password.content
    assert b"Type exactly" in not_typed.content
    assert Conversation.objects.filter(pk=conversation.pk).exists()

    response = alice_client.post(url, {"password": "alice-pass-123", "confirmation": "delete"})
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Memory.objects.filter(user=alice).exists()


def test_bob_gets_404_deleting_alices_conversation(alice, bob, run_on_commit):
    conversation = _conversation_with_memory(alice, run_on_commit)
    client = Client()
    client.force_login(bob)
    url = f"/chat/{conversation.pk}/delete/"
    assert client.get(url).status_code == 404
    assert (
        client.post(url, {"password": "bob-pass-123", "confirmation": "delete"}).status_code == 404
    )
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.parametrize("delete_account", [False, True])
def test_forget_everything_page(alice_client, alice, run_on_commit, delete_account):
    from accounts.models import User

    _conversation_with_memory(alice, run_on_commit)
    form = {"password": "alice-pass-123", "confirmation": "forget everything"}
    assert (
        b"That is not your password"
        in alice_client.post("/accounts/privacy/forget/", {**form, "password": "x"}).content
    )

    alice_client.post(
        "/accounts/privacy/forget/", {**form, "delete_account": "on"} if delete_account else form
    )

    assert not Conversation.objects.filter(user_id=alice.pk).exists()
    assert User.objects.filter(pk=alice.pk).exists() is not delete_account


def test_the_access_log_shows_the_assistant_and_api_reads(
    alice_client, alice, alice_api, run_on_commit
):
    from chat.services import chat_turn

    run_on_commit(chat_turn, user=alice, conversation=None, text="Remember that I'm vegan.")
    conversation = chat_turn(user=alice, conversation=None, text="dinner ideas?").conversation
    alice_api.post("/api/v1/context", {"query": "dinner"}, format="json")

    page = alice_client.get("/accounts/privacy/access-log/").content.decode()

    assert "The assistant" in page and "chat reply" in page and conversation.display_title in page
    assert "An API client" in page and "context API" in page


def test_the_access_log_is_only_your_own(alice, bob, run_on_commit):
    from chat.services import chat_turn

    chat_turn(user=alice, conversation=None, text="hello there")
    client = Client()
    client.force_login(bob)
    assert (
        b"Nothing has read your memories yet" in client.get("/accounts/privacy/access-log/").content
    )


def test_pages_send_a_content_security_policy(alice_client):
    for url in ("/chat/", "/memories/", "/accounts/privacy/settings/"):
        policy = alice_client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "object-src 'none'" in policy
