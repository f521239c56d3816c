"""The seed's failure patterns, walked as a new user would: sign up with the one memory box ticked (the
defaults), chat offline through the pages, end the conversation, come back in a new one. The offline
reply lists what the assistant recalled, so what it remembered is what the reply says."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Conversation


@pytest.fixture
def newcomer(db, run_on_commit):
    """A browser that signed up with "remember me" ticked, and a way to talk in it."""
    client = Client()
    client.post(
        "/accounts/signup/",
        {
            "username": "alex",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
            "remember": "on",
        },
    )

    def conversation(*messages: str) -> str:
        """A new conversation with these messages, then ended; the last reply."""
        run_on_commit(client.post, "/chat/send/", {"message": messages[0]})
        current = Conversation.objects.filter(user__username="alex").latest("created_at")
        for text in messages[1:]:
            run_on_commit(client.post, f"/chat/{current.pk}/send/", {"message": text})
        reply = current.messages.filter(role="assistant").latest("created_at").content
        run_on_commit(client.post, f"/chat/{current.pk}/end/")
        return reply

    return conversation


def test_preference_amnesia_the_diet_is_known_in_the_next_conversation(newcomer):
    newcomer("Hi! I'm Alex, a backend developer. I'm vegetarian and I live in Leeds.")
    reply = newcomer("Can you suggest a dinner recipe?")
    assert "vegetarian" in reply


def test_project_reset_the_problem_is_known_the_next_day(newcomer):
    newcomer(
        "Hi! I'm Alex, a backend developer. I'm vegetarian and I live in Leeds.",
        "We're using FastAPI and struggling with database connection pooling.",
    )
    reply = newcomer("Hey, remember that pooling issue I mentioned? Also suggest a dinner recipe.")
    assert "struggling with database connection pooling" in reply
    assert "FastAPI" in reply and "vegetarian" in reply


def test_project_reset_the_business_is_known(newcomer):
    newcomer("My startup builds invoicing software for dentists. We use Django and Stripe.")
    reply = newcomer("Tell me about my business, what do you know?")
    assert "invoicing software for dentists" in reply


def test_expert_to_novice_a_term_defined_once_is_known_later(newcomer):
    newcomer('In our team a "spike" means a one-week research task.')
    reply = newcomer("Can you plan a spike for our caching work?")
    assert "one-week research task" in reply
