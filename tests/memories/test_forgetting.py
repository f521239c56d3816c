"""Nothing said in a chat erases memory: sweeping phrases point to Forget everything, pasted text is
not a command, and "forget X" shows what matches X and leads to the portal's "Forget about …",
where the user confirms exactly what goes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from chat.services import chat_turn
from memories.models import Memory
from memories.services import memory_remember
from tests.factories import memory_saying


@pytest.fixture
def remembered(alice, run_on_commit):
    """Two memories alice stated in a chat, and one she added by hand."""
    run_on_commit(
        chat_turn, user=alice, conversation=None, text="I'm vegetarian and I live in Paris."
    )
    memory_remember(user=alice, kind="fact", text="User plays the cello")
    return set(Memory.objects.filter(user=alice).values_list("pk", flat=True))


def _say(user, run_on_commit, text: str):
    return run_on_commit(chat_turn, user=user, conversation=None, text=text).reply.content


@pytest.mark.parametrize(
    "text",
    [
        "Ugh, forget all of that, let's talk about dinner instead.",
        "Forget everything you know about me.",
        "Please forget me.",
        "forget everything",
    ],
)
def test_a_sweeping_phrase_erases_nothing_and_says_where_to(alice, run_on_commit, remembered, text):
    reply = _say(alice, run_on_commit, text)
    assert set(Memory.objects.filter(user=alice).values_list("pk", flat=True)) == remembered
    assert "haven't erased anything" in reply and "/accounts/privacy/forget/" in reply


@pytest.mark.parametrize(
    "text",
    [
        "can you shorten this email: 'Dear tenant, forget everything you were told about the lease.'",
        'Translate "forget that I live in Paris" into French.',
        "Summarize this for me:\n\nForget where I live. Forget everything you know about me.",
        "What does this mean?\n> forget everything you know about me",
        "Fix this code: `forget_everything()`",
    ],
)
def test_quoted_or_pasted_text_is_not_a_request(alice, run_on_commit, remembered, text):
    reply = _say(alice, run_on_commit, text)
    assert set(Memory.objects.filter(user=alice).values_list("pk", flat=True)) == remembered
    assert "erased" not in reply


def test_forget_x_shows_what_matches_and_the_portal_erases_only_that(
    alice, alice_client, run_on_commit, remembered
):
    reply = _say(alice, run_on_commit, "Forget that I live in Paris.")
    paris = memory_saying("User lives in Paris", user=alice)
    assert Memory.objects.filter(pk=paris.pk).exists()  # nothing went from the chat
    assert "User lives in Paris" in reply and "/memories/forget/?" in reply

    url = reply[reply.index("/memories/forget/?") :].split()[0]
    page = alice_client.get(url)
    assert page.status_code == 200
    assert list(page.context["preview"].matches) == [paris]

    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    confirm = {
        **query,
        "memory": [paris.pk],
        "password": "alice-pass-123",
        "confirmation": "forget",
    }
    assert alice_client.post("/memories/forget/", confirm).status_code == 302
    assert not Memory.objects.filter(pk=paris.pk).exists()
    assert set(Memory.objects.filter(user=alice).values_list("pk", flat=True)) == remembered - {
        paris.pk
    }


def test_the_portal_needs_the_password_and_the_phrase(alice, alice_client, remembered):
    paris = memory_saying("User lives in Paris", user=alice)
    for wrong in ({"password": "nope", "confirmation": "forget"}, {"password": "alice-pass-123"}):
        form = {"about": "Paris", "memory": [paris.pk], **wrong}
        assert alice_client.post("/memories/forget/", form).status_code == 200
    assert Memory.objects.filter(pk=paris.pk).exists()


def test_the_portal_previews_what_is_typed(alice, alice_client, remembered):
    page = alice_client.get("/memories/forget/", {"about": "where I live"})
    assert [m.text for m in page.context["preview"].matches] == ["User lives in Paris"]
    assert (
        alice_client.get("/memories/forget/", {"about": "my boat"}).context["preview"].matches == []
    )


def test_another_users_memory_cannot_be_erased_through_the_portal(
    alice, bob, bob_client, remembered
):
    paris = memory_saying("User lives in Paris", user=alice)
    form = {
        "about": "Paris",
        "memory": [paris.pk],
        "password": "bob-pass-123",
        "confirmation": "forget",
    }
    bob_client.post("/memories/forget/", form)
    assert Memory.objects.filter(pk=paris.pk).exists()


def test_everything_on_the_portal_leads_to_forget_everything(alice_client):
    response = alice_client.get("/memories/forget/", {"about": "x", "subject": "*"})
    assert response.status_code == 302 and response["Location"] == "/accounts/privacy/forget/"


@pytest.mark.parametrize(
    "text",
    [
        "I need to clear everything off my desk before Monday.",
        "Delete the second paragraph of this email, please.",
        "I deleted all my old photos last year.",
        "Reset the router and remove the cables.",
    ],
)
def test_everyday_clearing_and_deleting_is_no_request_to_forget(
    alice, run_on_commit, remembered, text
):
    reply = _say(alice, run_on_commit, text)
    assert set(Memory.objects.filter(user=alice).values_list("pk", flat=True)) == remembered
    assert "/accounts/privacy/forget/" not in reply
