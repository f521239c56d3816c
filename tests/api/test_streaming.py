"""`stream: true`: the reply as server-sent events while it is written (offline, line by line; with
a model, its streamed tokens through the real `openai` client), then stored like any reply."""

from __future__ import annotations

import json

from chat.models import Message
from memories.models import Memory
from tests.ai.conftest import llm_server, openai_server  # noqa: F401 (fixtures)
from tests.ai.openai_server import Reply


def _events(response) -> list[tuple[str, dict]]:
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.strip().split("\n\n"):
        name, data = block.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def _stream(client, message, **extra):
    return client.post("/api/v1/chat", {"message": message, "stream": True, **extra}, format="json")


def test_the_offline_reply_streams_and_is_stored(alice_api, alice, run_on_commit):
    run_on_commit(
        alice_api.post, "/api/v1/chat", {"message": "Remember that I'm vegetarian."}, format="json"
    )

    events = _events(_stream(alice_api, "Dinner ideas?"))

    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("delta") >= 3
    start, done = events[0][1], events[-1][1]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert streamed == done["reply"] and "User is vegetarian" in streamed
    assert done["conversation"] == start["conversation"] and done["message"] == start["message"]
    reply = Message.objects.get(pk=done["reply_message"])
    assert (
        reply.content == streamed
        and reply.recalls.filter(memory=Memory.objects.get(user=alice)).exists()
    )


def test_a_streamed_turn_continues_a_conversation_and_refuses_bad_input_before_streaming(alice_api):
    first = alice_api.post("/api/v1/chat", {"message": "Hello"}, format="json").json()
    events = _events(_stream(alice_api, "Again", conversation=first["conversation"]))
    assert events[-1][1]["conversation"] == first["conversation"]
    refused = _stream(alice_api, "   ")
    assert refused.status_code == 400 and refused["Content-Type"] == "application/json"


def _chunk(content: str) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "test-chat",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        }
    )


def test_the_models_tokens_stream(alice_api, llm_server):  # noqa: F811
    sse = (
        "".join(f"data: {_chunk(piece)}\n\n" for piece in ("How about ", "a risotto", "?"))
        + "data: [DONE]\n\n"
    )
    llm_server.script_chat(Reply(raw=sse.encode(), content_type="text/event-stream"))

    events = _events(_stream(alice_api, "Dinner ideas?"))

    assert [data["text"] for name, data in events if name == "delta"] == [
        "How about ",
        "a risotto",
        "?",
    ]
    assert events[-1][1]["reply"] == "How about a risotto?"
    assert llm_server.chat_requests[0].body["stream"] is True


def test_a_model_that_fails_says_so_in_the_stream(alice_api, llm_server):  # noqa: F811
    llm_server.script_chat(Reply(raw=b"data: [DONE]\n\n", content_type="text/event-stream"))

    events = _events(_stream(alice_api, "Dinner ideas?"))

    assert "could not answer" in events[-1][1]["reply"]
    assert Message.objects.get(pk=events[-1][1]["reply_message"]).content == events[-1][1]["reply"]


def test_a_client_that_goes_away_leaves_what_was_written_stored_when_the_response_closes(
    transactional_db, alice_api
):
    response = _stream(alice_api, "Hello there")
    stream = iter(response.streaming_content)
    start = json.loads(next(stream).decode().split("data: ", 1)[1])
    assert not Message.objects.filter(
        conversation_id=start["conversation"], role="assistant"
    ).exists()

    response.close()  # the client is gone: the server closes the response, in the request's thread

    [reply] = Message.objects.filter(conversation_id=start["conversation"], role="assistant")
    assert reply.content  # stored at once, not whenever the garbage collector runs


def test_a_chat_deleted_while_streaming_ends_with_an_error_event(alice_api, alice):
    from chat.services import conversation_delete

    response = _stream(alice_api, "Hello there")
    stream = iter(response.streaming_content)
    start = json.loads(next(stream).decode().split("data: ", 1)[1])
    conversation_delete(user=alice, conversation=alice.conversations.get(pk=start["conversation"]))

    rest = b"".join(stream).decode()  # read to the end: the test client closes the response

    assert (
        "event: error" in rest and "deleted while the reply" in rest and "event: done" not in rest
    )
    assert not Message.objects.filter(conversation_id=start["conversation"]).exists()
