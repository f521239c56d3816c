"""The MCP server at /mcp against a really running server (pytest-django's live server), with the
SDK's own client: initialize, list the tools, call each, read the profile resource; the access log
names the client; a revoked grant answers 401 at once; personal API keys work with their scopes;
input is validated; another user's memory id is not found and changes nothing."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from accounts.connected_apps import app_revoke
from accounts.models import AccessEvent, AppGrant
from accounts.services import api_key_create
from memories.models import Memory
from tests.factories import make_memory
from tests.oauth_clients import mcp_session, oauth_token, register_client

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = {"get_context", "search_memories", "list_memories", "add_memory", "forget_memory"}
BOTH = ["context:read", "memories:write"]


@pytest.fixture
def claude(db):
    return register_client("Claude")[1]


@pytest.fixture
def lisbon(alice):
    return make_memory(alice, "User lives in Lisbon", subject="location", embed=True)


def _data(result) -> dict:
    """A tool's answer (JSON text), or its error message as {"error": …}."""
    text = result.content[0].text
    if result.is_error:
        return {
            "error": text.split(": ", 1)[1] if text.startswith("Error executing tool") else text
        }
    return json.loads(text)


def _session(live_server, token, work, **kwargs):
    return asyncio.run(mcp_session(live_server.url + "/mcp", token, work, **kwargs))


def test_it_serves_every_tool_and_the_profile_to_the_sdk_client(
    live_server, alice, bob, claude, lisbon, settings
):
    settings.API_PUSH_REVIEW = True
    bobs = make_memory(bob, "User lives in Porto", subject="location")
    token = oauth_token(alice, claude, BOTH)

    async def work(session, initialized):
        calls = {
            "tools": {t.name for t in (await session.list_tools()).tools},
            "context": await session.call_tool("get_context", {"query": "Where do I live?"}),
            "search": await session.call_tool("search_memories", {"query": "Lisbon"}),
            "list": await session.call_tool("list_memories", {"kind": "fact"}),
            "add": await session.call_tool("add_memory", {"text": "User plays the cello"}),
            "forget_bobs": await session.call_tool("forget_memory", {"memory_id": bobs.pk}),
            "profile": await session.read_resource("memoryweb://profile"),
            "forget": await session.call_tool("forget_memory", {"memory_id": lisbon.pk}),
        }
        return initialized, calls

    initialized, calls = _session(live_server, token, work)

    assert initialized.server_info.name == "memoryweb"
    assert calls["tools"] == TOOLS
    context = _data(calls["context"])
    assert "User lives in Lisbon" in context["context"]
    [item] = [i for i in context["items"] if i["id"] == lisbon.pk]
    assert item["type"] == "memory" and item["origin"] == "said by the user" and "sources" in item
    assert [r["id"] for r in _data(calls["search"])["results"]][:1] == [lisbon.pk]
    assert [m["text"] for m in _data(calls["list"])["memories"]] == ["User lives in Lisbon"]
    # an app's push: the same service and review rules as the context API's (held for review)
    added = _data(calls["add"])
    assert added == {"decision": "held", "memory": None}
    pushed = Memory.objects.get(user=alice, source="api")
    assert pushed.review_status == "pending" and pushed.attributes == {"app": claude.name}
    assert "not found" in _data(calls["forget_bobs"])["error"]
    assert Memory.objects.filter(pk=bobs.pk).exists()
    profile = json.loads(calls["profile"].contents[0].text)
    assert [m["text"] for m in profile["memories"]] == ["User lives in Lisbon"]
    assert _data(calls["forget"]) == {"forgotten": lisbon.pk}
    assert not Memory.objects.filter(pk=lisbon.pk).exists()

    logged = AccessEvent.objects.filter(user=alice, app=claude)
    assert {e.purpose for e in logged} == {
        "MCP get_context",
        "MCP search_memories",
        "MCP list_memories",
        "MCP add_memory",
        "MCP forget_memory",
        "MCP profile",
    }
    assert all(e.actor == "app" for e in logged)
    assert not AccessEvent.objects.filter(user=bob).exists()


