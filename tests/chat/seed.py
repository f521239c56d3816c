"""The seed's three scenarios, said as a new user would, and a new user on the defaults who says
them: shared by the offline, model and browser walks, so all three test the same sentences."""

from __future__ import annotations

from django.test import Client

from chat.models import Conversation

INTRO = "Hi! I'm Alex, a backend developer. I'm vegetarian and I live in Leeds."
DINNER = "Can you suggest a dinner recipe?"
PROJECT = "We're using FastAPI and struggling with database connection pooling."
PROJECT_LATER = "Hey, remember that pooling issue I mentioned? Also suggest a dinner recipe."
TERM = 'In our team a "spike" means a one-week research task.'
TERM_LATER = "Can you plan a spike for our caching work?"


def newcomer(run_on_commit, username: str = "alex"):
    """Sign up through the page with the one memory box ticked; return `talk(*messages)`, which has
    a new conversation with these messages, ends it and returns it."""
    client = Client()
    client.post(
        "/accounts/signup/",
        {
            "username": username,
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
            "remember": "on",
        },
    )

    def talk(*messages: str) -> Conversation:
        run_on_commit(client.post, "/chat/send/", {"message": messages[0]})
        current = Conversation.objects.filter(user__username=username).latest("created_at")
        for text in messages[1:]:
            run_on_commit(client.post, f"/chat/{current.pk}/send/", {"message": text})
        run_on_commit(client.post, f"/chat/{current.pk}/end/")
        return current

    return talk
