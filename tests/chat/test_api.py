"""The API: chat, end, memories, context — the caller's own data only, clear 4xx for bad input."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from chat.models import Conversation, Message
from memories.models import Memory
from tests.factories import memory_saying


def _chat(client, message, conversation=None, run_on_commit=None):
    payload = {"message": message, "conversation": conversation}
    if run_on_commit:
        return run_on_commit(client.post, "/api/v1/chat", payload, format="json")
    return client.post("/api/v1/chat", payload, format="json")


def test_it_chats_and_recalls_across_conversations(alice_api, run_on_commit):
    first = _chat(alice_api, "Remember that I'm vegetarian.", run_on_commit=run_on_commit)
    assert first.status_code == 200, first.content
    conversation = first.json()["conversation"]
    assert alice_api.post(f"/api/v1/conversations/{conversation}/end").status_code == 200

    second = _chat(alice_api, "Can you suggest something for dinner?")

    body = second.json()
    assert second.status_code == 200
    assert body["conversation"] != conversation
    assert "No language model is configured" in body["reply"]
    vegetarian = next(item for item in body["recalled"] if item["text"] == "User is vegetarian")
    assert vegetarian["kind"] == "preference"
    assert vegetarian["score"] > 0
    source = Message.objects.get(pk=vegetarian["sources"][0])
    assert source.content == "Remember that I'm vegetarian."


def test_it_continues_a_conversation(alice_api):
    first = _chat(alice_api, "Hello there").json()
    second = _chat(alice_api, "And again", first["conversation"]).json()
    assert second["conversation"] == first["conversation"]
    assert Conversation.objects.get(pk=first["conversation"]).messages.count() == 4


def test_it_lists_memories_with_sources(alice_api, run_on_commit):
    _chat(alice_api, "I live in Lisbon.", run_on_commit=run_on_commit)

    response = alice_api.get("/api/v1/memories")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [m["text"] for m in results] == ["User lives in Lisbon"]
    assert len(results[0]["sources"]) == 1


def test_it_builds_context_for_a_query(alice_api, run_on_commit):
    _chat(
        alice_api,
        'When I say "the monolith" I mean our old Django billing app.',
        run_on_commit=run_on_commit,
    )

    response = alice_api.post("/api/v1/context", {"query": "split the monolith"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert "old Django billing app" in body["context"]
    assert body["items"] and all(item["sources"] for item in body["items"])


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"message": ""}, 400),
        ({"message": "   "}, 400),
        ({}, 400),
        ({"message": 12}, 200),  # DRF CharField accepts numbers as text, like a form would
        ({"message": ["a"]}, 400),
        ({"message": "x" * 20_001}, 400),
        ({"message": "hi", "conversation": "abc"}, 400),
        ({"message": "hi", "conversation": 999_999_999}, 404),
        ({"message": "hi", "conversation": -1}, 400),
        ({"message": "hi", "conversation": 10**30}, 400),
        ({"message": "nul\x00byte"}, 400),
    ],
)
def test_it_answers_bad_chat_input_with_a_clear_4xx(alice_api, payload, status):
    response = alice_api.post("/api/v1/chat", payload, format="json")
    assert response.status_code == status, response.content
    if status >= 400:
        assert response.json()["error"]["message"]


def test_it_rejects_malformed_json(alice_api):
    response = alice_api.post("/api/v1/chat", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_it_rejects_a_message_to_an_ended_conversation(alice_api):
    conversation = _chat(alice_api, "Hello").json()["conversation"]
    alice_api.post(f"/api/v1/conversations/{conversation}/end")

    response = _chat(alice_api, "Hello again", conversation)

    assert response.status_code == 400
    assert "ended" in json.dumps(response.json())


@pytest.mark.parametrize("url", ["/api/v1/memories", "/api/v1/context", "/api/v1/chat"])
def test_it_requires_authentication(db, url):
    client = APIClient()
    response = client.get(url) if url.endswith("memories") else client.post(url, {}, format="json")
    assert response.status_code in (401, 403)


def test_it_rejects_a_wrong_or_revoked_key(alice):
    from accounts.scopes import ALL_SCOPES
    from accounts.services import api_key_create, api_key_revoke

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer mw_not-a-key")
    assert client.get("/api/v1/memories").status_code == 401
    api_key, key = api_key_create(user=alice, scopes=ALL_SCOPES)
    api_key_revoke(api_key=api_key)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/memories").status_code == 401


def test_bob_gets_404_for_alices_conversation(alice_api, bob_api):
    conversation = _chat(alice_api, "Hello").json()["conversation"]

    assert _chat(bob_api, "Hi", conversation).status_code == 404
    assert bob_api.post(f"/api/v1/conversations/{conversation}/end").status_code == 404
    assert Conversation.objects.get(pk=conversation).ended_at is None


def test_bob_sees_none_of_alices_memories_or_context(alice_api, bob_api, run_on_commit):
    _chat(alice_api, "Remember that I'm vegetarian.", run_on_commit=run_on_commit)
    assert Memory.objects.count() == 1

    assert bob_api.get("/api/v1/memories").json()["results"] == []
    context = bob_api.post("/api/v1/context", {"query": "vegetarian dinner"}, format="json").json()
    assert context["items"] == [] and context["context"] == ""


def test_it_gets_a_conversation_message_and_memory(alice_api, run_on_commit):
    body = _chat(alice_api, "I live in Lisbon.", run_on_commit=run_on_commit).json()
    memory = memory_saying("User lives in Lisbon")

    conversation = alice_api.get(f"/api/v1/conversations/{body['conversation']}").json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert (
        alice_api.get(f"/api/v1/messages/{body['message']}").json()["content"]
        == "I live in Lisbon."
    )
    detail = alice_api.get(f"/api/v1/memories/{memory.pk}").json()
    assert detail["sources"] == [body["message"]]
    assert [h["action"] for h in detail["history"]] == ["add"]


def test_bob_gets_404_for_alices_conversation_message_and_memory(alice_api, bob_api, run_on_commit):
    body = _chat(alice_api, "I live in Lisbon.", run_on_commit=run_on_commit).json()
    memory = memory_saying("User lives in Lisbon")

    for url in (
        f"/api/v1/conversations/{body['conversation']}",
        f"/api/v1/messages/{body['message']}",
        f"/api/v1/messages/{body['reply_message']}",
        f"/api/v1/memories/{memory.pk}",
    ):
        response = bob_api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "text", ["what did I do in may 0000", "99999999 days ago", "I moved to Lisbon in 0000."]
)
def test_impossible_dates_are_no_error(alice_api, text, run_on_commit):
    assert alice_api.post("/api/v1/context", {"query": text}, format="json").status_code == 200
    response = _chat(alice_api, text, run_on_commit=run_on_commit)
    assert response.status_code == 200
    assert Message.objects.get(pk=response.json()["message"]).processed_at is not None


def test_an_api_chat_is_logged_with_its_key(alice_api, alice, run_on_commit):
    from accounts.models import AccessEvent

    _chat(alice_api, "Remember that I'm vegetarian.", run_on_commit=run_on_commit)
    _chat(alice_api, "Dinner ideas?")

    event = AccessEvent.objects.get(user=alice, purpose="chat reply")
    assert event.actor == "api" and event.api_key.user == alice


def test_a_temporary_chat_over_the_api(alice_api, run_on_commit):
    body = _chat(alice_api, "Remember that I'm vegetarian.", run_on_commit=run_on_commit).json()
    response = alice_api.post(
        "/api/v1/chat", {"message": "Dinner ideas?", "temporary": True}, format="json"
    )
    assert (
        response.json()["recalled"] == []
        and Conversation.objects.get(pk=response.json()["conversation"]).temporary
    )
    assert body["conversation"] != response.json()["conversation"]
