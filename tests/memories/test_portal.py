""" "What I remember": add, edit, don't use, delete (behind re-authentication), search and filter,
history, and nobody else's memories."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.services import chat_turn
from memories.models import Memory
from memories.retrieval import build_context


def test_remember_this_adds_a_pinned_memory(alice_client, alice):
    alice_client.post(
        "/memories/remember/", {"kind": "preference", "text": "User prefers window seats"}
    )

    memory = Memory.objects.get(user=alice)
    assert (memory.kind, memory.pinned, memory.source) == ("preference", True, "stated")
    assert memory.revisions.get().actor == "user"
    assert "User prefers window seats" in [
        i.text for i in build_context(alice, "book me a flight").items
    ]


def test_a_sensitive_memory_is_used_only_with_the_categorys_consent(alice_client, alice):
    from accounts.services import consent_set

    alice_client.post(
        "/memories/remember/", {"kind": "preference", "text": "User is allergic to peanuts"}
    )
    assert Memory.objects.get(user=alice).sensitive_categories == ["health"]
    assert build_context(alice, "snack ideas").items == []

    consent_set(user=alice, purpose="sensitive:health", granted=True, method="test")
    assert "User is allergic to peanuts" in [
        i.text for i in build_context(alice, "snack ideas").items
    ]


def test_remember_this_supersedes_a_known_value(alice_client, alice, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Paris.")

    alice_client.post("/memories/remember/", {"kind": "fact", "text": "User lives in Berlin"})

    assert [m.text for m in Memory.objects.for_user(alice).current()] == ["User lives in Berlin"]
    page = alice_client.get("/memories/")
    assert b"Before: <s>User lives in Paris</s>" in page.content


def test_editing_keeps_the_old_text_in_history(alice_client, alice, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Pariss.")
    memory = Memory.objects.get(user=alice)

    alice_client.post(f"/memories/{memory.pk}/edit/", {"text": "User lives in Paris"})

    memory.refresh_from_db()
    assert memory.text == "User lives in Paris" and memory.confidence == 1.0
    assert b"User lives in Pariss" in alice_client.get(f"/memories/{memory.pk}/").content


def test_dont_use_this_and_back(alice_client, alice):
    alice_client.post("/memories/remember/", {"kind": "preference", "text": "User is vegetarian"})
    memory = Memory.objects.get(user=alice)

    alice_client.post(f"/memories/{memory.pk}/use/", {"use": "0"})
    assert build_context(alice, "dinner ideas").items == []
    assert b"not used" in alice_client.get("/memories/").content

    alice_client.post(f"/memories/{memory.pk}/use/", {"use": "1"})
    assert build_context(alice, "dinner ideas").items


def test_deleting_a_memory_needs_the_password_and_removes_its_history(
    alice_client, alice, run_on_commit
):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Paris.")
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Berlin.")
    berlin = Memory.objects.for_user(alice).current().get()

    assert (
        b"That is not your password"
        in alice_client.post(
            f"/memories/{berlin.pk}/delete/", {"password": "x", "confirmation": "delete"}
        ).content
    )
    alice_client.post(
        f"/memories/{berlin.pk}/delete/", {"password": "alice-pass-123", "confirmation": "delete"}
    )

    assert not Memory.objects.filter(user=alice).exists()  # Berlin and the Paris it superseded


def test_search_and_filter(alice_client, alice):
    alice_client.post("/memories/remember/", {"kind": "preference", "text": "User likes jazz"})
    alice_client.post("/memories/remember/", {"kind": "fact", "text": "User owns a red bicycle"})

    assert b"jazz" not in alice_client.get("/memories/", {"q": "bicycle"}).content
    assert b"bicycle" in alice_client.get("/memories/", {"q": "bicycle"}).content
    only_facts = alice_client.get("/memories/", {"kind": "fact"}).content
    assert b"bicycle" in only_facts and b"jazz" not in only_facts


def test_memory_text_with_markup_is_escaped(alice_client, alice):
    alice_client.post(
        "/memories/remember/", {"kind": "fact", "text": '<img src=x onerror="alert(1)">'}
    )
    for url in ("/memories/", f"/memories/{Memory.objects.get().pk}/"):
        content = alice_client.get(url).content
        assert b"<img src=x" not in content and b"&lt;img src=x" in content


@pytest.mark.parametrize(
    "method, suffix, data",
    [
        ("get", "", {}),
        ("post", "edit/", {"text": "hacked"}),
        ("post", "use/", {"use": "0"}),
        ("get", "delete/", {}),
        ("post", "delete/", {"password": "bob-pass-123", "confirmation": "delete"}),
    ],
)
def test_bob_gets_404_for_alices_memory(alice, bob, method, suffix, data):
    from memories.services import memory_remember

    memory, _ = memory_remember(user=alice, kind="fact", text="User lives in Lisbon")
    client = Client()
    client.force_login(bob)

    response = getattr(client, method)(f"/memories/{memory.pk}/{suffix}", data)

    assert response.status_code == 404
    memory.refresh_from_db()
    assert memory.text == "User lives in Lisbon" and memory.use_in_context


@pytest.mark.parametrize("url", ["/memories/", "/memories/1/", "/memories/1/delete/"])
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_editing_into_a_duplicate_is_refused_with_a_message(alice_client, alice):
    from memories.services import memory_remember

    memory_remember(user=alice, kind="preference", text="User likes tea")
    coffee, _ = memory_remember(user=alice, kind="preference", text="User likes coffee")

    response = alice_client.post(
        f"/memories/{coffee.pk}/edit/", {"text": "User likes tea"}, follow=True
    )

    assert b"You already have a memory that says this" in response.content
    coffee.refresh_from_db()
    assert coffee.text == "User likes coffee"


def test_the_search_and_remember_controls_are_labelled(alice_client):
    page = alice_client.get("/memories/").content.decode()
    for field, label in (
        ("id_q", "Search my memories"),
        ("id_kind", "Kind"),
        ("id_source", "Source"),
        ("remember_kind", "Kind of memory"),
        ("remember_text", "What to remember"),
    ):
        assert f'<label for="{field}" class="visually-hidden">{label}</label>' in page
    assert 'placeholder="Search, e.g. diet or Lisbon"' in page
    assert page.count('id="id_kind"') == 1  # two forms, no id twice
