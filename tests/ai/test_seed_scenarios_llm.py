"""The seed's failure patterns through the language-model path: a new user on the defaults (the one
memory box ticked) chats through the pages with a model (the local OpenAI-compatible test server)
extracting and replying; in a later conversation the model is given what matters, in the memory
context's data message."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from chat.models import Conversation
from tests.ai.openai_server import Reply

# What the model extracts from each message (by a phrase it contains); anything else: nothing.
EXTRACTIONS = {
    "vegetarian": [
        {"kind": "preference", "subject": "diet", "text": "User is vegetarian", "confidence": 0.95,
         "pinned": False},
    ],
    "pooling": [
        {"kind": "fact", "subject": "tool:fastapi", "text": "User is using FastAPI", "confidence": 0.9,
         "pinned": False},
        {"kind": "project", "subject": "problem:connection pooling",
         "text": "User is struggling with database connection pooling", "confidence": 0.9,
         "pinned": False},
    ],
    "spike": [
        {"kind": "fact", "subject": "term:spike",
         "text": 'When the user says "spike" they mean a one-week research task', "confidence": 0.9,
         "pinned": False},
    ],
}  # fmt: skip


def _model(request: dict) -> dict:
    """A model that answers each kind of request the app makes: extraction, summary, reply."""
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("name")
    last = request["messages"][-1]["content"]
    if schema == "memories":
        said = last.rsplit("]:\n", 1)[-1]
        items = next((v for k, v in EXTRACTIONS.items() if k in said.lower()), [])
        content = json.dumps({"items": items})
    elif schema == "summary":
        content = json.dumps({"summary": "A short chat.", "message_ids": []})
    else:
        content = "Sure."
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }


@pytest.fixture
def newcomer(db, llm_server, run_on_commit):
    llm_server.script_chat(*[Reply(body=_model)] * 40)
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
        """A new conversation with these messages, ended; the memory data message the model was
        given for the last one."""
        run_on_commit(client.post, "/chat/send/", {"message": messages[0]})
        current = Conversation.objects.filter(user__username="alex").latest("created_at")
        for text in messages[1:]:
            run_on_commit(client.post, f"/chat/{current.pk}/send/", {"message": text})
        run_on_commit(client.post, f"/chat/{current.pk}/end/")
        replies = [r for r in llm_server.chat_requests if not r.response_format_type]
        data = [
            m["content"]
            for m in replies[-1].messages
            if m["role"] == "user" and m["content"].startswith("<memory_context>")
        ]
        return data[0] if data else ""

    return conversation


def test_preference_amnesia_with_a_model(newcomer):
    newcomer("Hi! I'm Alex, a backend developer. I'm vegetarian and I live in Leeds.")
    given = newcomer("Can you suggest a dinner recipe?")
    assert '"User is vegetarian"' in given and "said by the user" in given


def test_project_reset_with_a_model(newcomer):
    newcomer("We're using FastAPI and struggling with database connection pooling.")
    given = newcomer("Hey, remember that pooling issue I mentioned? Also suggest a dinner recipe.")
    assert "User is struggling with database connection pooling" in given


def test_expert_to_novice_with_a_model(newcomer):
    newcomer('In our team a "spike" means a one-week research task.')
    given = newcomer("Can you plan a spike for our caching work?")
    assert "one-week research task" in given