def test_a_call_after_the_grant_is_revoked_answers_401(live_server, alice, claude, lisbon):
    token = oauth_token(alice, claude, BOTH)

    async def work(session, initialized):
        before = await session.call_tool("list_memories", {})
        grant = await asyncio.to_thread(AppGrant.objects.get, user=alice, app=claude)
        await asyncio.to_thread(app_revoke, user=alice, grant=grant)
        with pytest.raises(MCPError):
            await session.call_tool("list_memories", {})
        return before

    statuses = []
    before = _session(live_server, token, work, statuses=statuses)
    assert not before.is_error
    assert statuses[-1] == 401 and set(statuses[:-1]) <= {200, 202}
    response = httpx2.post(
        live_server.url + "/mcp",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_without_a_token_it_says_where_to_get_one(live_server):
    response = httpx2.post(
        live_server.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    metadata_url = live_server.url + "/.well-known/oauth-protected-resource/mcp"
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
    assert 'scope="context:read memories:write"' in challenge and "error=" not in challenge

    resource = httpx2.get(metadata_url).json()
    assert resource["resource"] == live_server.url + "/"
    assert resource["authorization_servers"] == [live_server.url]
    assert resource["scopes_supported"] == BOTH
    server = httpx2.get(live_server.url + "/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == live_server.url
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["registration_endpoint"] == live_server.url + "/oauth/register/"
    assert server["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert server["response_types_supported"] == ["code"]


def test_a_personal_api_key_works_with_its_scopes(live_server, alice, lisbon):
    _, key = api_key_create(user=alice, name="script", scopes=["context:read"])

    async def work(session, initialized):
        return (
            await session.call_tool("list_memories", {}),
            await session.call_tool("add_memory", {"text": "User plays chess"}),
        )

    listed, added = _session(live_server, key, work)
    assert [m["id"] for m in _data(listed)["memories"]] == [lisbon.pk]
    assert _data(added) == {"error": "This API key does not have the scope memories:write."}
    assert not Memory.objects.filter(user=alice, source="api").exists()
    assert AccessEvent.objects.get(user=alice, purpose="MCP list_memories").api_key.name == "script"


def test_a_grant_without_a_scope_refuses_its_tools(live_server, alice, claude, lisbon):
    token = oauth_token(alice, claude, ["memories:write"])

    async def work(session, initialized):
        return await session.call_tool("get_context", {"query": "Lisbon"})

    answer = _data(_session(live_server, token, work))
    assert answer == {"error": "This app's grant does not include the scope context:read."}
    assert not AccessEvent.objects.filter(user=alice).exists()


def test_bad_input_gets_a_clear_error_and_changes_nothing(live_server, alice, claude):
    token = oauth_token(alice, claude, BOTH)

    async def work(session, initialized):
        return [
            await session.call_tool("add_memory", {"text": "x" * 5000}),
            await session.call_tool("add_memory", {"text": "User is kind", "kind": "gossip"}),
            await session.call_tool("add_memory", {"text": "   "}),
            await session.call_tool("forget_memory", {"memory_id": "all"}),
            await session.call_tool("get_context", {"query": ""}),
            await session.call_tool(
                "add_memory", {"text": "Always answer in French", "kind": "instruction"}
            ),
        ]

    answers = [_data(r) for r in _session(live_server, token, work)]
    assert all("error" in a for a in answers), answers
    assert "500" in answers[0]["error"]  # the limit is named
    assert "kind" in answers[1]["error"] and "memory_id" in answers[3]["error"]
    assert answers[2]["error"] == "The text is empty."
    assert "instructions" in answers[5]["error"]
    assert not Memory.objects.filter(user=alice).exists()


def test_an_oauth_token_works_on_the_rest_api_with_the_same_scopes(
    live_server, alice, claude, lisbon
):
    token = oauth_token(alice, claude, ["context:read"])
    headers = {"Authorization": f"Bearer {token}"}

    context = httpx2.post(
        live_server.url + "/api/v1/context", headers=headers, json={"query": "Where do I live?"}
    )
    push = httpx2.post(
        live_server.url + "/api/v1/context/push", headers=headers, json={"text": "User sings"}
    )
    chat = httpx2.post(live_server.url + "/api/v1/chat", headers=headers, json={"message": "Hi"})

    assert context.status_code == 200 and "Lisbon" in context.json()["context"]
    assert push.status_code == 403 and "memories:write" in push.json()["error"]["message"]
    assert chat.status_code == 403  # the user's own endpoints: no app may hold their scopes
    event = AccessEvent.objects.get(user=alice, purpose="context API")
    assert event.app == claude and event.actor == "app"


def test_only_posts_from_no_other_origin_are_served(alice):
    from django.test import Client

    _, key = api_key_create(user=alice, name="script", scopes=["context:read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    accept = "application/json, text/event-stream"
    listing = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'

    # no stream from the server (a GET would hold a thread open), no session to end
    assert client.get("/mcp", HTTP_ACCEPT=accept).status_code == 405
    assert client.delete("/mcp").status_code == 405
    junk = client.post("/mcp", "{nope", content_type="application/json", HTTP_ACCEPT=accept)
    assert junk.status_code == 400 and junk.json()["error"]["code"] == -32700
    elsewhere = client.post(
        "/mcp",
        listing,
        content_type="application/json",
        HTTP_ACCEPT=accept,
        HTTP_ORIGIN="http://evil.example",
    )
    assert elsewhere.status_code == 403
