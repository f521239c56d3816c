"""The chat turn with a model configured (and without one), through the real `openai` client against
the scripted local server."""

from __future__ import annotations

import pytest

from chat import prompts
from chat.models import Message
from chat.services import chat_turn
from memories.models import Episode, Memory
from tests.ai.openai_server import TOO_SLOW, chat_reply, delayed, json_reply, malformed_body
from tests.factories import memories_saying

pytestmark = pytest.mark.django_db

VEGETARIAN = {
    "kind": "preference",
    "subject": "diet",
    "text": "User is vegetarian",
    "confidence": 0.95,
    "pinned": True,
}


def _turn(run_on_commit, user, text, conversation=None):
    """One chat turn, with its after-commit extraction run as the worker would."""
    return run_on_commit(chat_turn, user=user, conversation=conversation, text=text)


def test_it_injects_recalled_memory_as_a_data_message_and_stores_the_reply(
    alice, llm_server, run_on_commit
):
    llm_server.script_chat(
        chat_reply("Noted, no meat for you."),  # turn 1: the reply
        json_reply({"items": [VEGETARIAN]}),  # turn 1: extraction
    )
    first = _turn(run_on_commit, alice, "Remember that I'm vegetarian.")
    vegetarian = Memory.objects.get(user=alice, subject="diet")
    assert vegetarian.text == "User is vegetarian"
    assert first.reply.content == "Noted, no meat for you."

    llm_server.script_chat(
        chat_reply("How about a mushroom risotto?"),  # turn 2: the reply
        json_reply({"items": []}),  # turn 2: extraction
    )
    later = _turn(run_on_commit, alice, "Suggest a dinner")

    assert later.conversation != first.conversation
    reply_request, extraction_request = llm_server.chat_requests[2:]
    assert reply_request.body["model"] == "test-chat"
    assert "response_format" not in reply_request.body
    system, data, *rest = reply_request.messages
    # the memory is quoted in a delimited data message of its own, never in the system message
    assert system == {"role": "system", "content": prompts.SYSTEM_PROMPT}
    assert data == {"role": "user", "content": later.context.text}
    assert data["content"].startswith("<memory_context>\nWhat you remember about the user")
    assert data["content"].endswith("</memory_context>")
    assert '"User is vegetarian"' in data["content"] and "said by the user" in data["content"]
    # a new conversation: no history
    assert rest == [{"role": "user", "content": "Suggest a dinner"}]
    assert extraction_request.response_format_type == "json_schema"

    # The model's reply is stored, with the memories it was given.
    assert later.reply.content == "How about a mushroom risotto?"
    later.reply.refresh_from_db()
    assert later.reply.role == Message.Role.ASSISTANT
    assert later.reply.recalls.filter(memory=vegetarian).exists()
    assert list(later.conversation.messages.values_list("role", "content")) == [
        ("user", "Suggest a dinner"),
        ("assistant", "How about a mushroom risotto?"),
    ]
    assert llm_server.pending() == {}


def test_it_sends_the_conversation_history(alice, llm_server, run_on_commit):
    llm_server.script_chat(chat_reply("Hi Alex."), json_reply({"items": []}))
    first = _turn(run_on_commit, alice, "Hello!")
    llm_server.script_chat(chat_reply("Sure."), json_reply({"items": []}))

    _turn(run_on_commit, alice, "Tell me a joke.", conversation=first.conversation)

    reply_request = llm_server.chat_requests[2]
    assert reply_request.messages[1:] == [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi Alex."},
        {"role": "user", "content": "Tell me a joke."},
    ]


def test_it_stores_an_apology_when_the_model_times_out_and_still_processes_the_message(
    alice, llm_server, run_on_commit
):
    llm_server.script_chat(
        delayed(TOO_SLOW, chat_reply("too late")),  # the reply: the client gives up
        json_reply({"items": [VEGETARIAN]}),  # extraction, after commit
    )

    result = _turn(run_on_commit, alice, "I'm vegetarian. What should I cook tonight?")

    messages = list(result.conversation.messages.all())
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == "I'm vegetarian. What should I cook tonight?"
    assert messages[1] == result.reply
    assert result.reply.content.startswith("Sorry, the language model could not answer just now")
    assert "APITimeoutError" in result.reply.content
    assert result.reply.content.endswith("Your message is saved.")

    # The message was still processed afterwards, by the model's extraction.
    user_message = result.user_message
    user_message.refresh_from_db()
    assert user_message.processed_at is not None
    assert Episode.objects.filter(key=f"turn:{user_message.pk}").exists()
    memory = Memory.objects.get(user=alice, subject="diet")
    assert list(memory.source_messages.all()) == [user_message]
    assert len(llm_server.chat_requests) == 2
    assert llm_server.chat_requests[1].response_format_type == "json_schema"


def test_it_stores_an_apology_when_the_model_fails(alice, llm_server, run_on_commit):
    llm_server.script_chat(chat_reply(None, refusal="No."), json_reply({"items": []}))

    result = _turn(run_on_commit, alice, "Hello")

    assert result.reply.content.startswith("Sorry, the language model could not answer just now")
    assert "refused" in result.reply.content
    result.user_message.refresh_from_db()
    assert result.user_message.processed_at is not None


def test_it_stores_an_apology_when_the_http_body_is_malformed(alice, llm_server, run_on_commit):
    llm_server.script_chat(malformed_body(), json_reply({"items": []}))

    result = _turn(run_on_commit, alice, "Hello")

    assert result.reply.content.startswith("Sorry, the language model could not answer just now")


def test_it_makes_no_request_without_a_key(alice, openai_server, settings, run_on_commit):
    assert settings.OPENAI_API_KEY == ""
    assert settings.OPENAI_BASE_URL == openai_server.base_url

    result = _turn(run_on_commit, alice, "I'm vegetarian.")
    later = _turn(run_on_commit, alice, "Suggest a dinner")

    assert openai_server.requests == []
    assert result.reply.content.startswith("No language model is configured")
    assert "User is vegetarian" in later.reply.content  # the offline reply, with the rules' memory
    result.user_message.refresh_from_db()
    assert result.user_message.processed_at is not None
    assert memories_saying("User is vegetarian", user=alice, subject="diet")
