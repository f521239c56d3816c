"""memoryweb.ai.llm through the real `openai` client against the scripted local server."""

from __future__ import annotations

import json
import time

import pytest

from memoryweb.ai import llm
from tests.ai.openai_server import (
    TIMEOUT,
    TOO_SLOW,
    chat_reply,
    delayed,
    error_reply,
    json_reply,
    malformed_body,
)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
REPAIR = "That was not valid JSON. Reply with the JSON object only."


def _structured():
    return llm.structured(MESSAGES, name="answer", schema=SCHEMA)


# --- complete -------------------------------------------------------------------------------------


def test_it_returns_the_reply_text(llm_server):
    llm_server.script_chat(chat_reply("  Hello there.  "))

    assert llm.complete(MESSAGES) == "Hello there."

    [request] = llm_server.chat_requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "test-chat"
    assert request.body["messages"] == MESSAGES
    assert "response_format" not in request.body


def test_it_uses_the_model_it_is_given(llm_server):
    llm_server.script_chat(chat_reply("ok"))

    llm.complete(MESSAGES, model="other-model")

    assert llm_server.chat_requests[0].body["model"] == "other-model"


@pytest.mark.parametrize("status", [401, 429, 500, 503])
def test_it_raises_llmerror_on_an_http_error(llm_server, status):
    llm_server.script_chat(error_reply(status, "nope"))

    with pytest.raises(llm.LLMError, match="The language model failed"):
        llm.complete(MESSAGES)
    assert len(llm_server.chat_requests) == 1  # LLM_MAX_RETRIES=0: no retry


def test_it_raises_llmerror_on_a_timeout_without_waiting_for_the_server(llm_server):
    llm_server.script_chat(delayed(TOO_SLOW))

    started = time.monotonic()
    with pytest.raises(llm.LLMError, match="APITimeoutError"):
        llm.complete(MESSAGES)
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TOO_SLOW


def test_it_raises_llmerror_on_a_refusal(llm_server):
    llm_server.script_chat(chat_reply(None, refusal="I can't help with that."))

    with pytest.raises(llm.LLMError, match="refused"):
        llm.complete(MESSAGES)


def test_it_raises_llmerror_on_an_empty_reply(llm_server):
    llm_server.script_chat(chat_reply("   "))

    with pytest.raises(llm.LLMError, match="no text"):
        llm.complete(MESSAGES)


MALFORMED_BODIES = pytest.mark.parametrize(
    "reply",
    [
        malformed_body(),
        malformed_body("<html><body>Bad gateway</body></html>", content_type="text/html"),
    ],
    ids=["broken-json", "html-page"],
)


@MALFORMED_BODIES
def test_it_raises_llmerror_on_a_malformed_http_body(llm_server, reply):
    llm_server.script_chat(reply)

    with pytest.raises(llm.LLMError):
        llm.complete(MESSAGES)


@MALFORMED_BODIES
def test_it_raises_llmerror_on_a_malformed_http_body_in_structured_mode(llm_server, reply):
    llm_server.script_chat(*[reply] * 4)  # at most two tries in each of two modes

    with pytest.raises(llm.LLMError):
        _structured()


def test_it_refuses_to_call_without_a_key(llm_server, settings):
    settings.OPENAI_API_KEY = ""

    with pytest.raises(llm.LLMError, match="No language model is configured"):
        llm.complete(MESSAGES)
    assert llm_server.requests == []


# --- structured -----------------------------------------------------------------------------------


def test_it_returns_an_object_in_json_schema_mode(llm_server):
    llm_server.script_chat(json_reply({"answer": "hello"}))

    assert _structured() == {"answer": "hello"}

    [request] = llm_server.chat_requests
    assert request.body["model"] == "test-extract"
    assert request.body["messages"] == MESSAGES
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False},
    }


def test_it_falls_back_to_json_object_mode_when_json_schema_is_rejected(llm_server):
    llm_server.script_chat(
        error_reply(400, "response_format json_schema is not supported", param="response_format"),
        json_reply({"answer": "plain json mode"}),
    )

    assert _structured() == {"answer": "plain json mode"}

    first, second = llm_server.chat_requests
    assert first.response_format_type == "json_schema"
    assert second.body["response_format"] == {"type": "json_object"}
    # Plain JSON mode cannot carry the schema, so it goes into the prompt.
    assert second.messages[: len(MESSAGES)] == MESSAGES
    assert second.messages[-1]["role"] == "system"
    assert json.dumps(SCHEMA) in second.messages[-1]["content"]
    assert first.messages == MESSAGES  # the first request did not get the schema hint


def test_it_raises_llmerror_when_both_modes_are_rejected(llm_server):
    llm_server.script_chat(error_reply(400, "no json_schema"), error_reply(400, "no json_object"))

    with pytest.raises(llm.LLMError, match="No valid structured output"):
        _structured()
    assert [r.response_format_type for r in llm_server.chat_requests] == [
        "json_schema",
        "json_object",
    ]


def test_it_does_not_switch_modes_on_a_server_error(llm_server):
    llm_server.script_chat(error_reply(500, "boom", type_="server_error"))

    with pytest.raises(llm.LLMError, match="InternalServerError"):
        _structured()
    assert len(llm_server.chat_requests) == 1


def test_it_parses_json_in_a_code_fence(llm_server):
    llm_server.script_chat(json_reply({"answer": "fenced"}, fenced=True))

    assert _structured() == {"answer": "fenced"}
    assert len(llm_server.chat_requests) == 1


def test_it_repairs_malformed_json_with_one_retry(llm_server):
    llm_server.script_chat(chat_reply('{"answer": "cut off'), json_reply({"answer": "repaired"}))

    assert _structured() == {"answer": "repaired"}

    first, second = llm_server.chat_requests
    assert first.response_format_type == second.response_format_type == "json_schema"
    assert second.messages == [
        *MESSAGES,
        {"role": "assistant", "content": '{"answer": "cut off'},
        {"role": "user", "content": REPAIR},
    ]


def test_it_retries_a_json_value_that_is_not_an_object(llm_server):
    llm_server.script_chat(json_reply(["not", "an", "object"]), json_reply({"answer": "object"}))

    assert _structured() == {"answer": "object"}
    assert len(llm_server.chat_requests) == 2


def test_it_raises_llmerror_when_json_is_malformed_twice_in_both_modes(llm_server):
    llm_server.script_chat(
        *[chat_reply("Sure! Here is your JSON: {answer: hello}") for _ in range(4)]
    )

    with pytest.raises(llm.LLMError, match="No valid structured output"):
        _structured()

    requests = llm_server.chat_requests
    assert [r.response_format_type for r in requests] == [
        "json_schema",
        "json_schema",
        "json_object",
        "json_object",
    ]
    assert requests[1].messages[-1]["content"] == REPAIR
    assert requests[3].messages[-1]["content"] == REPAIR
    assert json.dumps(SCHEMA) in requests[2].messages[-1]["content"]
    assert llm_server.pending() == {}


def test_it_raises_llmerror_on_a_timeout_in_structured_mode(llm_server):
    llm_server.script_chat(delayed(TOO_SLOW))

    with pytest.raises(llm.LLMError, match="APITimeoutError"):
        _structured()
    assert len(llm_server.chat_requests) == 1
