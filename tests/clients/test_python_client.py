"""The Python client (clients/python) against the running server (Django's live server, real HTTP):
every method, its README's example as written, errors as ApiError with the API's body, a server
that is down or silent as TransportError, and an app acting for a user."""

from __future__ import annotations

import io
import json
import re
import socket
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from django.conf import settings
from memoryweb_client import ApiError, Client, TransportError

from accounts.connected_apps import app_grant, app_register
from accounts.models import User
from accounts.receipts import receipt_verify
from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create
from vault.signing import key_id, public_from_pem

README = Path(settings.BASE_DIR) / "clients" / "python" / "README.md"


def _client(live_server, user, scopes=ALL_SCOPES, **options) -> Client:
    _, key = api_key_create(user=user, scopes=scopes)
    return Client(live_server.url, key, **options)


@pytest.fixture
def client(live_server, alice) -> Client:
    return _client(live_server, alice)


def test_the_readme_example_runs_as_written(live_server, alice):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    _, key = api_key_create(user=alice, scopes=ALL_SCOPES)
    code = code.replace("http://localhost:8000", live_server.url).replace("mw_…", key)
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    assert "User plays chess on Sundays" in out.getvalue()  # pulled back, then recalled


def test_chat_new_and_continued_listed_read_streamed_ended_deleted(client):
    first = client.chat("I live in Lisbon.")
    again = client.chat("I'm vegetarian.", conversation=first["conversation"])
    assert again["conversation"] == first["conversation"] and again["reply"]
    listed = client.conversations(page_size=10)
    assert [c["id"] for c in listed["results"]] == [first["conversation"]]
    detail = client.conversation(first["conversation"])
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 2

    events = list(client.chat_stream("Where do I live?", conversation=first["conversation"]))
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "done"
    assert any(e["event"] == "delta" for e in events)
    assert events[-1]["data"]["conversation"] == first["conversation"]

    assert client.conversation_end(first["conversation"])["ended_at"]
    temporary = client.chat("Just this once.", temporary=True)
    deleted = client.conversation_delete(temporary["conversation"])
    assert deleted["messages"] == 2 and deleted["receipt"]
    assert [r["id"] for r in client.receipts()["results"]] == [deleted["receipt"]]


def test_context_pull_push_and_profile(client):
    pushed = client.push("User plays chess on Sundays", confidence=0.9)
    assert pushed["decision"] == "add" and pushed["memory"]["source"] == "api"
    client.remember("My name is Alice")
    context = client.context("What do I do on Sundays?", budget_tokens=200)
    assert "chess" in context["context"] and context["tokens"] <= 200
    assert any("chess" in item["text"] for item in context["items"])
    assert any("Alice" in m["text"] for m in client.profile()["results"])


def test_memories_listed_searched_corrected_switched_reported_deleted(client):
    remembered = client.remember("User's favourite colour is green")
    memory_id = remembered["memory"]["id"]
    assert remembered["decision"] == "add"
    assert [m["id"] for m in client.memories(kind="fact")["results"]] == [memory_id]
    assert client.memories(kind="preference")["results"] == []
    assert client.search("favourite colour")["results"][0]["id"] == memory_id
    assert client.memory(memory_id)["text"] == "User's favourite colour is green"

    corrected = client.correct(memory_id, "User's favourite colour is teal")
    assert corrected["text"] == "User's favourite colour is teal"
    assert client.set_use(memory_id, False)["use_in_context"] is False
    history = client.memory_history(memory_id)["results"]
    assert [r["old_text"] for r in history if r["action"] == "edit"] == [
        "User's favourite colour is green"
    ]
    assert client.report(memory_id, "wrong") == {
        "memory": memory_id,
        "review_status": "pending",
        "reported": True,
    }

    client.memory_delete(memory_id)
    with pytest.raises(ApiError) as error:
        client.memory(memory_id)
    assert (error.value.status, error.value.code) == (404, "not_found")


def test_privacy_settings_consents_export_access_log(client):
    assert client.settings_update(use_past_chats=False, time_zone="Europe/Lisbon") == {
        **client.settings(),
        "use_past_chats": False,
        "time_zone": "Europe/Lisbon",
    }
    assert client.consent_set("sensitive:health", True)["granted"] is True
    consents = {c["purpose"]: c["granted"] for c in client.consents(page_size=50)["results"]}
    assert consents["sensitive:health"] and consents["memory"]

    client.chat("I live in Lisbon.")
    export = client.export_wait(client.export_start()["id"])
    assert export["status"] == "ready" and client.exports()["results"][0]["id"] == export["id"]
    archive = zipfile.ZipFile(io.BytesIO(client.export_download(export["id"])))
    assert json.loads(archive.read("export.json"))["account"]["username"] == "alice"
    assert any(e["purpose"] == "API key created" for e in client.access_log()["results"])


def test_forget_everything_with_a_receipt_that_verifies_with_the_published_key(
    client, live_server, alice, tmp_path
):
    client.chat("My parrot is called Quetzal.")
    forgotten = client.forget_everything()
    assert forgotten["forgotten"] and not forgotten["account_deleted"]
    assert client.memories()["results"] == [] and client.conversations()["results"] == []

    document = client.receipt(forgotten["receipt_id"])
    keys = client.receipt_keys()
    public_key = public_from_pem(keys[0]["pem"].encode())
    receipt = receipt_verify(document, {key_id(public_key): public_key})
    assert receipt == forgotten["receipt"]["receipt"] and b"Quetzal" not in document

    gone = client.forget_everything(delete_account=True)
    assert gone["account_deleted"] and gone["receipt"]["receipt"]["kind"] == "account_deleted"
    assert not User.objects.filter(username="alice").exists()
    with pytest.raises(ApiError) as error:
        client.settings()
    assert error.value.status == 401


def test_errors_carry_the_apis_status_and_body(client, live_server, alice, bob):
    with pytest.raises(ApiError) as error:
        client.remember("")
    assert error.value.status == 400 and "text" in error.value.fields
    assert error.value.body["error"]["code"] == error.value.code

    bobs = _client(live_server, bob).remember("User likes tea")["memory"]["id"]
    with pytest.raises(ApiError) as error:
        client.memory(bobs)  # another user's id: not found
    assert error.value.status == 404

    with pytest.raises(ApiError) as error:
        Client(live_server.url, "mw_wrong").memories()
    assert (error.value.status, error.value.code) == (401, "authentication_failed")

    reader = _client(live_server, alice, scopes=["context:read"])
    with pytest.raises(ApiError) as error:
        reader.chat("Hello")
    assert error.value.status == 403 and "chat" in error.value.message


def test_a_server_down_or_silent_is_a_transport_error():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(TransportError):
        Client(f"http://127.0.0.1:{port}", "mw_x", timeout=2).memories()
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TransportError):
            Client(url, "mw_x", timeout=0.5).memories()


def test_an_app_pushes_and_pulls_for_a_user_who_granted_it(live_server, alice):
    app, secret = app_register(name="Calendar")
    app_grant(user=alice, app=app, scopes=["context:read", "memories:write"])
    calendar = Client(live_server.url, secret, user="alice")
    assert calendar.push("User has a dentist appointment on Friday")["decision"] == "held"
    assert calendar.context("When is the dentist?")["items"] == []  # held for review first
    with pytest.raises(ApiError) as error:
        Client(live_server.url, secret, user="nobody").memories()
    assert error.value.status == 404
