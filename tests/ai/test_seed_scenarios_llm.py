"""The seed's failure patterns through the language-model path: a new user on the defaults (the one
memory box ticked) chats through the pages with a model (the local OpenAI-compatible test server)
extracting and replying; in a later conversation the model is given what matters, in the memory
context's data message."""

from __future__ import annotations

import json

import pytest

from tests.ai.openai_server import Reply
from tests.chat import seed

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
    """A new user on the defaults; each call a conversation, ended, and the memory data message the
    model was given for its last message."""
    llm_server.script_chat(*[Reply(body=_model)] * 40)
    talk = seed.newcomer(run_on_commit)

    def conversation(*messages: str) -> str:
        talk(*messages)
        replies = [r for r in llm_server.chat_requests if not r.response_format_type]
        data = [
            m["content"]
            for m in replies[-1].messages
            if m["role"] == "user" and m["content"].startswith("<memory_context>")
        ]
        return data[0] if data else ""

    return conversation


def test_preference_amnesia_with_a_model(newcomer):
    newcomer(seed.INTRO)
    given = newcomer(seed.DINNER)
    assert '"User is vegetarian"' in given and "said by the user" in given


def test_project_reset_with_a_model(newcomer):
    newcomer(seed.PROJECT)
    given = newcomer(seed.PROJECT_LATER)
    assert "User is struggling with database connection pooling" in given


def test_expert_to_novice_with_a_model(newcomer):
    newcomer(seed.TERM)
    given = newcomer(seed.TERM_LATER)
    assert "one-week research task" in given
