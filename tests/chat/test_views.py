"""Pages: sign-up, log-in, chat, end, "What I remember" — and nobody sees anyone else's."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Conversation
from chat.services import chat_turn
from memories.models import Memory
from tests.factories import make_memory


@pytest.mark.parametrize("remember", [True, False])
def test_it_signs_up_and_lands_on_chat(db, remember):
    from accounts.models import User
    from accounts.selectors import consents_in_force, memory_policy

    client = Client()
    form = {
        "username": "dana",
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
    }
    response = client.post(
        "/accounts/signup/", {**form, "remember": "on"} if remember else form, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/chat/"
    assert b"New conversation" in response.content
    dana = User.objects.get(username="dana")
    policy = memory_policy(user=dana)
    # the one box turns on both switches ChatGPT has: saved memories and reference to past chats
    assert policy.extract is remember and policy.use_past_chats is remember
    if remember:
        record = consents_in_force(user=dana)["memory"]
        assert record.policy_version == "2026-11"
        assert record.method == "signup form: memories and past chats"


def test_the_signup_box_says_what_it_includes(db):
    page = Client().get("/accounts/signup/").content.decode()
    assert "saved memories" in page and "reference to your past chats" in page
    assert "switch either off" in page


def test_each_memory_setting_is_labelled_for_what_ticking_it_does(alice_client):
    page = alice_client.get("/accounts/privacy/settings/").content.decode()
    assert '<label for="id_memory_enabled">Saved memories' in page
    assert '<label for="id_use_past_chats">Reference my past chats' in page
    assert "Ticked: the assistant keeps" in page and "Off: nothing is extracted" not in page


def test_it_logs_in(alice):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-pass-123"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/chat/"


def test_anonymous_users_are_sent_to_log_in(db):
    for url in ("/chat/", "/chat/1/", "/memories/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_it_chats_ends_and_shows_memories_used(alice_client, alice, run_on_commit):
    response = run_on_commit(
        alice_client.post, "/chat/send/", {"message": "Remember that I'm vegetarian."}
    )
    conversation = Conversation.objects.get(user=alice)
    assert response.status_code == 302
    alice_client.post(f"/chat/{conversation.pk}/end/")
    conversation.refresh_from_db()
    assert conversation.ended_at is not None

    alice_client.post("/chat/send/", {"message": "Can you suggest something for dinner?"})
    later = Conversation.objects.filter(user=alice).exclude(pk=conversation.pk).get()
    page = alice_client.get(f"/chat/{later.pk}/")

    assert page.status_code == 200
    assert b"Memories used: " in page.content
    assert b"User is vegetarian" in page.content


def test_the_conversation_page_has_a_bounded_number_of_queries(
    alice_client, alice, django_assert_max_num_queries
):
    conversation = None
    for text in ("one", "two", "three"):
        conversation = chat_turn(user=alice, conversation=conversation, text=text).conversation
    with django_assert_max_num_queries(12):
        alice_client.get(f"/chat/{conversation.pk}/")


def test_an_empty_message_is_refused_with_a_message(alice_client):
    response = alice_client.post("/chat/send/", {"message": "   "}, follow=True)
    assert b"This field is required" in response.content


def test_what_i_remember_shows_the_source_message(alice_client, alice, run_on_commit):
    run_on_commit(alice_client.post, "/chat/send/", {"message": "Hi, I'm Alex. I live in Lisbon."})

    page = alice_client.get("/memories/")

    assert b"User lives in Lisbon" in page.content
    assert b"Hi, I&#x27;m Alex. I live in Lisbon." in page.content
    assert b"learned" in page.content


def test_memory_text_is_escaped(alice_client, alice):

    make_memory(alice, "<script>alert(1)</script>")
    page = alice_client.get("/memories/")
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;" in page.content


def test_bob_gets_404_for_alices_conversation_pages(alice, bob_client):
    conversation = chat_turn(user=alice, conversation=None, text="Hello").conversation

    assert bob_client.get(f"/chat/{conversation.pk}/").status_code == 404
    assert bob_client.post(f"/chat/{conversation.pk}/send/", {"message": "hi"}).status_code == 404
    assert bob_client.post(f"/chat/{conversation.pk}/end/").status_code == 404
    conversation.refresh_from_db()
    assert conversation.ended_at is None and conversation.messages.count() == 2


def test_bob_does_not_see_alices_memories(alice, bob_client, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="Remember that I'm vegetarian.")
    page = bob_client.get("/memories/")
    assert b"vegetarian" not in page.content


def test_a_memory_page_shows_its_source_and_history(alice_client, alice, run_on_commit):
    run_on_commit(alice_client.post, "/chat/send/", {"message": "I live in Lisbon."})
    memory = Memory.objects.get(user=alice)

    page = alice_client.get(f"/memories/{memory.pk}/")

    assert b"User lives in Lisbon" in page.content
    assert b"I live in Lisbon." in page.content
    assert b"add by extractor" in page.content


def test_bob_gets_404_for_alices_memory_page(alice, bob_client, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Lisbon.")
    memory = Memory.objects.get(user=alice)
    assert bob_client.get(f"/memories/{memory.pk}/").status_code == 404


def test_the_chat_page_shows_what_is_due_within_two_days(alice_client, alice):
    from datetime import timedelta

    from django.utils import timezone

    soon = (timezone.now() + timedelta(days=1)).date().isoformat()
    later = (timezone.now() + timedelta(days=9)).date().isoformat()
    for text, date in (("The API launch is due", soon), ("The annual review is due", later)):
        Memory.objects.create(
            user=alice,
            kind="event",
            subject=text,
            text=text,
            fingerprint=text,
            valid_from=timezone.now(),
            attributes={"date": date},
        )

    page = alice_client.get("/chat/")

    assert b"Coming up" in page.content and b"The API launch is due" in page.content
    assert b"The annual review is due" not in page.content


def test_no_due_soon_banner_in_a_temporary_chat(alice_client, alice):
    from datetime import timedelta

    from django.utils import timezone

    soon = (timezone.now() + timedelta(days=1)).date().isoformat()
    Memory.objects.create(
        user=alice,
        kind="event",
        subject="launch",
        text="The API launch is due",
        fingerprint="l",
        valid_from=timezone.now(),
        attributes={"date": soon},
    )
    temporary = chat_turn(user=alice, conversation=None, text="hi", temporary=True).conversation
    assert b"The API launch is due" not in alice_client.get(f"/chat/{temporary.pk}/").content
    assert b"The API launch is due" in alice_client.get("/chat/").content


def test_a_chat_deleted_while_the_reply_is_written_is_a_clear_error(alice, monkeypatch):
    from django.core.exceptions import ValidationError

    from chat import services
    from chat.models import Conversation, Message
    from chat.services import conversation_delete

    conversation = services.chat_turn(user=alice, conversation=None, text="Hello").conversation
    reply = services._reply

    def deleted_meanwhile(*args):  # the user deletes the chat in another tab during the model call
        conversation_delete(user=alice, conversation=conversation)
        return reply(*args)

    monkeypatch.setattr(services, "_reply", deleted_meanwhile)
    with pytest.raises(ValidationError, match="deleted while the reply"):
        services.chat_turn(user=alice, conversation=conversation, text="Are you there?")
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_a_memory_used_in_a_reply_can_be_reported_or_switched_off_from_the_chat(
    alice_client, alice, bob_client, run_on_commit
):
    """ "Wrong" and "Don't use" under a reply's Memories used reuse the portal's services and come
    back to the conversation; another user's memory id is a 404."""
    diet = make_memory(alice, "User is vegetarian", kind="preference", subject="diet")
    jazz = make_memory(alice, "User likes jazz", kind="preference", subject="taste:jazz")
    run_on_commit(alice_client.post, "/chat/send/", {"message": "Any dinner and music ideas?"})
    conversation = Conversation.objects.get(user=alice)
    page = alice_client.get(f"/chat/{conversation.pk}/").content.decode()
    assert f'action="/memories/{diet.pk}/report/"' in page and "Don't use" in page

    back = f"conversation:{conversation.pk}"
    wrong = alice_client.post(f"/memories/{diet.pk}/report/", {"reason": "wrong", "next": back})
    off = alice_client.post(f"/memories/{jazz.pk}/use/", {"use": "0", "next": back})

    assert wrong["Location"] == off["Location"] == f"/chat/{conversation.pk}/"
    diet.refresh_from_db()
    jazz.refresh_from_db()
    assert diet.review_status == "pending" and "reported:wrong" in diet.flag_reasons
    assert jazz.use_in_context is False
    assert bob_client.post(f"/memories/{jazz.pk}/report/", {"next": back}).status_code == 404
    later = run_on_commit(
        alice_client.post,
        f"/chat/{conversation.pk}/send/",
        {"message": "More dinner and music ideas?"},
    )
    assert later.status_code == 302
    reply = conversation.messages.filter(role="assistant").latest("created_at")
    assert "vegetarian" not in reply.content and "jazz" not in reply.content
