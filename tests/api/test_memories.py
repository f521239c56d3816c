"""The memory endpoints: filters and pages, remember / edit / don't use / delete through the
portal's services, a memory's history, reporting to the moderation queue, search with the chat's
retrieval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccessEvent
from memories.models import HeldMemory, Memory, MemoryRevision
from tests.factories import make_memory


def _remember(client, text, kind="fact"):
    return client.post("/api/v1/memories", {"kind": kind, "text": text}, format="json")


def test_it_remembers_edits_and_deletes_a_memory(alice_api, alice):
    created = _remember(alice_api, "User likes green tea", kind="preference")
    assert created.status_code == 201
    body = created.json()
    assert (
        body["decision"] == "add"
        and body["memory"]["pinned"]
        and body["memory"]["source"] == "stated"
    )
    memory_id = body["memory"]["id"]

    edited = alice_api.patch(
        f"/api/v1/memories/{memory_id}", {"text": "User likes jasmine tea"}, format="json"
    )
    assert edited.status_code == 200 and edited.json()["text"] == "User likes jasmine tea"
    unused = alice_api.patch(
        f"/api/v1/memories/{memory_id}", {"use_in_context": False}, format="json"
    )
    assert unused.json()["use_in_context"] is False

    history = alice_api.get(f"/api/v1/memories/{memory_id}/history").json()
    assert [r["action"] for r in history["results"]] == ["add", "edit", "dont-use"]
    assert history["results"][1]["old_text"] == "User likes green tea"

    assert alice_api.delete(f"/api/v1/memories/{memory_id}").status_code == 204
    assert not Memory.objects.filter(pk=memory_id).exists()
    assert not MemoryRevision.objects.filter(memory_id=memory_id).exists()


def test_an_edit_into_a_duplicate_is_refused(alice_api):
    _remember(alice_api, "User likes green tea")
    other = _remember(alice_api, "User likes coffee").json()["memory"]["id"]
    response = alice_api.patch(
        f"/api/v1/memories/{other}", {"text": "User likes green tea"}, format="json"
    )
    assert response.status_code == 400
    assert "already have a memory" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 501},
        {"kind": "nonsense", "text": "a"},
        {"text": ["a"]},
    ],
)
def test_bad_memory_input_is_a_400(alice_api, payload):
    response = alice_api.post("/api/v1/memories", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and response.json()["error"]["fields"]


def test_it_filters_by_kind_source_and_date_and_pages(alice_api, alice):
    old = make_memory(alice, "User lives in Porto", kind="fact", subject="location")
    Memory.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    make_memory(alice, "User likes tea", kind="preference", subject="taste:tea")
    make_memory(alice, "User plays chess", kind="fact", subject="hobby:chess", source="api")

    def texts(query):
        response = alice_api.get("/api/v1/memories" + query)
        assert response.status_code == 200, response.content
        return sorted(m["text"] for m in response.json()["results"])

    assert texts("?kind=preference") == ["User likes tea"]
    assert texts("?source=api") == ["User plays chess"]
    today = timezone.now().date()
    assert texts(f"?since={today.isoformat()}") == ["User likes tea", "User plays chess"]
    assert texts(f"?until={(today - timedelta(days=1)).isoformat()}") == ["User lives in Porto"]
    page = alice_api.get("/api/v1/memories?page_size=2").json()
    assert (
        page["count"] == 3
        and len(page["results"]) == 2
        and page["next"]
        and page["previous"] is None
    )
    second = alice_api.get("/api/v1/memories?page_size=2&page=2").json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert alice_api.get("/api/v1/memories?page=9").status_code == 404
    assert alice_api.get("/api/v1/memories?kind=nonsense").status_code == 400
    assert alice_api.get("/api/v1/memories?since=yesterday").status_code == 400


def test_reporting_sends_a_memory_to_the_moderation_queue(alice_api, alice):
    memory = make_memory(
        alice, "User's favourite shop is Loja Verde", kind="preference", subject="shop"
    )
    response = alice_api.post(
        f"/api/v1/memories/{memory.pk}/report", {"reason": "not-mine"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"memory": memory.pk, "review_status": "pending", "reported": True}
    held = HeldMemory.objects.get(pk=memory.pk)
    assert "reported:not-mine" in held.flag_reasons
    assert memory.revisions.filter(action="report", actor="user").exists()
    # held: no longer used in context
    assert (
        alice_api.post("/api/v1/context", {"query": "favourite shop"}, format="json").json()[
            "items"
        ]
        == []
    )
    again = alice_api.post(f"/api/v1/memories/{memory.pk}/report", {}, format="json")
    assert again.json()["reported"] is False


def test_search_uses_the_chats_retrieval_and_pages(alice_api, alice, run_on_commit):
    for text in ("I live in Lisbon.", "I'm vegetarian.", "My sister Ana is a nurse."):
        run_on_commit(alice_api.post, "/api/v1/chat", {"message": text}, format="json")

    response = alice_api.get("/api/v1/memories/search?q=where+do+I+live&page_size=1")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= 1 and len(body["results"]) == 1
    assert "Lisbon" in body["results"][0]["text"]
    assert AccessEvent.objects.filter(user=alice, purpose="search API").exists()


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20%20", "?q=nul%00"])
def test_search_needs_a_query(alice_api, query):
    assert alice_api.get("/api/v1/memories/search" + query).status_code == 400


def test_the_conversation_list_pages_and_deleting_one_takes_what_was_learned_only_from_it(
    alice_api, run_on_commit
):
    first = run_on_commit(
        alice_api.post, "/api/v1/chat", {"message": "I live in Lisbon."}, format="json"
    ).json()
    alice_api.post("/api/v1/chat", {"message": "Hello"}, format="json")

    listed = alice_api.get("/api/v1/conversations?page_size=1").json()
    assert listed["count"] == 2 and len(listed["results"]) == 1

    messages = alice_api.get(
        f"/api/v1/conversations/{first['conversation']}/messages?page_size=1"
    ).json()
    assert messages["count"] == 2 and messages["results"][0]["content"] == "I live in Lisbon."
    assert messages["next"].endswith("page=2&page_size=1")

    deleted = alice_api.delete(f"/api/v1/conversations/{first['conversation']}")
    answer = deleted.json()
    assert deleted.status_code == 200 and answer == {
        "messages": 2,
        "memories": 1,
        "digests": 0,
        "receipt": answer["receipt"],
    }
    receipt = alice_api.get(f"/api/v1/me/receipts/{answer['receipt']}")
    assert (
        receipt.status_code == 200 and receipt.json()["receipt"]["kind"] == "conversation_deleted"
    )
    assert alice_api.get(f"/api/v1/conversations/{first['conversation']}").status_code == 404
    assert alice_api.get("/api/v1/memories").json()["count"] == 0
